"""Remote audio: PCM sent by a WebSocket client (a satellite, a browser) after `audio.start`."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import numpy as np

from assistant.audio.blocks import BlockQueue, StreamResampler
from assistant.audio.echo import EchoCanceller
from assistant.server.protocol import E_BAD_AUDIO, AudioFormat, ProtocolError
from assistant.server.ratelimit import TokenBucket

# Remote audio is meant to arrive in real time. A client may run ahead by BURST_S
# and sustain MAX_SPEED x real time; beyond that its audio is dropped (and it is
# told), so one fast sender cannot build a backlog in front of everyone's recognizer.
MAX_SPEED = 1.5
BURST_S = 3.0

_DTYPES = {"pcm_s16le": ("<i2", 1.0 / 32768.0), "pcm_f32le": ("<f4", 1.0)}


def decode_pcm(data: bytes, fmt: AudioFormat) -> np.ndarray:
    """Raw PCM bytes in `fmt` -> float32 mono at fmt.sample_rate_hz. ProtocolError if not whole sample frames.
    With an echo reference channel, the microphone channel alone (see `split_reference`)."""
    return split_reference(data, fmt)[0]


def split_reference(data: bytes, fmt: AudioFormat) -> tuple[np.ndarray, np.ndarray | None]:
    """(microphone, echo reference or None) as float32 at fmt.sample_rate_hz; without a reference
    channel the channels are averaged into the microphone."""
    if len(data) % fmt.bytes_per_frame:
        raise ProtocolError(E_BAD_AUDIO, f"binary frame of {len(data)} bytes is not a whole number of "
                            f"{fmt.bytes_per_frame}-byte {fmt.encoding} sample frames ({fmt.channels} channel(s))")
    dtype, scale = _DTYPES[fmt.encoding]
    x = np.frombuffer(data, dtype=dtype)
    if fmt.encoding == "pcm_f32le":  # checked and clipped before any arithmetic, which NaN or 1e38 would upset
        if not np.all(np.isfinite(x)):
            raise ProtocolError(E_BAD_AUDIO, "binary frame holds NaN or infinite float samples")
        x = np.clip(x, -1.0, 1.0)
    x = x.astype(np.float32) * scale
    if fmt.channels > 1:
        x = x.reshape(-1, fmt.channels)
        ref = fmt.echo_reference_channel
        if ref is not None:
            return np.ascontiguousarray(x[:, 1 - ref]), np.ascontiguousarray(x[:, ref])
        x = x.mean(axis=1)
    return x, None


class RemoteSource:
    """One client's audio stream. `push` is called by the transport on the event loop."""

    kind = "remote"

    def __init__(self, source_id: str, fmt: AudioFormat, max_blocks: int, on_drop: Callable[[], None] | None = None,
                 echo: EchoCanceller | None = None, on_echo_state: Callable[[], None] | None = None):
        self.source_id = source_id
        self.format = fmt
        self.queue = BlockQueue(max_blocks, on_drop)
        self.resample = StreamResampler(fmt.sample_rate_hz)
        # With a reference channel and echo cancellation on: the reference, resampled alike, cancels the echo;
        # `on_echo_state` is called when the canceller's state changes (for the daemon's status).
        self.echo = echo if fmt.echo_reference_channel is not None else None
        self.resample_reference = StreamResampler(fmt.sample_rate_hz) if self.echo is not None else None
        self._on_echo_state = on_echo_state
        self._echo_state = self.echo.state if self.echo is not None else None
        self._budget = TokenBucket(MAX_SPEED, BURST_S, now_s=time.monotonic())  # tokens are seconds of audio

    def push(self, data: bytes, now_s: float | None = None) -> int:
        """Decode and queue one binary frame; returns the number of blocks dropped (0 or 1)."""
        if self.queue.closed:
            return 0
        pcm, reference = split_reference(data, self.format)
        if not self._budget.allow(time.monotonic() if now_s is None else now_s, cost=len(pcm) / self.format.sample_rate_hz):
            self.queue.drop()
            return 1
        block = self.resample(pcm)
        if self.echo is not None:
            block = self._cancel(block, self.resample_reference(reference))
        if len(block) == 0:
            return 0
        return 0 if self.queue.put(block) else 1

    def _cancel(self, block: np.ndarray, reference: np.ndarray) -> np.ndarray:
        if len(reference) != len(block):  # the two resamplers run in step; should they not, the echo is left in
            reference = None
        out = self.echo.process(block, reference)
        if self.echo.state != self._echo_state:
            self._echo_state = self.echo.state
            if self._on_echo_state is not None:
                self._on_echo_state()
        return out

    def echo_status(self) -> dict | None:
        """{"state", "error"} of this stream's echo canceller, or None without one."""
        if self.echo is None:
            return None
        return {"state": self.echo.state, "error": self.echo.error}

    def delay_s(self, nbytes: int, now_s: float | None = None) -> float:
        """How long a sender should wait before `nbytes` more fit the real-time budget (0: now).

        A transport that can hold a sender back (TCP backpressure) waits this long instead of
        having the audio dropped by `push`; keep each frame under BURST_S of audio."""
        cost = nbytes / self.format.bytes_per_frame / self.format.sample_rate_hz
        return self._budget.wait_s(time.monotonic() if now_s is None else now_s, cost)

    def end(self) -> None:
        if not self.queue.closed:
            tail = self.resample(np.zeros(0, dtype=np.float32), last=True)
            if self.echo is not None:
                reference = self.resample_reference(np.zeros(0, dtype=np.float32), last=True)
                tail = np.concatenate([self._cancel(tail, reference), self.echo.flush()])
                self.echo.close()
            if len(tail):
                self.queue.put(tail)
            self.queue.close()

    def blocks(self) -> AsyncIterator[np.ndarray]:
        return aiter(self.queue)

