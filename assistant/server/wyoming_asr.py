"""A Wyoming protocol speech-to-text service: Home Assistant's voice pipeline uses our recognizer.

One `WyomingSession` per TCP connection (events from the `wyoming` package):

    describe                     -> info: our ASR program and model, English, streaming transcripts
    transcribe                   -> starts a request (optional; audio-start alone does too)
    audio-start                  -> a `WyomingSource` through the daemon's per-source pipeline:
                                    endpointer, streaming recognizer, catalog-biased final (and
                                    whatever final pass the pipeline runs), commands unless
                                    [wyoming] run_commands = false
    audio-chunk                  -> PCM into the source, paced to at most MAX_SPEED x real time
                                    after a BURST_S burst by holding the reader (TCP backpressure);
                                    nothing is dropped
    audio-stop                   -> the source ends; once every utterance in it has its final:
                                    transcript-start, transcript-chunk..., transcript, transcript-stop
    (while the daemon starts)    -> audio is kept and answered once the recognizer is ready; more
                                    than [server] startup_buffer_s of speech: error startup_buffer_full
                                    at once, and nothing more for that request
    ping                         -> pong
    anything else, bad audio     -> error (the connection stays up)

The session watches the hub for its own source's events (vad.start, partials, finals,
errors), so the Wyoming path gets exactly what the WebSocket and microphone paths get.
`transcript` holds the finals of the request's utterances joined by a space ("" when
no speech was found). `transcript-chunk`s carry words of the running greedy partial
once they stood unchanged in two partials; they are appended text, and when the
final revises an already streamed word they do not add up to it: `transcript` is
the answer.

Safe by default like the WebSocket: 127.0.0.1; any other host needs [wyoming]
allowed_clients (Wyoming has no authentication); headers, data and payloads are
size-bounded, connections are counted, idle connections are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Protocol

import numpy as np
from wyoming.asr import Transcribe, Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event, async_write_event
from wyoming.info import AsrModel, AsrProgram, Attribution, Describe, Info
from wyoming.ping import Ping, Pong

from assistant import __version__
from assistant.audio.remote import RemoteSource
from assistant.config import AsrConfig, WyomingConfig
from assistant.errors import AssistantError
from assistant.server import protocol as p
from assistant.server.metrics import Counter, DaemonMetrics, Histogram
from assistant.server.security import is_loopback

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 64 * 1024      # one JSON header line
MAX_DATA_BYTES = 64 * 1024        # an event's extra JSON data
MAX_PAYLOAD_BYTES = 1024 * 1024   # an event's binary payload (an audio chunk: 32 s of 16 kHz 16-bit mono)
IDLE_TIMEOUT_S = 300.0            # a connection that sends nothing this long is closed
RESULT_TIMEOUT_S = 60.0           # after audio-stop, the longest wait for the finals (not counting the daemon's start)
PIECE_S = 0.1                     # audio chunks are fed in pieces of at most this long (pacing granularity)
STABLE_PARTIALS = 2               # a word is streamed once it stood in this many consecutive partials
LANGUAGES = ["en"]

# error codes of Wyoming `error` events (the WebSocket protocol's where they mean the same)
E_UNKNOWN_TYPE = p.E_UNKNOWN_TYPE
E_BAD_AUDIO = p.E_BAD_AUDIO
E_AUDIO_NOT_STARTED = p.E_AUDIO_NOT_STARTED
E_BAD_STATE = p.E_BAD_STATE
E_BAD_MESSAGE = p.E_BAD_MESSAGE
E_TOO_MANY = "too_many_clients"
E_NOT_ALLOWED = "not_allowed"
E_TIMEOUT = "timeout"

HANDLED = ("describe", "transcribe", "audio-start", "audio-chunk", "audio-stop", "ping")


class BadEvent(Exception):
    """The stream cannot be read on (bad framing); answered with an error, then the connection closes."""


class WyomingBackend(Protocol):
    """What a session needs from the daemon."""

    def add_listener(self, listener: Callable[[p.ServerEvent], None]) -> None: ...

    def remove_listener(self, listener: Callable[[p.ServerEvent], None]) -> None: ...

    def start_source(self, source: RemoteSource, run_commands: bool) -> asyncio.Task:
        """Run `source` through the pipeline (as the default user) until it ends."""

    def starting(self) -> bool:
        """The recognizer is still loading (audio is kept until it is ready)."""


def check_wyoming_bind(cfg: WyomingConfig) -> None:
    """Refuse to listen off loopback without an allow-list of clients."""
    if cfg.enabled and not is_loopback(cfg.host) and not cfg.allowed_clients:
        raise AssistantError(
            f"[wyoming] allowed_clients: required when host is {cfg.host!r} (not a loopback address), because the "
            "Wyoming protocol has no authentication; list the Home Assistant host, e.g. [\"192.168.1.20\"], or bind 127.0.0.1")


def describe(asr: AsrConfig) -> Info:
    """The `info` answer: one ASR program with our model, streaming transcripts."""
    attribution = Attribution(name="assistant (voice music assistant)", url="")
    model = AsrModel(name=Path(asr.model_path).stem, attribution=attribution, installed=True,
                     description="streaming CTC recognizer biased towards the music catalog's names",
                     version=__version__, languages=list(LANGUAGES))
    program = AsrProgram(name="assistant", attribution=attribution, installed=True,
                         description="Voice music assistant speech-to-text (knows your music catalog)",
                         version=__version__, models=[model], supports_transcript_streaming=True)
    return Info(asr=[program])


async def read_event(reader: asyncio.StreamReader) -> Event | None:
    """One Wyoming event with bounded sizes; None at end of stream. BadEvent for broken framing."""
    try:
        line = await reader.readline()
    except ValueError:  # longer than the reader's limit
        raise BadEvent(f"event header longer than {MAX_HEADER_BYTES} bytes") from None
    if not line:
        return None
    if not line.endswith(b"\n"):
        return None  # the connection ended inside a header
    try:
        header = json.loads(line)
    except ValueError:
        raise BadEvent(f"event header is not JSON: {line[:60]!r}") from None
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise BadEvent("event header must be a JSON object with a 'type' string")
    data = header.get("data") or {}
    data_length, payload_length = header.get("data_length") or 0, header.get("payload_length") or 0
    if not isinstance(data, dict):
        raise BadEvent(f"{header['type']}: 'data' must be an object")
    for name, value, limit in (("data_length", data_length, MAX_DATA_BYTES), ("payload_length", payload_length, MAX_PAYLOAD_BYTES)):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
            raise BadEvent(f"{header['type']}: {name} must be an integer from 0 to {limit}, got {str(value)[:20]}")
    try:
        if data_length:
            extra = json.loads(await reader.readexactly(data_length))
            if not isinstance(extra, dict):
                raise BadEvent(f"{header['type']}: the data block must be a JSON object")
            data = {**data, **extra}
        payload = await reader.readexactly(payload_length) if payload_length else None
    except asyncio.IncompleteReadError:
        return None
    except ValueError:
        raise BadEvent(f"{header['type']}: the data block is not JSON") from None
    return Event(type=header["type"], data=data, payload=payload)


class WyomingSource(RemoteSource):
    """A Wyoming audio stream as a pipeline source; `drained` is set when the pipeline has read its last block."""

    kind = "wyoming"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.drained = asyncio.Event()

    async def blocks(self) -> AsyncIterator[np.ndarray]:
        async for block in self.queue:
            yield block
        # the pipeline flushes its endpointer right after this, before it next waits,
        # so whoever wakes on `drained` sees every vad.end of this source
        self.drained.set()


class _Request:
    """One audio-start .. audio-stop stream and what the pipeline said about it."""

    def __init__(self, source: WyomingSource, on_event: Callable[["_Request", p.ServerEvent], None]):
        self.source = source
        self.task: asyncio.Task | None = None
        self.listener = lambda event: on_event(self, event)  # registered with the hub while the request runs
        self.open: set[str] = set()           # utterances without a final yet
        self.order: list[str] = []            # utterances in order of vad.start
        self.finals: dict[str, str] = {}
        self.partial: tuple[str, str] | None = None  # (utterance, text) of the open utterance
        self.failures: list[tuple[str, str]] = []  # (error code, message)
        self.changed = asyncio.Event()
        self.streamed = ""                    # text sent in transcript-chunks so far
        self.started = False                  # transcript-start sent
        self.history: list[list[str]] = []    # the last partials' words, for stability
        self.told = False                     # an error was sent before audio-stop (the request's answer)

    def text(self, with_partial: bool = True) -> str:
        parts = [self.finals[u] for u in self.order if u in self.finals]
        if with_partial and self.partial and self.partial[0] not in self.finals:
            parts.append(self.partial[1])
        return " ".join(t for t in parts if t)


class WyomingSession:
    """One Wyoming client connection, from accept to cleanup."""

    def __init__(self, server: "WyomingServer", reader: asyncio.StreamReader, writer: asyncio.StreamWriter, name: str):
        self.server = server
        self.reader = reader
        self.writer = writer
        self.name = name
        self.out: asyncio.Queue[Event | None] = asyncio.Queue()
        self.request: _Request | None = None
        self.streams = 0
        self.chunk_errors = 0  # audio-chunks refused since the last audio-start (only the first is answered)

    # -- outgoing --------------------------------------------------------

    def send(self, event: Event) -> None:
        self.out.put_nowait(event)

    def error(self, code: str, text: str) -> None:
        self.server.count(f"error_{code}")
        self.send(Error(text=text, code=code).event())

    async def _write(self) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while (event := await self.out.get()) is not None:
                await async_write_event(event, self.writer)

    # -- lifecycle ---------------------------------------------------------

    async def run(self) -> None:
        writer_task = asyncio.create_task(self._write(), name=f"wyoming-writer-{self.name}")
        try:
            while True:
                try:
                    async with asyncio.timeout(IDLE_TIMEOUT_S):
                        event = await read_event(self.reader)
                except TimeoutError:
                    self.error(E_TIMEOUT, f"nothing received for {IDLE_TIMEOUT_S:.0f} s; closing")
                    break
                except BadEvent as exc:
                    self.error(E_BAD_MESSAGE, f"{exc}; closing the connection (expected Wyoming events: a JSON header line, "
                                              "then data_length bytes of JSON and payload_length bytes)")
                    break
                if event is None:
                    break
                await self.handle(event)
        except (ConnectionError, OSError):
            pass
        finally:
            self._abandon()
            self.out.put_nowait(None)
            with contextlib.suppress(TimeoutError, asyncio.CancelledError, ConnectionError, OSError):
                async with asyncio.timeout(2.0):
                    await writer_task  # what is queued (an error) still goes out
            writer_task.cancel()
            self.writer.close()

    def _abandon(self) -> None:
        """The client went away or the daemon stops: an open stream ends here (its utterance is still finished)."""
        req, self.request = self.request, None
        if req is not None:
            req.source.end()
            self.server.backend.remove_listener(req.listener)
            self.server.count("abandoned")

    # -- incoming ----------------------------------------------------------

    async def handle(self, event: Event) -> None:
        kind = event.type
        if Describe.is_type(kind):
            self.send(self.server.info.event())
        elif Ping.is_type(kind):
            self.send(Pong(text=Ping.from_event(event).text).event())
        elif Transcribe.is_type(kind):
            if self.request is not None:
                self.error(E_BAD_STATE, "transcribe: an audio stream is open; send audio-stop first")
        elif AudioStart.is_type(kind):
            self._start(event)
        elif AudioChunk.is_type(kind):
            await self._chunk(event)
        elif AudioStop.is_type(kind):
            await self._stop()
        else:
            self.error(E_UNKNOWN_TYPE, f"unknown event type {kind[:40]!r}; this speech-to-text service handles: {', '.join(HANDLED)}")

    def _format(self, data: dict, what: str) -> p.AudioFormat | str:
        """The stream's format, or why it is refused."""
        rate, width, channels = data.get("rate"), data.get("width"), data.get("channels")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (rate, width, channels)):
            return f"{what}: rate, width and channels must be integers, got {rate!r}, {width!r}, {channels!r}"
        if width != 2:
            return f"{what}: sample width {width} bytes is not supported; expected 2 (16-bit PCM)"
        if not p.MIN_AUDIO_RATE_HZ <= rate <= p.MAX_AUDIO_RATE_HZ:
            return f"{what}: rate {rate} Hz is not supported; expected {p.MIN_AUDIO_RATE_HZ} to {p.MAX_AUDIO_RATE_HZ} Hz"
        if channels not in (1, 2):
            return f"{what}: {channels} channels are not supported; expected 1 or 2"
        return p.AudioFormat("pcm_s16le", rate, channels)

    def _start(self, event: Event) -> None:
        if self.request is not None:
            self.error(E_BAD_STATE, "audio-start: an audio stream is already open; send audio-stop first")
            return
        fmt = self._format(event.data, "audio-start")
        if isinstance(fmt, str):
            self.error(E_BAD_AUDIO, fmt)
            return
        self.streams += 1
        self.chunk_errors = 0
        server = self.server
        source = WyomingSource(f"wyoming-{self.name}-{self.streams}", fmt, server.queue_blocks, server.on_drop)
        req = _Request(source, self._on_event)
        self.request = req
        server.backend.add_listener(req.listener)
        req.task = server.backend.start_source(source, server.cfg.run_commands)

    async def _chunk(self, event: Event) -> None:
        req = self.request
        if req is None:
            self.chunk_errors += 1
            if self.chunk_errors == 1:
                self.error(E_AUDIO_NOT_STARTED, "audio-chunk before audio-start; send audio-start with rate, width and channels first")
            return
        fmt = req.source.format
        given = {k: event.data.get(k, v) for k, v in (("rate", fmt.sample_rate_hz), ("width", 2), ("channels", fmt.channels))}
        if (given["rate"], given["width"], given["channels"]) != (fmt.sample_rate_hz, 2, fmt.channels):
            self.error(E_BAD_AUDIO, f"audio-chunk: format rate {given['rate']}, width {given['width']}, channels "
                                    f"{given['channels']} differs from audio-start's ({fmt.sample_rate_hz}, 2, {fmt.channels}); chunk dropped")
            return
        data = event.payload or b""
        piece = max(fmt.bytes_per_frame, int(fmt.sample_rate_hz * PIECE_S) * fmt.bytes_per_frame)
        try:
            for i in range(0, len(data), piece):
                part = data[i:i + piece]
                delay = req.source.delay_s(len(part))
                if delay > 0:  # ahead of real time: hold this client back (TCP backpressure), drop nothing
                    await asyncio.sleep(delay + 0.001)
                req.source.push(part)
        except p.ProtocolError as exc:
            self.error(exc.code, f"audio-chunk: {exc.message}")

    async def _stop(self) -> None:
        req = self.request
        if req is None:
            self.error(E_BAD_STATE, "audio-stop: no audio stream is open; send audio-start first")
            return
        t_stop = time.monotonic()
        req.source.end()
        try:
            await self._finals(req)
        except TimeoutError:
            req.failures.append((E_TIMEOUT, f"no transcript within {RESULT_TIMEOUT_S:.0f} s of audio-stop"))
        self.request = None
        self.server.backend.remove_listener(req.listener)
        if req.failures:
            if not req.told:
                self.error(req.failures[0][0], "; ".join(message for _, message in req.failures))
            return
        text = req.text(with_partial=False)
        self._stream(req, text, final=True)
        if not req.started:
            self.send(TranscriptStart(language=LANGUAGES[0]).event())
        self.send(Transcript(text=text, language=LANGUAGES[0]).event())
        self.send(TranscriptStop().event())
        self.server.count("transcript")
        if self.server.result_latency is not None:
            self.server.result_latency.observe(time.monotonic() - t_stop)

    async def _finals(self, req: _Request) -> None:
        """Until every utterance of the request has its final. TimeoutError after RESULT_TIMEOUT_S, counted once
        the daemon is ready: audio sent while it starts waits for the recognizer, however long its first start takes."""
        while True:
            try:
                async with asyncio.timeout(RESULT_TIMEOUT_S):
                    await asyncio.wait({asyncio.ensure_future(req.source.drained.wait()), req.task},
                                       return_when=asyncio.FIRST_COMPLETED)
                    while req.open and not req.task.done():
                        req.changed.clear()
                        await asyncio.wait({asyncio.ensure_future(req.changed.wait()), req.task},
                                           return_when=asyncio.FIRST_COMPLETED)
                return
            except TimeoutError:
                if not self.server.backend.starting():
                    raise

    # -- what the pipeline says about our source ------------------------------

    def _on_event(self, req: _Request, event: p.ServerEvent) -> None:
        if getattr(event, "source", None) != req.source.source_id:
            return
        utt = getattr(event, "utterance", None)
        if isinstance(event, p.VadStart):
            req.open.add(utt)
            req.order.append(utt)
        elif isinstance(event, p.VadEnd):
            if not event.accepted:
                req.open.discard(utt)
        elif isinstance(event, p.TranscriptPartial):
            req.partial = (utt, event.text)
            self._stream(req, req.text())
        elif isinstance(event, p.TranscriptFinal):
            req.finals[utt] = event.text
            req.open.discard(utt)
        elif isinstance(event, p.ErrorEvent) and event.code == p.E_STARTUP_BUFFER_FULL:
            if not req.failures:  # told at once, not at audio-stop: the client may still be sending
                self.error(event.code, event.message)
            req.failures.append((event.code, event.message))
            req.told = True
            req.open.discard(utt)
        elif isinstance(event, p.ErrorEvent) and utt in req.open:  # recognition of an open utterance failed
            req.failures.append((event.code, event.message))
            req.open.discard(utt)
        else:
            return
        req.changed.set()

    def _stream(self, req: _Request, text: str, final: bool = False) -> None:
        """Send the words of `text` that extend what was streamed and are settled (all of them when final)."""
        words = text.split()
        if not final:
            req.history = (req.history + [words])[-STABLE_PARTIALS:]
            settled = []
            for i, w in enumerate(words[:-1]):  # the last word may still grow
                if len(req.history) < STABLE_PARTIALS or any(len(h) <= i or h[i] != w for h in req.history):
                    break
                settled.append(w)
            words = settled
        candidate = " ".join(words)
        done = req.streamed
        if len(candidate) <= len(done) or not (not done or candidate.startswith(done + " ")):
            return
        if not req.started:
            req.started = True
            self.send(TranscriptStart(language=LANGUAGES[0]).event())
        self.send(TranscriptChunk(text=candidate[len(done):]).event())
        req.streamed = candidate


class WyomingServer:
    """The listening socket; one WyomingSession per connection."""

    def __init__(self, cfg: WyomingConfig, asr: AsrConfig, backend: WyomingBackend, queue_blocks: int,
                 on_drop: Callable[[], None] | None = None, metrics: DaemonMetrics | None = None):
        self.cfg = cfg
        self.backend = backend
        self.queue_blocks = queue_blocks
        self.on_drop = on_drop
        self.outcomes = self.result_latency = None
        if metrics is not None:
            self.outcomes = metrics.registry.add(Counter(
                "assistant_wyoming_events_total", "Wyoming requests answered, abandoned, and errors sent, by code.", ["outcome"]))
            self.result_latency = metrics.registry.add(Histogram(
                "assistant_wyoming_result_latency_seconds", "Wyoming audio-stop to transcript."))
            metrics.gauge("assistant_wyoming_sessions", "Connected Wyoming clients.", lambda: len(self.sessions))
        self.info = describe(asr)
        self.allowed = [ipaddress.ip_network(n, strict=False) for n in cfg.allowed_clients]
        self.sessions: dict[str, asyncio.Task] = {}
        self.server: asyncio.Server | None = None
        self._next = 0

    async def start(self) -> None:
        check_wyoming_bind(self.cfg)
        try:
            self.server = await asyncio.start_server(self._accept, self.cfg.host, self.cfg.port, limit=MAX_HEADER_BYTES)
        except OSError as exc:
            raise AssistantError(f"[wyoming] cannot listen on {self.cfg.host}:{self.cfg.port}: {exc.strerror or exc}") from None

    @property
    def port(self) -> int:
        return self.server.sockets[0].getsockname()[1] if self.server else self.cfg.port

    def _allowed(self, writer: asyncio.StreamWriter) -> bool:
        peer = writer.get_extra_info("peername")
        if not self.allowed:
            return True
        try:
            addr = ipaddress.ip_address(peer[0] if isinstance(peer, tuple) else "")
        except ValueError:
            return False
        if getattr(addr, "ipv4_mapped", None):
            addr = addr.ipv4_mapped
        return any(addr in net for net in self.allowed)

    async def _refuse(self, writer: asyncio.StreamWriter, code: str, text: str) -> None:
        self.count(f"error_{code}")
        with contextlib.suppress(ConnectionError, OSError, TimeoutError):
            async with asyncio.timeout(2.0):
                await async_write_event(Error(text=text, code=code).event(), writer)
        writer.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._allowed(writer):
            peer = writer.get_extra_info("peername")
            log.warning("wyoming: refused %s (not in [wyoming] allowed_clients)", peer)
            await self._refuse(writer, E_NOT_ALLOWED, "this address is not in the daemon's [wyoming] allowed_clients")
            return
        if len(self.sessions) >= self.cfg.max_clients:
            await self._refuse(writer, E_TOO_MANY, f"{self.cfg.max_clients} clients are connected ([wyoming] max_clients); try again later")
            return
        self._next += 1
        name = f"w{self._next}"
        task = asyncio.current_task()
        self.sessions[name] = task
        try:
            await WyomingSession(self, reader, writer, name).run()
        except Exception:  # noqa: BLE001 - one connection's bug must not take the service down
            log.exception("wyoming session %s failed", name)
        finally:
            self.sessions.pop(name, None)

    def count(self, outcome: str) -> None:
        if self.outcomes is not None:
            self.outcomes.inc(1, outcome)

    async def close(self, timeout_s: float = 5.0) -> None:
        """Stop accepting; end every connection (its open stream ends); at most `timeout_s`."""
        if self.server is None:
            return
        self.server.close()
        for task in list(self.sessions.values()):
            task.cancel()
        deadline = time.monotonic() + timeout_s
        if self.sessions:
            await asyncio.wait(list(self.sessions.values()), timeout=timeout_s)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await self.server.wait_closed()
