"""The microphone's own process: opens the input with PortAudio and writes framed messages to stdout.

    python -m assistant.audio.capture_worker --device SPEC --rate-hz N --preferred-rate-hz N --block-ms MS

Why a process: a PortAudio call can block for ever when the sound server goes away (Pa_AbortStream
joining a callback thread stuck inside the ALSA pulse plugin; reproduced by stopping PulseAudio under
load), and a thread blocked in C cannot be cancelled. The daemon kills this process instead and starts
a fresh one, which also re-enumerates the devices (a microphone plugged in later is found).

Messages, each KIND (1 byte) + payload length (uint32, little-endian) + payload:
  OPEN     JSON {"rate_hz": int}: the stream runs at that rate
  AUDIO    float32 mono samples at that rate, one PortAudio block
  DROPPED  uint32: blocks lost since the last DROPPED (PortAudio overflow, or this process's queue full)
  ERROR    one line of UTF-8; the process then exits with status 2
The process ends when its stdin closes (the daemon went away) or stdout breaks. It leaves with os._exit:
PortAudio's exit handler would try to close a stream that may be the stuck one.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import struct
import sys
import threading

from assistant.errors import AssistantError

HEADER = struct.Struct("<cI")
COUNT = struct.Struct("<I")   # the DROPPED payload
OPEN, AUDIO, DROPPED, ERROR = b"O", b"A", b"D", b"E"
MAX_PAYLOAD_BYTES = 1 << 20   # a block of 100 ms at 384 kHz is 150 kB; anything larger is a broken stream
QUEUE_BLOCKS = 100            # between the PortAudio callback and the writer


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


def choose_rate(sd, device, rate_hz: int, preferred_rate_hz: int) -> int:
    """The configured rate; else the preferred one (the recognizer's) when the device takes it, else its default."""
    if rate_hz:
        return rate_hz
    try:
        sd.check_input_settings(device=device, samplerate=preferred_rate_hz, channels=1, dtype="float32")
        return preferred_rate_hz
    except (sd.PortAudioError, ValueError):
        return int(sd.query_devices(device, "input")["default_samplerate"])


def open_stream(spec: str, rate_hz: int, preferred_rate_hz: int, block_ms: int, callback, finished):
    """Open and start the input stream -> (stream, rate). AssistantError with a one-line reason."""
    sd = import_sounddevice()
    device = parse_device(spec)
    try:
        if device is None:
            try:
                sd.query_devices(kind="input")
            except (sd.PortAudioError, ValueError):
                raise AssistantError("no audio input device found (is a microphone connected, "
                                     "or PipeWire/PulseAudio running?)") from None
        rate = choose_rate(sd, device, rate_hz, preferred_rate_hz)
        stream = sd.RawInputStream(device=device, samplerate=rate, channels=1, dtype="float32",
                                   blocksize=rate * block_ms // 1000, latency="low",
                                   callback=callback, finished_callback=finished)
        stream.start()
    except (sd.PortAudioError, ValueError) as exc:
        raise AssistantError(f"cannot open audio input {spec or 'default'!r}: {exc}") from None
    return stream, rate


def encode(kind: bytes, payload: bytes) -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def decode_header(header: bytes) -> tuple[bytes, int]:
    """-> (kind, payload length); ValueError for anything this module does not write."""
    kind, length = HEADER.unpack(header)
    if kind not in (OPEN, AUDIO, DROPPED, ERROR) or length > MAX_PAYLOAD_BYTES:
        raise ValueError(f"bad capture message header {header!r}")
    return kind, length


def _exit_when_stdin_closes() -> None:
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        os._exit(0)


def run(spec: str, rate_hz: int, preferred_rate_hz: int, block_ms: int) -> None:
    out = sys.stdout.buffer
    blocks: queue.Queue = queue.Queue(QUEUE_BLOCKS)
    dropped = 0  # counted on PortAudio's thread, sent and reset on this one
    lock = threading.Lock()

    def send(kind: bytes, payload: bytes) -> None:
        out.write(encode(kind, payload))
        out.flush()

    def callback(indata, frames, time_info, status) -> None:
        nonlocal dropped
        lost = int(bool(status.input_overflow))
        try:
            blocks.put_nowait(bytes(indata))
        except queue.Full:
            lost += 1
        if lost:
            with lock:
                dropped += lost

    def finished() -> None:
        blocks.put(None)

    try:
        stream, rate = open_stream(spec, rate_hz, preferred_rate_hz, block_ms, callback, finished)
    except AssistantError as exc:
        send(ERROR, str(exc).encode())
        os._exit(2)
    send(OPEN, json.dumps({"rate_hz": rate}).encode())
    while (block := blocks.get()) is not None:
        if dropped:
            with lock:
                count, dropped = dropped, 0
            send(DROPPED, COUNT.pack(count))
        send(AUDIO, block)
    send(ERROR, b"the PortAudio stream finished")
    os._exit(2)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m assistant.audio.capture_worker", description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="", help="'' = the default input, digits = an index, else a name substring")
    ap.add_argument("--rate-hz", type=int, default=0, help="0 = the preferred rate when the device takes it, else its default")
    ap.add_argument("--preferred-rate-hz", type=int, default=16000, help="the rate the daemon works at (no resampling)")
    ap.add_argument("--block-ms", type=int, default=30)
    args = ap.parse_args(argv)
    threading.Thread(target=_exit_when_stdin_closes, daemon=True, name="stdin-watch").start()
    try:
        run(args.device, args.rate_hz, args.preferred_rate_hz, args.block_ms)
    except (BrokenPipeError, KeyboardInterrupt):
        pass
    os._exit(0)


if __name__ == "__main__":
    main()
