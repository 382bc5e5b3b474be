"""SIGTERM to process exit, in the middle of decoding, on a busy machine (issue 22: p95 <= 5 s over 20 tries).

    nice -n 5 .venv/bin/python bench/sigterm_exit.py [--tries 20] [--burners 2] [--json out.json]

Each try starts `assistant serve --input none` (the shipped recognizer, the Whisper second pass, the default
catalog), waits until /readyz says ready, streams an espeak-ng command as WebSocket remote audio and sends
SIGTERM the moment its `vad.end` arrives, while the final decodings (the CTC beam and Whisper, started at the
pause) run. It reports the time from the signal to the process's exit, whether the final still came out
(decoding had ended before the drop) and whether a worker's job was abandoned. `--burners N` runs N busy
processes beside it (the "load average 10 on 2 cores" of the issue is about 4 burners on 2 cores).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from daemon_common import REPO, DaemonProcess, ensure_model, machine, percentile, synthesize

COMMAND = "play something sad by adele"
FRAME_SAMPLES = 640  # 40 ms frames, sent at 1.3 x real time
READY_TIMEOUT_S = 600.0  # the first start builds the catalog's index


def ready(port: int) -> bool:
    """/readyz says 200; a daemon from before /readyz (--checkout): /healthz says both components loaded."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
            return r.status == 200
    except urllib.error.HTTPError as e:
        if e.code != 404:
            return False
    except OSError:
        return False
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            health = json.loads(r.read())
        return bool(health["asr"] and health["recommender"])
    except OSError:
        return False


async def one_try(daemon: DaemonProcess, pcm: bytes) -> dict:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    deadline = time.monotonic() + READY_TIMEOUT_S
    while not await asyncio.to_thread(ready, daemon.port):
        if daemon.proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"daemon not ready:\n{daemon.log.read_text()[-3000:]}")
        await asyncio.sleep(0.2)
    async with connect(daemon.url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "audio.start", "id": "a"}))
        source = None
        while source is None:
            msg = json.loads(await ws.recv())
            source = msg.get("source") if msg["type"] == "ack" else None

        async def send() -> None:
            for i in range(0, len(pcm), FRAME_SAMPLES * 2):
                await ws.send(pcm[i:i + FRAME_SAMPLES * 2])
                await asyncio.sleep(FRAME_SAMPLES / 16000 / 1.3)

        sender = asyncio.create_task(send())
        while True:
            msg = json.loads(await ws.recv())
            if msg["type"] == "vad.end" and msg.get("source") == source:
                break
        daemon.proc.send_signal(signal.SIGTERM)
        t0, sent_at = time.monotonic(), time.time()
        sender.cancel()
        final_after = False
        try:
            while True:
                msg = json.loads(await ws.recv())
                final_after |= msg["type"] == "transcript.final" and msg.get("source") == source
        except ConnectionClosed:
            pass
    code = await asyncio.to_thread(daemon.proc.wait, 120)
    exit_s = time.monotonic() - t0
    log = daemon.log.read_text(errors="replace")
    return {"exit_s": round(exit_s, 3), "sigterm_at": time.strftime("%H:%M:%S", time.localtime(sent_at)) + f"{sent_at % 1:.3f}"[1:], "exit_code": code, "final_after_sigterm": final_after,
            "abandoned": "exiting without waiting" in log, "store_closed": "preference store closed" in log}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tries", type=int, default=20)
    ap.add_argument("--burners", type=int, default=2, help="busy processes beside the daemon")
    ap.add_argument("--model", help="recognizer checkpoint (default: the shipped one)")
    ap.add_argument("--json", help="write the tries and the summary here")
    ap.add_argument("--logs", help="copy each try's daemon log into this folder")
    ap.add_argument("--checkout", default=str(REPO), help="the checkout whose daemon runs (another commit's export, to compare)")
    args = ap.parse_args()
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.burners)]
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            model, model_name = ensure_model(tmp, args.model)
            _, audio, _ = synthesize(tmp / "audio", [COMMAND])[0]
            pcm = (audio.clip(-1, 1) * 32767).astype("<i2").tobytes()
            env = dict(os.environ)  # the catalog's index: the user's cache, as `make run` uses it
            for i in range(args.tries):
                run_dir = tmp / f"try{i:02d}"
                run_dir.mkdir()
                daemon = DaemonProcess(run_dir, model, env, ["--input", "none"], cwd=Path(args.checkout))
                try:
                    row = asyncio.run(one_try(daemon, pcm))
                finally:
                    if daemon.proc.poll() is None:
                        daemon.proc.kill()
                        daemon.proc.wait()
                rows.append(row)
                if args.logs:
                    Path(args.logs).mkdir(parents=True, exist_ok=True)
                    shutil.copy(daemon.log, Path(args.logs) / f"try{i:02d}.log")
                print(f"try {i + 1}: {row}", flush=True)
    finally:
        for b in burners:
            b.kill()
            b.wait()
    times = [r["exit_s"] for r in rows]
    summary = {"machine": machine(), "model": model_name, "burners": args.burners, "tries": len(rows),
               "load_avg_1min": round(os.getloadavg()[0], 1),
               "median_s": round(statistics.median(times), 2), "p95_s": round(percentile(times, 95), 2),
               "max_s": round(max(times), 2), "exit_code_0": sum(r["exit_code"] == 0 for r in rows),
               "final_after_sigterm": sum(r["final_after_sigterm"] for r in rows),
               "abandoned_a_job": sum(r["abandoned"] for r in rows), "store_closed": sum(r["store_closed"] for r in rows)}
    print(json.dumps(summary, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "tries": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
