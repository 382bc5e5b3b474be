"""The microphone's capture process (assistant/audio/capture.py, assistant/audio/capture_worker.py).

Fake capture processes (a few lines of Python speaking the worker's framing) stand in for PortAudio
where a real device cannot misbehave on demand: one that never opens, one that opens and goes silent,
one that writes garbage, one that reports drops and an error. Each must end in "unavailable" with the
reason, with the process killed (a process stuck in PortAudio must never hang the daemon). The real
worker is run against a device that does not exist. The real microphone: tests/test_e2e_daemon.py and
tests/test_faults.py (a PulseAudio server stopped, a null sink unloaded).
"""

from __future__ import annotations

import asyncio
import sys
import time

import numpy as np
import pytest

from assistant.audio import capture
from assistant.audio.capture import CaptureProcess, Microphone
from assistant.config import AudioConfig

WAIT_S = 60.0  # only reached when something is wrong

PRELUDE = """
import json, struct, sys, time
out = sys.stdout.buffer
def send(kind, payload):
    out.write(struct.pack("<cI", kind, len(payload)) + payload); out.flush()
"""


def fake(script: str) -> type[CaptureProcess]:
    class Fake(CaptureProcess):
        def argv(self) -> list[str]:
            return [sys.executable, "-c", PRELUDE + script]

    return Fake


class Run:
    """A Microphone read by a task: its states, its blocks, its drops, its capture processes."""

    def __init__(self, worker: type[CaptureProcess] | None = None, **cfg):
        self.states, self.blocks, self.drops, self.captures = [], [], 0, []
        runner = self

        class Recorded(worker or CaptureProcess):
            def __init__(self, cfg):
                super().__init__(cfg)
                runner.captures.append(self)

        self.mic = Microphone(AudioConfig(reopen_interval_s=0.1, **cfg), self.states.append, self._drop)
        self.mic.capture_class = Recorded
        self.task: asyncio.Task | None = None

    def _drop(self) -> None:
        self.drops += 1

    async def __aenter__(self) -> "Run":
        async def consume():
            async for block in self.mic.blocks():
                self.blocks.append(block)

        self.task = asyncio.create_task(consume())
        return self

    async def __aexit__(self, *exc) -> None:
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task

    async def until(self, condition, what: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while not condition():
            assert not self.task.done(), f"the capture loop ended: {self.task.exception()!r}"
            assert time.monotonic() < deadline, f"{what} did not happen; states: {self.states}"
            await asyncio.sleep(0.02)

    def unavailable(self) -> list[str]:
        return [s.error for s in self.states if s.state == "unavailable"]


def test_a_capture_process_that_never_opens_is_killed_and_reported(monkeypatch):
    monkeypatch.setattr(capture, "OPEN_TIMEOUT_S", 0.5)

    async def main():
        async with Run(fake("time.sleep(600)")) as run:
            await run.until(lambda: len(run.captures) >= 2, "a second attempt")
            assert "did not open within" in run.unavailable()[0]
            first = run.captures[0].proc
            assert first.returncode is not None  # killed, and reaped
        for c in run.captures:
            assert c.proc is None or c.proc.returncode is not None

    asyncio.run(main())


def test_an_open_input_that_goes_silent_is_reported_and_reopened(monkeypatch):
    monkeypatch.setattr(capture, "STALL_S", 0.3)
    script = 'send(b"O", json.dumps({"rate_hz": 16000}).encode()); send(b"A", bytes(4 * 480)); time.sleep(600)'

    async def main():
        async with Run(fake(script)) as run:
            await run.until(lambda: len(run.unavailable()) >= 1, "the stall")
            assert [s.state for s in run.states[:2]] == ["open", "unavailable"]
            assert run.states[0].sample_rate_hz == 16000
            assert "no audio for" in run.unavailable()[0]
            assert run.captures[0].proc.returncode is not None
            await run.until(lambda: len(run.captures) >= 2 and run.mic.state.state == "open", "the re-open")
        assert len(run.blocks) >= 2 and all(len(b) == 480 for b in run.blocks)

    asyncio.run(main())


def test_blocks_drops_and_the_reason_a_stream_stopped_reach_the_daemon():
    # 8 kHz blocks of a 100 Hz tone, 3 dropped blocks, then the device reports an error
    script = """
import math
send(b"O", json.dumps({"rate_hz": 8000}).encode())
tone = [0.5 * math.sin(2 * math.pi * 100 * n / 8000) for n in range(8000)]
for i in range(0, 8000, 240):
    send(b"A", struct.pack(f"<{len(tone[i:i + 240])}f", *tone[i:i + 240]))
send(b"D", struct.pack("<I", 3))
send(b"E", b"device unplugged")
time.sleep(600)
"""

    async def main():
        async with Run(fake(script)) as run:
            await run.until(lambda: run.unavailable(), "the error")
            assert "device unplugged" in run.unavailable()[0]
            assert run.captures[0].proc.returncode is not None
        audio = np.concatenate(run.blocks)
        assert run.drops == 3
        # resampled to 16 kHz (the filter holds back a few ms): about twice the samples, same tone
        assert 14000 <= len(audio) <= 16000, len(audio)
        spectrum = np.abs(np.fft.rfft(audio[2000:14000]))
        assert abs(np.argmax(spectrum) * 16000 / 12000 - 100) < 5

    asyncio.run(main())


def test_garbage_from_the_capture_process_is_an_error_not_a_crash():
    async def main():
        async with Run(fake('out.write(b"this is not a capture message"); out.flush(); time.sleep(600)')) as run:
            await run.until(lambda: run.unavailable(), "the error")
            assert "bad capture message header" in run.unavailable()[0]
            assert run.captures[0].proc.returncode is not None

    asyncio.run(main())


def test_the_real_worker_names_a_device_that_does_not_exist():
    import sounddevice  # noqa: F401 - a core dependency: missing, this fails rather than skips

    async def main():
        async with Run(device="no-such-microphone-42") as run:
            await run.until(lambda: run.unavailable(), "the error")
            reason = run.unavailable()[0]
            assert "no-such-microphone-42" in reason and "retrying every 0.1 s" in reason, reason
            assert "\n" not in reason

    asyncio.run(main())


def test_stopping_the_daemon_kills_an_open_capture_process():
    script = 'send(b"O", json.dumps({"rate_hz": 16000}).encode())\nwhile True:\n    send(b"A", bytes(4 * 480)); time.sleep(0.03)'

    async def main():
        async with Run(fake(script)) as run:
            await run.until(lambda: len(run.blocks) >= 3, "audio")
        assert run.captures[0].proc.returncode is not None
        assert run.unavailable() == []

    asyncio.run(main())
