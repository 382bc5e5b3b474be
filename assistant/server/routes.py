"""Plain HTTP on the WebSocket port, through websockets' `process_request` hook.

    /ws         WebSocket upgrade (token, Origin and Host checked here first)
    /healthz    200 + JSON component state ("state": starting, ready, degraded or stopping)
    /readyz     the same JSON; 200 once the daemon is ready (the recognizer loaded), else 503
    /metrics    Prometheus text (token required when one is configured)
    /           the web UI (static/index.html, under a same-origin-only Content-Security-Policy)
                when present, else a short notice
    /static/... other files of the web UI, confined to the static folder
    /media/ID   the audio file of a playable song (music-folder catalogs only; token
                required when one is configured); one byte range per request (seeking)
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import mimetypes
import re
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from pathlib import Path
from urllib.parse import unquote, urlsplit

from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from assistant.server.metrics import DaemonMetrics
from assistant.server.security import AccessPolicy

WS_PATH = "/ws"
STATIC_DIR = Path(__file__).resolve().parent / "static"
MAX_STATIC_BYTES = 20 * 1024 * 1024
MAX_MEDIA_BYTES = 500 * 1024 * 1024
SONG_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
BYTE_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
# The web UI's own types, whatever the host's mime.types says: browsers refuse module scripts
# and AudioWorklets served as anything but JavaScript.
UI_TYPES = {".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css"}
# The web UI loads nothing from elsewhere: scripts, styles, its WebSocket and media all come from this daemon.
PAGE_POLICY = ("default-src 'self'; img-src 'self' data:; media-src 'self'; connect-src 'self'; "
               "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

NO_UI_PAGE = """<!doctype html><meta charset="utf-8"><title>assistant</title>
<p>The assistant daemon is running. Its WebSocket is at <code>/ws</code>
(protocol: docs/protocol.md); health at <a href="/healthz">/healthz</a>,
metrics at <a href="/metrics">/metrics</a>. The web player is not installed.</p>
"""


def response(status: int, body: bytes | str, content_type: str = "text/plain; charset=utf-8",
             extra: list[tuple[str, str]] | None = None) -> Response:
    data = body.encode() if isinstance(body, str) else body
    headers = Headers([
        ("Date", email.utils.formatdate(usegmt=True)),
        ("Content-Length", str(len(data))),
        ("Content-Type", content_type),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        *(extra or []),
    ])
    s = HTTPStatus(status)
    return Response(s.value, s.phrase, headers, data)


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range a `Range` header asks of a `size`-byte file, as (first, last) inclusive.

    None means "send the whole file" (no header, several ranges, or one this server does not
    parse, which HTTP allows it to ignore); ValueError means the range lies outside the file (416).
    """
    m = BYTE_RANGE.fullmatch((header or "").strip())
    if m is None or not (m.group(1) or m.group(2)):
        return None
    if not m.group(1):  # bytes=-N: the last N bytes
        n = int(m.group(2))
        if n == 0 or size == 0:
            raise ValueError("empty suffix range")
        return max(0, size - n), size - 1
    first = int(m.group(1))
    last = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    if first >= size or last < first:
        raise ValueError(f"range {first}-{m.group(2)} outside a {size}-byte file")
    return first, last


class HttpRoutes:
    """`process_request` for websockets' serve(): answers HTTP, or lets a valid /ws upgrade through."""

    def __init__(self, policy: AccessPolicy, metrics: DaemonMetrics, health: Callable[[], dict],
                 media: Callable[[str], Awaitable[Path | None]] | None = None, static_dir: Path = STATIC_DIR):
        self.policy = policy
        self.metrics = metrics
        self.health = health
        self.media = media  # song id -> its audio file, already confined to the music folders
        self.static_dir = static_dir

    async def __call__(self, connection: object, request: Request) -> Response | None:
        resp = await self.route(request)
        if resp is not None and resp.status_code >= 400:
            self.metrics.http_refused.inc(1, str(resp.status_code))
        return resp

    async def route(self, request: Request) -> Response | None:
        headers = request.headers
        if not self.policy.host_ok(headers.get("Host")):
            return response(403, "forbidden: Host must be a loopback name on a loopback-bound daemon\n")
        path = urlsplit(request.path).path
        if path == WS_PATH:
            if not self.policy.origin_ok(headers.get("Origin"), headers.get("Host")):
                return response(403, "forbidden: this Origin is not allowed; add it to [server] allowed_origins\n")
            if not self.policy.token_ok(request.path, headers.get("Authorization")):
                return response(401, "unauthorized: a valid token is required (?token=... or Authorization: Bearer ...)\n")
            if "websocket" not in headers.get("Upgrade", "").lower():
                return response(426, "this is the WebSocket endpoint; connect with a WebSocket client\n", extra=[("Upgrade", "websocket")])
            return None  # proceed with the WebSocket handshake
        if request.method != "GET":
            return response(405, "method not allowed\n", extra=[("Allow", "GET")])
        if path in ("/healthz", "/readyz"):
            health = self.health()
            status = 200 if path == "/healthz" or health.get("ready") else 503
            return response(status, json.dumps(health) + "\n", "application/json")
        if path == "/metrics":
            if not self.policy.token_ok(request.path, headers.get("Authorization")):
                return response(401, "unauthorized: a valid token is required\n")
            return response(200, self.metrics.render(), "text/plain; version=0.0.4; charset=utf-8")
        if path in ("/", "/index.html"):
            index = self.static_dir / "index.html"
            if index.is_file():
                return await self._file(index, extra=[("Content-Security-Policy", PAGE_POLICY), ("Referrer-Policy", "no-referrer")])
            return response(200, NO_UI_PAGE, "text/html; charset=utf-8")
        if path.startswith("/static/"):
            return await self._static(unquote(path[len("/static/"):]))
        if path.startswith("/media/"):
            if not self.policy.token_ok(request.path, headers.get("Authorization")):
                return response(401, "unauthorized: a valid token is required\n")
            return await self._media(unquote(path[len("/media/"):]), headers.get("Range"))
        return response(404, "not found\n")

    async def _media(self, song_id: str, range_header: str | None = None) -> Response:
        if not SONG_ID.fullmatch(song_id) or self.media is None:
            return response(404, "no such song\n")
        path = await self.media(song_id)
        if path is None:
            return response(404, f"song {song_id} has no playable file in the configured music folders\n")
        return await self._file(path, MAX_MEDIA_BYTES, range_header=range_header, extra=[("Accept-Ranges", "bytes")])

    async def _static(self, rel: str) -> Response:
        root = self.static_dir.resolve()
        try:
            target = (root / rel).resolve()
        except (OSError, ValueError):
            return response(404, "not found\n")
        if root not in target.parents or not target.is_file():
            return response(404, "not found\n")
        return await self._file(target)

    async def _file(self, path: Path, max_bytes: int = MAX_STATIC_BYTES, range_header: str | None = None,
                    extra: list[tuple[str, str]] | None = None) -> Response:
        extra = list(extra or [])
        try:
            size = path.stat().st_size
            if size > max_bytes:
                return response(413, f"file larger than {max_bytes // 2**20} MB\n")
            try:
                part = byte_range(range_header, size) if range_header else None
            except ValueError as exc:
                return response(416, f"{exc}\n", extra=[*extra, ("Content-Range", f"bytes */{size}")])
            data = await asyncio.to_thread(_read, path, part)  # off the event loop
        except OSError:
            return response(404, "not found\n")
        kind = UI_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind in ("application/javascript", "application/json"):
            kind += "; charset=utf-8"
        if part is None:
            return response(200, data, kind, extra)
        return response(206, data, kind, [*extra, ("Content-Range", f"bytes {part[0]}-{part[1]}/{size}")])


def _read(path: Path, part: tuple[int, int] | None) -> bytes:
    if part is None:
        return path.read_bytes()
    with path.open("rb") as fh:
        fh.seek(part[0])
        return fh.read(part[1] - part[0] + 1)
