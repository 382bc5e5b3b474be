"""Who may talk to the daemon: bind address, token, Host and Origin checks. Pure functions.

- Binding to anything but loopback needs a token (`check_bind`).
- With a token configured, every WebSocket and /metrics request must carry it
  (`?token=...` or `Authorization: Bearer ...`).
- Browsers send `Origin`: it must be the daemon's own page or listed in
  `[server] allowed_origins`, so a web page on another site cannot drive the
  daemon. Clients that send no Origin (not browsers) are accepted.
- On loopback binds the `Host` header must be a loopback name, which defeats
  DNS rebinding (evil.example resolving to 127.0.0.1).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from urllib.parse import parse_qs, urlsplit

from assistant.config import ServerConfig
from assistant.errors import AssistantError

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost names (brackets and case ignored)."""
    h = host.strip().strip("[]").lower()
    if h in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def check_bind(cfg: ServerConfig) -> None:
    """Refuse to listen off loopback without a token."""
    if not is_loopback(cfg.host) and not cfg.token:
        raise AssistantError(
            f"[server] token: a token is required when host is {cfg.host!r} (not a loopback address); "
            "set [server] token (or ASSISTANT_SERVER_TOKEN) to a long random secret, or bind 127.0.0.1")
    if cfg.token and len(cfg.token) < 16:
        raise AssistantError("[server] token: expected at least 16 characters")


def _split_host(host_header: str) -> tuple[str, str]:
    """'127.0.0.1:8765' -> ('127.0.0.1', '8765'); '[::1]:80' -> ('::1', '80'); ('', '?') for what is not host[:port]."""
    host_header = host_header.strip()
    if any(c in host_header for c in "@/?#\\ "):  # userinfo, a path...: not a Host header ('evil:80@127.0.0.1' is not loopback)
        return "", "?"
    parts = urlsplit("//" + host_header)
    try:
        port = str(parts.port or "")
    except ValueError:
        port = "?"
    return (parts.hostname or ""), port


class AccessPolicy:
    def __init__(self, cfg: ServerConfig):
        self.token = cfg.token
        self.loopback_bind = is_loopback(cfg.host)
        self.allowed_origins = frozenset(o.rstrip("/").lower() for o in cfg.allowed_origins)

    def host_ok(self, host_header: str | None) -> bool:
        if not self.loopback_bind:
            return True
        if not host_header:
            return False
        return is_loopback(_split_host(host_header)[0])

    def origin_ok(self, origin: str | None, host_header: str | None) -> bool:
        if origin is None:
            return True  # not a browser
        o = origin.strip().rstrip("/").lower()
        if o in self.allowed_origins:
            return True
        parts = urlsplit(o)
        if parts.scheme not in ("http", "https") or not host_header:
            return False
        try:
            origin_port = str(parts.port or (443 if parts.scheme == "https" else 80))
        except ValueError:
            return False
        host, port = _split_host(host_header.lower())
        port = port or "80"
        if self.loopback_bind:  # the daemon's own page under any loopback name
            return is_loopback(parts.hostname or "") and origin_port == port
        return (parts.hostname or "") == host and origin_port == port

    def token_ok(self, path: str, authorization: str | None) -> bool:
        if not self.token:
            return True
        given = parse_qs(urlsplit(path).query).get("token", [""])[0]
        if not given and authorization and authorization.lower().startswith("bearer "):
            given = authorization[7:].strip()
        # Constant time, and the same time whatever the length of the guess: digests of equal length are compared.
        return hmac.compare_digest(hashlib.sha256(given.encode()).digest(), hashlib.sha256(self.token.encode()).digest())
