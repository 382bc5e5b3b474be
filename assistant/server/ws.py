"""The WebSocket transport: one `ClientHandler` per connection, HTTP beside it.

Moves protocol messages; decides nothing about audio or music. What a
message means is the `Backend`'s business (the daemon implements it).

Per connection: a reader (rate limit, parse, dispatch) and a writer
draining the client's bounded `ClientQueue`, so a client that never reads
only fills its own queue and is closed with 1008 when that queue holds
nothing more it may drop. The reader waits while the client's queue is half
full, so a client that sends requests faster than it reads the answers is
slowed down (TCP backpressure) rather than dropped. Cleanup (hub, remote audio stream) is in `finally`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Protocol

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

from assistant import __version__
from assistant.config import ServerConfig
from assistant.errors import AssistantError
from assistant.server import protocol as p
from assistant.server.hub import ClientQueue, Hub
from assistant.server.metrics import DaemonMetrics
from assistant.server.ratelimit import TokenBucket
from assistant.server.routes import HttpRoutes
from assistant.server.security import AccessPolicy

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 2.0  # a client that does not answer the closing handshake is cut off after this
OPEN_TIMEOUT_S = 10.0  # a connection that has not sent a whole HTTP request (and finished the handshake) by then is cut off
RATE_ERROR_INTERVAL_S = 1.0


class RemoteStream(Protocol):
    """A client's audio stream as the transport sees it."""

    source_id: str

    def push(self, data: bytes) -> int:
        """Queue one binary frame; returns how many blocks were dropped (0 normally). Raises ProtocolError."""

    def end(self) -> None:
        """No more audio: finish the open utterance, release the source."""


class Backend(Protocol):
    """What the transport needs from the daemon."""

    def hello_config(self) -> dict: ...

    def clients_changed(self, count: int) -> None: ...

    async def query(self, msg: p.Query, session: str) -> None: ...

    async def feedback(self, msg: p.Feedback, session: str) -> None: ...

    def open_remote(self, msg: p.AudioStart, session: str) -> RemoteStream: ...

    async def media_path(self, song_id: str): ...

    async def voice(self, msg: p.ClientMessage, session: str) -> None:
        """voice.enrol, voice.forget, voice.correct (issue 18)."""


class ClientHandler:
    """One WebSocket connection, from hello to cleanup."""

    def __init__(self, server: WsServer, ws: ServerConnection, session: str):
        self.server = server
        self.ws = ws
        self.session = session
        self.bucket = TokenBucket(server.cfg.max_messages_per_s, now_s=server.clock())
        self.last_rate_error_s = -1e9
        self.remote: RemoteStream | None = None
        self.last_overflow_error_s = -1e9
        self.queue: ClientQueue | None = None

    async def run(self) -> None:
        hub = self.server.hub
        self.queue = hub.add(self.session, self._too_slow)
        writer = asyncio.create_task(self._write(), name=f"ws-writer-{self.session}")
        try:
            self.queue.put(p.Hello(session=self.session, server=f"assistant/{__version__}", instance=self.server.instance,
                                   config=self.server.backend.hello_config(), snapshot=hub.snapshot()))
            self.server.backend.clients_changed(len(hub.clients))
            await self._read()
        except ConnectionClosed:
            pass
        finally:
            writer.cancel()
            hub.remove(self.session)
            if self.remote is not None:
                self.remote.end()
                self.remote = None
            self.server.backend.clients_changed(len(hub.clients))

    # -- outgoing --------------------------------------------------------

    async def _write(self) -> None:
        try:
            while True:
                data = await self.queue.get()
                await self.ws.send(data)
        except ConnectionClosed:
            pass
        except Exception:  # noqa: BLE001 - a bug: this client is closed (1011), nobody else is affected
            log.exception("sending to client %s failed", self.session)
            await self.ws.close(CloseCode.INTERNAL_ERROR, "internal error")

    def _too_slow(self) -> None:
        log.warning("client %s reads too slowly; closing it", self.session)
        self.server.hub.remove(self.session)
        asyncio.get_running_loop().create_task(self.ws.close(CloseCode.POLICY_VIOLATION, "client too slow"))

    def _send(self, event: p.ServerEvent) -> None:
        if self.queue is not None:
            self.queue.put(event)

    def _error(self, code: str, message: str, request: str | None = None) -> None:
        self.server.metrics.refused.inc(1, code)
        self._send(p.ErrorEvent(code=code, message=message, request=request))

    # -- incoming --------------------------------------------------------

    async def _read(self) -> None:
        async for message in self.ws:
            await self.queue.wait_for_room()  # a client that sends faster than it reads is slowed down, not dropped
            now = self.server.clock()
            if not self.bucket.allow(now):
                self.server.metrics.refused.inc(1, p.E_RATE_LIMITED)
                if now - self.last_rate_error_s >= RATE_ERROR_INTERVAL_S:
                    self.last_rate_error_s = now
                    self._send(p.ErrorEvent(code=p.E_RATE_LIMITED, message=(
                        f"more than {self.server.cfg.max_messages_per_s} messages a second; messages are being dropped")))
                continue
            try:
                if isinstance(message, bytes):
                    self._audio(message, now)
                else:
                    await self._dispatch(p.parse_client_message(message))
            except p.ProtocolError as exc:
                self._error(exc.code, exc.message, exc.request)
            except AssistantError as exc:
                self._error(p.E_BAD_MESSAGE, str(exc))

    def _audio(self, data: bytes, now: float) -> None:
        if self.remote is None:
            raise p.ProtocolError(p.E_AUDIO_NOT_STARTED, "binary frame without audio.start; send audio.start with the format first")
        dropped = self.remote.push(data)
        if dropped and now - self.last_overflow_error_s >= RATE_ERROR_INTERVAL_S:
            self.last_overflow_error_s = now
            self._error(p.E_AUDIO_OVERFLOW, f"remote audio arrives faster than real time; {dropped} blocks dropped")

    async def _dispatch(self, msg: p.ClientMessage) -> None:
        backend = self.server.backend
        if isinstance(msg, p.Ping):
            self._send(p.Pong(request=msg.id))
        elif isinstance(msg, p.Query):
            await backend.query(msg, self.session)
        elif isinstance(msg, p.Feedback):
            await backend.feedback(msg, self.session)
            self._send(p.Ack(of=msg.type, request=msg.id))
        elif isinstance(msg, p.AudioStart):
            if self.remote is not None:
                raise p.ProtocolError(p.E_BAD_STATE, f"audio.start: stream {self.remote.source_id} is already open; send audio.end first", msg.id)
            self.remote = backend.open_remote(msg, self.session)
            self._send(p.Ack(of=msg.type, request=msg.id, source=self.remote.source_id))
        elif isinstance(msg, (p.VoiceEnrol, p.VoiceForget, p.VoiceCorrect)):
            await backend.voice(msg, self.session)
        elif isinstance(msg, p.AudioEnd):
            if self.remote is None:
                raise p.ProtocolError(p.E_BAD_STATE, "audio.end: no audio stream is open", msg.id)
            source = self.remote.source_id
            self.remote.end()
            self.remote = None
            self._send(p.Ack(of=msg.type, request=msg.id, source=source))


class WsServer:
    """The listening socket: WebSocket at /ws, HTTP routes beside it."""

    def __init__(self, cfg: ServerConfig, hub: Hub, backend: Backend, metrics: DaemonMetrics, health: callable):
        self.cfg = cfg
        self.hub = hub
        self.backend = backend
        self.metrics = metrics
        self.instance = secrets.token_hex(4)
        self.clock = time.monotonic  # the rate limit's clock (a test may stop it)
        self.routes = HttpRoutes(AccessPolicy(cfg), metrics, health, media=backend.media_path)
        self.server: Server | None = None
        self._next_session = 0

    async def start(self) -> None:
        try:
            self.server = await serve(
                self._handle, self.cfg.host, self.cfg.port,
                process_request=self.routes,
                max_size=self.cfg.max_message_bytes,
                compression=None,          # audio does not compress; saves CPU
                close_timeout=CLOSE_TIMEOUT_S,
                open_timeout=OPEN_TIMEOUT_S,  # a slow or stalled request line holds nothing longer than this
                server_header=f"assistant/{__version__}",
            )
        except OSError as exc:
            raise AssistantError(f"[server] cannot listen on {self.cfg.host}:{self.cfg.port}: {exc.strerror or exc}") from None

    @property
    def port(self) -> int:
        return self.server.sockets[0].getsockname()[1] if self.server else self.cfg.port

    async def _handle(self, ws: ServerConnection) -> None:
        self._next_session += 1
        self.metrics.connections.inc()
        await ClientHandler(self, ws, f"c{self._next_session}").run()

    async def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Stop accepting; close every client with 1001 (going away). Connections still open after
        `timeout_s` (a client that does not answer the closing handshake, or a busy machine) are cut off."""
        if self.server is None:
            return
        self.server.close(close_connections=True, code=CloseCode.GOING_AWAY, reason="daemon stopping")
        try:
            await asyncio.wait_for(self.server.wait_closed(), timeout_s)
        except TimeoutError:
            for connection in list(self.server.all_connections):
                connection.transport.abort()
            for task in list(self.server.handler_tasks):
                task.cancel()
