"""A short, seeded run of the protocol fuzzer (bench/fuzz_protocol.py) against a live daemon subprocess.

A tiny random recognizer and a six-song catalog with the hashing embedder, so the daemon starts in
seconds; the full 10,000-message run with the shipped model is the benchmark (bench/RESULTS.md,
Reliability). Afterwards the daemon must answer /healthz, a clean client's typed and spoken
requests, be back to no clients, streams or queued work, and have no traceback in its log.
"""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from daemon_proc import REPO, start_daemon, stop_daemon, wait_healthy
from synthetic import small_catalog_config, utterance

sys.path.insert(0, str(REPO / "bench"))
import fuzz_protocol as fz  # noqa: E402

SEED = 13
MESSAGES = 600
CLIENTS = 4

pytestmark = pytest.mark.slow


def test_generator_is_a_function_of_the_seed():
    def frames(seed: int) -> list:
        gen = fz.Generator(seed)
        return [gen.next() for _ in range(300)]

    assert frames(SEED) == frames(SEED)
    assert frames(SEED) != frames(SEED + 1)
    kinds = {kind for kind, _ in frames(SEED)}
    assert kinds >= {"random_bytes", "truncated_json", "nested_json", "wrong_types", "odd_pcm", "stream", "cut_mid_frame"}


def test_fuzzed_daemon_still_serves_and_logs_no_traceback(tmp_path, tiny_checkpoint):
    env = {**os.environ, **fz.RATE_OVERRIDE, "ASSISTANT_ASR_FINAL_PASS": "ctc"}  # no Whisper second pass: starts in seconds
    proc, port, log = start_daemon(tmp_path, env, tiny_checkpoint, extra_config=small_catalog_config(tmp_path),
                                   args=("--input", "none"))
    try:
        wait_healthy(port, proc, log)
        url = f"ws://127.0.0.1:{port}/ws"

        async def main():
            report = await fz.fuzz(url, port, MESSAGES, CLIENTS, SEED)
            settled = await fz.settle(port, 600)
            clean = await fz.clean_client(url, utterance(1500))
            return report, settled, clean

        report, settled, clean = asyncio.run(main())
        assert proc.poll() is None, "the daemon died under fuzzing"
        assert report.messages >= MESSAGES
        assert not report.unreachable and report.internal_errors == 0 and report.closes.get(1011, 0) == 0, report.to_dict()
        assert report.errors["bad_json"] and report.errors["bad_message"], report.to_dict()  # the garbage was parsed and refused
        assert settled | {"settle_s": 0} == {"clients": 0, "remote_sources": 0, "asr_queue": 0, "music_queue": 0, "settle_s": 0}, settled
        assert fz.http_json(port, "/healthz")["status"] == "ok"
        assert clean["typed"] == "recommendations" and clean["typed_items"] > 0, clean
        assert clean["spoken_source"].startswith("remote-"), clean  # a final came for the clean stream
    finally:
        stop_daemon(proc)
    problems = fz.log_problems(log.read_text(errors="replace"))
    assert not problems, "\n".join(problems[:10]) + "\n" + log.read_text(errors="replace")[-4000:]
