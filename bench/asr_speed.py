"""Streaming speed of the recognizer: real-time factor for 160 ms chunks.

    .venv/bin/python bench/asr_speed.py [--model models/asr.pt] [--seconds 30] [--runs 5]

For 1 and 2 threads, fp32 and dynamic int8: RTF (compute time / audio time,
median of runs), p50/p95 time per 160 ms chunk, and resident memory. Prints
a Markdown table for bench/RESULTS.md, with the model's algorithmic latency
(how far partial transcripts trail the audio before any compute). Speed does
not depend on the weights' values, so without a trained model it measures a
randomly initialized one of the default size (the Whisper-encoder family).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from assistant.asr.checkpoint import load_model, save_checkpoint
from assistant.asr.features import SAMPLE_RATE_HZ
from assistant.asr.network import count_parameters
from assistant.asr.whisper_ctc import WhisperCTC, WhisperCTCConfig
from assistant.asr.whisper_features import WhisperFeatures
from assistant.asr.recognizer import Recognizer
from assistant.config import AsrConfig

CHUNK_MS = 160


def rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(model_path: str, threads: int, int8: bool, seconds: float, runs: int) -> dict:
    torch.set_num_threads(threads)
    rec = Recognizer.load(AsrConfig(model_path=model_path, threads=threads, quantize_int8=int8))
    rng = np.random.default_rng(0)
    audio = (rng.normal(scale=0.1, size=int(seconds * SAMPLE_RATE_HZ))).astype(np.float32)
    step = SAMPLE_RATE_HZ * CHUNK_MS // 1000
    rtfs, chunk_ms = [], []
    for _ in range(runs):
        sess = rec.new_session()
        t0 = time.perf_counter()
        for i in range(0, len(audio), step):
            c0 = time.perf_counter()
            sess.accept(audio[i:i + step])
            chunk_ms.append((time.perf_counter() - c0) * 1000)
        sess.finish(beam=False)
        rtfs.append((time.perf_counter() - t0) / seconds)
    q = statistics.quantiles(chunk_ms, n=100)
    return {"threads": threads, "precision": "int8" if int8 else "fp32", "rtf": statistics.median(rtfs),
            "p50_ms": q[49], "p95_ms": q[94], "rss_mb": rss_mb()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/asr.pt")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--one", nargs=2, metavar=("THREADS", "PRECISION"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    model_path = args.model
    if not Path(model_path).is_file():
        model_path = "/tmp/asr_speed_random.pt"
        save_checkpoint(model_path, WhisperCTC(WhisperCTCConfig()).eval(), WhisperFeatures.create())
        print(f"(no {args.model}: measuring a randomly initialized default-size model)", file=sys.stderr)
    if args.one:  # one configuration per process, so resident memory is its own
        r = measure(model_path, int(args.one[0]), args.one[1] == "int8", args.seconds, args.runs)
        print(" ".join(f"{k}={v}" for k, v in r.items()))
        return 0
    model = load_model(model_path).model
    params = count_parameters(model)
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores ({platform.processor() or 'CPU'}), torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.1f}; model {getattr(model.cfg, 'architecture', 'streaming_ctc')}, "
          f"{params / 1e6:.2f} M parameters, algorithmic latency {model.cfg.algorithmic_latency_ms} ms; "
          f"{args.seconds:.0f} s of audio in {CHUNK_MS} ms chunks, median of {args.runs} runs\n")
    print("| threads | precision | RTF | chunk p50 (ms) | chunk p95 (ms) | RSS (MB) |")
    print("|---|---|---|---|---|---|")
    for threads in (1, 2):
        for precision in ("fp32", "int8"):
            out = subprocess.run([sys.executable, __file__, "--model", model_path, "--seconds", str(args.seconds),
                                  "--runs", str(args.runs), "--one", str(threads), precision],
                                 capture_output=True, text=True, check=True).stdout.split()
            r = dict(kv.split("=") for kv in out)
            print(f"| {threads} | {precision} | {float(r['rtf']):.4f} | {float(r['p50_ms']):.2f} | {float(r['p95_ms']):.2f} | {float(r['rss_mb']):.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
