"""The microphone, through sounddevice (PortAudio).

The PortAudio callback runs on PortAudio's thread and does one thing: copy
the block and hand it to the event loop with `loop.call_soon_threadsafe`
into a bounded `BlockQueue` (a full queue drops and counts, never blocks).
`blocks()` resamples to 16 kHz and yields.

No device, or a device that vanishes (no audio for STALL_S, or the stream
finishes with an error): the state becomes "unavailable" with the reason,
PortAudio re-enumerates devices, and the device is re-opened every
`[audio] reopen_interval_s` until it works. The daemon keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import numpy as np

from assistant.asr.features import SAMPLE_RATE_HZ
from assistant.audio.blocks import BlockQueue, InputState, StreamResampler
from assistant.config import AudioConfig
from assistant.errors import AssistantError

log = logging.getLogger(__name__)

STALL_S = 2.0  # no audio for this long from an open stream: the device is gone


def parse_device(spec: str) -> int | str | None:
    """Config value -> sounddevice device: "" = default, digits = index, else a name substring."""
    spec = spec.strip()
    if not spec:
        return None
    return int(spec) if spec.isdigit() else spec


def import_sounddevice():
    """sounddevice, imported (and PortAudio initialized) on first use only."""
    try:
        import sounddevice
    except OSError as exc:  # libportaudio2 missing
        raise AssistantError(f"PortAudio is not available ({exc}); install libportaudio2 (scripts/setup.sh)") from None
    return sounddevice


class Microphone:
    kind = "microphone"

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

    def _open(self, loop: asyncio.AbstractEventLoop, queue: BlockQueue, rescan: bool):
        """Open and start the input stream (runs in a thread: PortAudio calls may block)."""
        sd = import_sounddevice()
        if rescan:  # find devices plugged in since PortAudio was initialized
            sd._terminate()
            sd._initialize()
        device = parse_device(self.cfg.device)

        def callback(indata, frames, time_info, status) -> None:
            block = indata[:, 0].copy()
            try:
                if status.input_overflow:
                    loop.call_soon_threadsafe(queue.drop)
                loop.call_soon_threadsafe(queue.put, block)
            except RuntimeError:  # the loop is closed: shutting down
                pass

        def finished() -> None:
            try:
                loop.call_soon_threadsafe(queue.close)
            except RuntimeError:
                pass

        try:
            if device is None:
                try:
                    sd.query_devices(kind="input")
                except (sd.PortAudioError, ValueError):
                    raise AssistantError("no audio input device found (is a microphone connected, "
                                         "or PipeWire/PulseAudio running?)") from None
            rate = self._rate(sd, device)
            stream = sd.InputStream(device=device, samplerate=rate, channels=1, dtype="float32",
                                    blocksize=rate * self.cfg.block_ms // 1000, latency="low",
                                    callback=callback, finished_callback=finished)
            stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            raise AssistantError(f"cannot open audio input {self.device_name!r}: {exc}") from None
        return stream, rate

    def _rate(self, sd, device) -> int:
        """The configured rate; else 16 kHz when the device takes it (no resampling here), else its default."""
        if self.cfg.input_sample_rate_hz:
            return self.cfg.input_sample_rate_hz
        try:
            sd.check_input_settings(device=device, samplerate=SAMPLE_RATE_HZ, channels=1, dtype="float32")
            return SAMPLE_RATE_HZ
        except (sd.PortAudioError, ValueError):
            return int(sd.query_devices(device, "input")["default_samplerate"])

    @staticmethod
    def _close(stream) -> None:
        try:
            stream.abort()
            stream.close()
        except Exception as exc:  # noqa: BLE001 - a vanished device may fail to close; nothing to do
            log.debug("closing input stream: %s", exc)

    async def blocks(self) -> AsyncIterator[np.ndarray]:
        loop = asyncio.get_running_loop()
        rescan = False
        while True:
            self.queue = BlockQueue(self.cfg.queue_blocks, self.on_drop)
            try:
                stream, rate = await asyncio.to_thread(self._open, loop, self.queue, rescan)
            except AssistantError as exc:
                self._set("unavailable", f"{exc}; retrying every {self.cfg.reopen_interval_s} s")
                rescan = True
                await asyncio.sleep(self.cfg.reopen_interval_s)
                continue
            self._set("open", rate=rate)
            resample = StreamResampler(rate)
            try:
                while True:
                    try:
                        block = await self.queue.get(timeout_s=STALL_S)
                    except TimeoutError:
                        block = None
                    if block is None:
                        break
                    out = resample(block)
                    if len(out):
                        yield out
            finally:
                await asyncio.to_thread(self._close, stream)
            self._set("unavailable", f"audio input {self.device_name!r} stopped delivering audio; re-opening every {self.cfg.reopen_interval_s} s")
            rescan = True
            await asyncio.sleep(self.cfg.reopen_interval_s)
