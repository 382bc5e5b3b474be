"""The microphone, read from its own capture process (assistant/audio/capture_worker.py).

PortAudio runs in a child process that writes framed blocks to a pipe; a reader task here
puts them into a bounded `BlockQueue` (a full queue drops and counts, never blocks), and
`blocks()` resamples to 16 kHz and yields.

No device, or a device that vanishes (no audio for STALL_S, the stream stops with an error,
or the process does not open within OPEN_TIMEOUT_S): the state becomes "unavailable" with the
reason, the process is killed (a PortAudio call stuck on a vanished sound server cannot hang
the daemon), and a fresh one, which enumerates the devices again, is started every
`[audio] reopen_interval_s` until it works. The daemon keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np

from assistant.audio import capture_worker as worker
from assistant.asr.features import SAMPLE_RATE_HZ
from assistant.audio.blocks import BlockQueue, InputState, StreamResampler
from assistant.config import AudioConfig
from assistant.errors import AssistantError

log = logging.getLogger(__name__)

STALL_S = 2.0          # no audio for this long from an open stream: the device is gone
OPEN_TIMEOUT_S = 20.0  # the capture process neither opened nor failed by then: it is stuck (or starved)
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # so the child imports this same package


class CaptureProcess:
    """One capture process: start, wait for it to open, read its messages, kill it."""

    def __init__(self, cfg: AudioConfig):
        self.cfg = cfg
        self.proc: asyncio.subprocess.Process | None = None
        self.error: str | None = None  # the reason it stopped, when it said one

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "assistant.audio.capture_worker", "--device", self.cfg.device,
                "--rate-hz", str(self.cfg.input_sample_rate_hz or 0), "--preferred-rate-hz", str(SAMPLE_RATE_HZ),
                "--block-ms", str(self.cfg.block_ms)]

    async def start(self) -> int:
        """Start it and wait until the input is open -> capture rate. AssistantError when it cannot open."""
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")]))}
        self.proc = await asyncio.create_subprocess_exec(*self.argv(), stdin=asyncio.subprocess.PIPE,
                                                         stdout=asyncio.subprocess.PIPE, env=env)
        try:
            kind, payload = await asyncio.wait_for(self.read(), OPEN_TIMEOUT_S)
        except TimeoutError:
            raise AssistantError(f"the audio input did not open within {OPEN_TIMEOUT_S:.0f} s") from None
        if kind == worker.OPEN:
            return int(json.loads(payload)["rate_hz"])
        raise AssistantError(self.error or "the capture process stopped before opening the input")

    async def read(self) -> tuple[bytes, bytes]:
        """The next message; (ERROR, reason) when the process said so, ended, or wrote garbage."""
        try:
            kind, length = worker.decode_header(await self.proc.stdout.readexactly(worker.HEADER.size))
            payload = await self.proc.stdout.readexactly(length)
        except asyncio.IncompleteReadError:
            kind, payload = worker.ERROR, b"the capture process ended"
        except ValueError as exc:
            kind, payload = worker.ERROR, str(exc).encode()
        if kind == worker.ERROR:
            self.error = payload.decode(errors="replace")
        return kind, payload

    async def pump(self, queue: BlockQueue) -> None:
        """Messages -> queue until the process stops; then the queue is closed."""
        try:
            while True:
                kind, payload = await self.read()
                if kind == worker.AUDIO:
                    queue.put(np.frombuffer(payload, dtype=np.float32).copy())
                elif kind == worker.DROPPED:
                    for _ in range(worker.COUNT.unpack(payload)[0]):
                        queue.drop()
                elif kind == worker.ERROR:
                    break
        finally:
            queue.close()

    async def kill(self) -> None:
        """Kill and reap it; closing stdin lets the pipe transport finish."""
        proc = self.proc
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        proc.stdin.close()


class Microphone:
    kind = "microphone"
    capture_class = CaptureProcess

    def __init__(self, cfg: AudioConfig, on_state: Callable[[InputState], None], on_drop: Callable[[], None] | None = None):
        self.source_id = "mic"
        self.cfg = cfg
        self.on_state = on_state
        self.on_drop = on_drop
        self.device_name = cfg.device or "default"
        self.queue: BlockQueue | None = None
        self.state = InputState("microphone", self.device_name, "opening")

    def _set(self, state: str, error: str | None = None, rate: int | None = None) -> None:
        new = InputState("microphone", self.device_name, state, error, rate)
        if new != self.state:
            self.state = new
            if error:
                log.warning("microphone %s: %s", self.device_name, error)
            else:
                log.info("microphone %s: %s%s", self.device_name, state, f" at {rate} Hz" if rate else "")
            self.on_state(new)

    async def blocks(self) -> AsyncIterator[np.ndarray]:
        while True:
            self.queue = BlockQueue(self.cfg.queue_blocks, self.on_drop)
            capture = self.capture_class(self.cfg)
            try:
                rate = await capture.start()
            except AssistantError as exc:
                await capture.kill()
                self._set("unavailable", f"{exc}; retrying every {self.cfg.reopen_interval_s} s")
                await asyncio.sleep(self.cfg.reopen_interval_s)
                continue
            except BaseException:
                await capture.kill()
                raise
            self._set("open", rate=rate)
            resample = StreamResampler(rate)
            pump = asyncio.create_task(capture.pump(self.queue))
            stalled = False
            try:
                while True:
                    try:
                        block = await self.queue.get(timeout_s=STALL_S)
                    except TimeoutError:
                        stalled = True
                        break
                    if block is None:
                        break
                    out = resample(block)
                    if len(out):
                        yield out
            finally:
                pump.cancel()
                await capture.kill()
            reason = f"no audio for {STALL_S:g} s" if stalled else (capture.error or "the capture process ended")
            self._set("unavailable", f"audio input {self.device_name!r} stopped delivering audio ({reason}); "
                                      f"re-opening every {self.cfg.reopen_interval_s} s")
            await asyncio.sleep(self.cfg.reopen_interval_s)
