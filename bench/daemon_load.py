"""Daemon under load: 50 WebSocket clients and 4 real-time remote audio streams at once.

    .venv/bin/python bench/daemon_load.py [--clients 50] [--streams 4] [--commands 8]

`assistant serve --input none` runs as a subprocess on the default config
(shipped model, default catalog). Each stream is a client that sends
espeak-ng commands separated by room noise as 20 ms PCM frames in real time;
50 more clients only listen. Checked: no remote audio dropped (daemon metric
and `audio_overflow` errors), every command gives exactly one final on its
stream, every listener receives every final; reported: end-of-speech ->
transcript.final latency under load, the daemon's CPU, events shed for slow
clients.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from daemon_common import COMMANDS, RATE, DaemonProcess, ensure_model, machine, percentile, synthesize

FRAME = RATE * 20 // 1000


async def listener(url: str, counts: dict, stop: asyncio.Event) -> None:
    from websockets.asyncio.client import connect

    async with connect(url, max_size=None) as ws:
        while not stop.is_set():
            try:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
            except TimeoutError:
                continue
            counts[msg["type"]] = counts.get(msg["type"], 0) + 1


async def streamer(url: str, clips: list, seed: int, result: dict) -> None:
    """Sends noise + commands in real time; records when each speech end was sent and when its final came."""
    from websockets.asyncio.client import connect

    rng = np.random.default_rng(seed)
    noise = lambda n: (0.003 * rng.standard_normal(n)).astype(np.float32)  # noqa: E731
    parts, ends = [noise(RATE)], []
    for text, audio, end_s in clips:
        offset = sum(len(p) for p in parts)
        parts += [audio + noise(len(audio)), noise(int(1.2 * RATE))]
        ends.append(offset + int(end_s * RATE))
    stream = np.concatenate(parts)
    pcm = (np.clip(stream, -1, 1) * 32767).astype("<i2").tobytes()
    end_times: list[float] = []
    finals: list[tuple[float, dict]] = []
    errors: list[dict] = []
    async with connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "audio.start", "id": "s", "format": {"encoding": "pcm_s16le", "sample_rate_hz": RATE}}))
        source = None

        async def reader() -> None:
            nonlocal source
            async for raw in ws:
                msg = json.loads(raw)
                if msg["type"] == "ack" and msg["of"] == "audio.start":
                    source = msg["source"]
                elif msg["type"] == "transcript.final" and msg["source"] == source:
                    finals.append((time.monotonic(), msg))
                elif msg["type"] == "error" and msg.get("source") in (None, source):
                    errors.append(msg)

        task = asyncio.create_task(reader())
        t0 = time.monotonic()
        next_end = 0
        for k, i in enumerate(range(0, len(pcm) // 2, FRAME)):
            delay = t0 + k * FRAME / RATE - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await ws.send(pcm[2 * i:2 * (i + FRAME)])
            while next_end < len(ends) and ends[next_end] < i + FRAME:
                end_times.append(time.monotonic())
                next_end += 1
        await asyncio.sleep(3.0)
        await ws.send(json.dumps({"type": "audio.end"}))
        await asyncio.sleep(0.5)
        task.cancel()
    result.update(source=source, end_times=end_times, finals=finals, errors=errors, expected=len(clips))


def metric(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


async def run(d: DaemonProcess, clips: list, n_clients: int, n_streams: int, per_stream: int) -> dict:
    await d.wait_ready(need_listening=False)
    stop = asyncio.Event()
    counts = [dict() for _ in range(n_clients)]
    listeners = [asyncio.create_task(listener(d.url, c, stop)) for c in counts]
    await asyncio.sleep(2.0)
    results = [dict() for _ in range(n_streams)]
    cpu0, t0 = d.cpu_s(), time.monotonic()
    await asyncio.gather(*(streamer(d.url, clips[s * per_stream:(s + 1) * per_stream], s, results[s])
                           for s in range(n_streams)))
    cpu_pct = 100 * (d.cpu_s() - cpu0) / (time.monotonic() - t0)
    await asyncio.sleep(1.0)
    stop.set()
    await asyncio.gather(*listeners)
    metrics = d.metrics()
    return {"counts": counts, "streams": results, "cpu_pct": cpu_pct, "memory": d.memory_mb(), "metrics": metrics}


def report(r: dict, model_desc: str, n_clients: int, n_streams: int, per_stream: int) -> str:
    latencies, missed, extra, overflow = [], 0, 0, 0
    for s in r["streams"]:
        finals = s["finals"]
        missed += max(0, s["expected"] - len(finals))
        extra += max(0, len(finals) - s["expected"])
        overflow += sum(e["code"] == "audio_overflow" for e in s["errors"])
        for t_end, (t_final, _) in zip(s["end_times"], finals):
            latencies.append(1000 * (t_final - t_end))
    expected_finals = n_streams * per_stream
    listener_finals = [c.get("transcript.final", 0) for c in r["counts"]]
    m = r["metrics"]
    dropped_audio = metric(m, 'assistant_audio_dropped_frames_total{kind="remote"}')
    shed = metric(m, "assistant_events_dropped_total")
    lines = [
        f"Machine: {machine()}, load average {os.getloadavg()[0]:.1f} at the end. Model: {model_desc}. {n_clients} listening clients + {n_streams} remote streams "
        f"x {per_stream} commands, 20 ms frames in real time.",
        "",
        "| remote blocks dropped | audio_overflow errors | finals missed / extra | listeners with every final | events shed | daemon CPU | RSS |",
        "|---|---|---|---|---|---|---|",
        f"| {dropped_audio:.0f} | {overflow} | {missed} / {extra} of {expected_finals} | "
        f"{sum(f >= expected_finals for f in listener_finals)} of {n_clients} (min {min(listener_finals)}) | {shed:.0f} | "
        f"{r['cpu_pct']:.0f} % of one core | {r['memory']['rss_mb']:.0f} MB |",
        "",
        f"End of speech (last sample sent) -> transcript.final on the sending client under load: "
        f"p50 {percentile(latencies, 50):.0f} ms, p95 {percentile(latencies, 95):.0f} ms, max {max(latencies):.0f} ms (n={len(latencies)}).",
    ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--streams", type=int, default=4)
    ap.add_argument("--commands", type=int, default=8, help="commands per stream")
    ap.add_argument("--model", help="recognizer checkpoint (default: models/asr.pt, else random weights)")
    ap.add_argument("--json", help="also write the raw results here")
    args = ap.parse_args()
    n = args.streams * args.commands
    texts = (COMMANDS * (n // len(COMMANDS) + 1))[:n]
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp_name:
        tmp = Path(tmp_name)
        model, model_desc = ensure_model(tmp, args.model)
        clips = synthesize(tmp / "wav", texts)
        d = DaemonProcess(tmp, model, dict(os.environ), extra_args=["--input", "none"])
        try:
            r = asyncio.run(run(d, clips, args.clients, args.streams, args.commands))
        finally:
            rc = d.stop()
    print(report(r, model_desc, args.clients, args.streams, args.commands))
    print(f"\n(daemon exit status {rc})")
    if args.json:
        slim = {k: v for k, v in r.items() if k != "metrics"}
        Path(args.json).write_text(json.dumps(slim, default=str, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
