"""What every audio source shares: a bounded block queue and a streaming resampler.

A source is anything with `source_id`, `kind` and an async iterator
`blocks()` of float32 mono 16 kHz arrays that ends when the source ends.
Producers call `BlockQueue.put` on the event loop thread (the microphone's
PortAudio callback gets there through `loop.call_soon_threadsafe`); `put`
never blocks: a full queue drops the block and counts it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np

from assistant.asr.features import SAMPLE_RATE_HZ


class AudioSource(Protocol):
    source_id: str
    kind: str  # "microphone", "file" or "remote"

    def blocks(self) -> AsyncIterator[np.ndarray]:
        """float32 mono SAMPLE_RATE_HZ blocks until the source ends."""


@dataclass(frozen=True)
class InputState:
    """The daemon's local input as reported in `status.input`."""

    kind: str                      # "microphone", "file" or "none"
    device: str                    # device name as configured, the file path, or ""
    state: str                     # "opening", "open", "unavailable", "finished" or "off"
    error: str | None = None
    sample_rate_hz: int | None = None  # capture rate before resampling

    def to_dict(self) -> dict:
        return asdict(self)


class BlockQueue:
    """Bounded FIFO of audio blocks between a producer and the pipeline."""

    def __init__(self, max_blocks: int, on_drop: Callable[[], None] | None = None):
        self.max_blocks = max_blocks
        self.on_drop = on_drop
        self.dropped = 0
        self.closed = False
        self._items: deque[np.ndarray] = deque()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, block: np.ndarray) -> bool:
        """Queue a block; False (and counted) when the queue is full or closed."""
        if self.closed:
            return False
        if len(self._items) >= self.max_blocks:
            self.drop()
            return False
        self._items.append(block)
        self._ready.set()
        return True

    def drop(self) -> None:
        """Count a block lost before it reached the queue (full queue, or refused by the producer)."""
        self.dropped += 1
        if self.on_drop is not None:
            self.on_drop()

    def close(self) -> None:
        """No more blocks; the consumer drains what is queued, then stops."""
        self.closed = True
        self._ready.set()

    async def get(self, timeout_s: float | None = None) -> np.ndarray | None:
        """The next block; None when closed and drained. TimeoutError after `timeout_s` without one."""
        while not self._items:
            if self.closed:
                return None
            self._ready.clear()
            async with asyncio.timeout(timeout_s):  # no extra task per block, unlike wait_for
                await self._ready.wait()
        return self._items.popleft()

    async def __aiter__(self) -> AsyncIterator[np.ndarray]:
        while (block := await self.get()) is not None:
            yield block


class StreamResampler:
    """Any rate -> SAMPLE_RATE_HZ, block by block, keeping filter state between blocks."""

    def __init__(self, in_rate_hz: int, out_rate_hz: int = SAMPLE_RATE_HZ):
        self.in_rate_hz = in_rate_hz
        self.out_rate_hz = out_rate_hz
        self._stream = None
        if in_rate_hz != out_rate_hz:
            import soxr

            self._stream = soxr.ResampleStream(in_rate_hz, out_rate_hz, 1, dtype="float32", quality="HQ")

    def __call__(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        block = np.ascontiguousarray(block, dtype=np.float32)
        if self._stream is None:
            return block
        return self._stream.resample_chunk(block, last=last)
