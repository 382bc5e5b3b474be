"""An audio file played into the pipeline as if it were a microphone (`serve --input FILE`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import numpy as np

from assistant.asr.features import SAMPLE_RATE_HZ
from assistant.audio.blocks import InputState
from assistant.audio.io import load_audio

# Silence appended after the file so that its last utterance ends by the
# endpointer's hangover, as it would live, rather than by end of input.
TAIL_SILENCE_MS = 1500


class FileSource:
    kind = "file"

    def __init__(self, path: str, block_ms: int = 30, realtime: bool = True, start: asyncio.Event | None = None,
                 on_state: Callable[[InputState], None] = lambda state: None, repeat: bool = False):
        self.source_id = "file"
        self.path = path
        self.block_ms = block_ms
        self.realtime = realtime
        self.start = start  # when set, playback waits for it (e.g. the first client connecting)
        self.on_state = on_state
        self.repeat = repeat  # play the file again and again (soak runs, demos); it never finishes
        self.state = InputState("file", path, "opening", sample_rate_hz=SAMPLE_RATE_HZ)
        self.audio: np.ndarray | None = None

    def _set(self, state: str) -> None:
        self.state = InputState("file", self.path, state, sample_rate_hz=SAMPLE_RATE_HZ)
        self.on_state(self.state)

    def load(self) -> None:
        """Read and resample the file (AssistantError if unreadable); call before serving."""
        self.audio = load_audio(self.path, SAMPLE_RATE_HZ)

    async def blocks(self) -> AsyncIterator[np.ndarray]:
        if self.audio is None:
            self.load()
        if self.start is not None:
            await self.start.wait()
        self._set("open")
        audio = np.concatenate([self.audio, np.zeros(SAMPLE_RATE_HZ * TAIL_SILENCE_MS // 1000, dtype=np.float32)])
        step = SAMPLE_RATE_HZ * self.block_ms // 1000
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        k = 0  # blocks so far, over every repetition
        while True:
            for i in range(0, len(audio), step):
                if self.realtime:
                    delay = t0 + (k + 1) * self.block_ms / 1000 - loop.time()  # a block is available once recorded
                    if delay > 0:
                        await asyncio.sleep(delay)
                else:
                    await asyncio.sleep(0)
                k += 1
                yield audio[i:i + step]
            if not self.repeat:
                break
        self._set("finished")
