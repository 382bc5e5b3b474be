"""Idle CPU of the daemon with the microphone open on room noise, and where it goes.

    nice -n 5 .venv/bin/python bench/idle_cpu.py [--idle-s 60] [--runs 3] [--json out.json]

`assistant serve` (default config: microphone input, shipped recognizer, Whisper second pass, default
catalog) listens to the PulseAudio virtual microphone (tests/pulse.py) playing room noise only. Once
ready and settled, it measures over `--idle-s` the CPU of the daemon process, split into its main thread
(the event loop: reading the capture pipe, webrtcvad on every 30 ms block, the WebSocket server) and its
other threads (inference workers, torch's pools), and of the PortAudio capture process the daemon runs
beside itself (bench/daemon_latency.py counts the daemon process only). Goal: <= 3 % of one core in all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from daemon_common import DaemonProcess, PacedPlayer, VirtualMic, ensure_model, machine

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SETTLE_S = 5.0


def _ticks(stat_path: Path) -> int:
    fields = stat_path.read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
            except (OSError, ValueError, IndexError):
                continue
    return out


def sample(pid: int) -> dict:
    """CPU ticks so far: the daemon's main thread, its other threads, and each child process (all its threads)."""
    main = other = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with_ticks = _ticks(task / "stat")
        if int(task.name) == pid:
            main += with_ticks
        else:
            other += with_ticks
    kids = {c: _ticks(Path(f"/proc/{c}/stat")) for c in children(pid)}
    return {"main": main, "other": other, "children": kids}


async def one_run(daemon: DaemonProcess, idle_s: float) -> dict:
    await daemon.wait_ready()
    await asyncio.sleep(SETTLE_S)
    a, t0 = sample(daemon.proc.pid), time.monotonic()
    await asyncio.sleep(idle_s)
    b, elapsed = sample(daemon.proc.pid), time.monotonic() - t0
    pct = lambda ticks: round(100 * ticks / CLOCK_TICKS / elapsed, 2)  # noqa: E731
    capture = sum(b["children"][c] - a["children"].get(c, 0) for c in b["children"])
    row = {"main_thread_pct": pct(b["main"] - a["main"]), "other_threads_pct": pct(b["other"] - a["other"]),
           "capture_process_pct": pct(capture), "capture_processes": len(b["children"])}
    row["daemon_pct"] = round(row["main_thread_pct"] + row["other_threads_pct"], 2)
    row["total_pct"] = round(row["daemon_pct"] + row["capture_process_pct"], 2)
    row["threads"] = len(list(Path(f"/proc/{daemon.proc.pid}/task").iterdir()))
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--idle-s", type=float, default=60.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--model", help="recognizer checkpoint (default: the shipped one)")
    ap.add_argument("--json", help="write the runs and the summary here")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as tmp_name:
        tmp = Path(tmp_name)
        model, model_name = ensure_model(tmp, args.model)
        for i in range(args.runs):
            run_dir = tmp / f"run{i}"
            run_dir.mkdir()
            with VirtualMic(run_dir / "pulse") as vm:
                player = PacedPlayer(vm)  # room noise until closed
                daemon = DaemonProcess(run_dir, model, {**os.environ, **vm.env})
                try:
                    rows.append(asyncio.run(one_run(daemon, args.idle_s)))
                finally:
                    daemon.stop()
                    player.close()
            print(f"run {i + 1}: {rows[-1]}", flush=True)
    keys = ("main_thread_pct", "other_threads_pct", "daemon_pct", "capture_process_pct", "total_pct")
    summary = {"machine": machine(), "model": model_name, "idle_s": args.idle_s, "runs": len(rows),
               "load_avg_1min": round(os.getloadavg()[0], 1),
               **{f"median_{k}": round(statistics.median(r[k] for r in rows), 2) for k in keys}}
    print(json.dumps(summary, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "runs": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
