"""Security checks: links out of a music folder, the token comparison, DNS rebinding, slow or over-long requests.

The daemon runs in-process (tests/test_server.py's harness: a fake recognizer); the music-folder
check uses the real catalog loader and recommender with the hashing embedder.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket

import numpy as np
import pytest
import soundfile as sf
from websockets.asyncio.client import connect

from assistant.config import ServerConfig, load_config
from assistant.daemon import Daemon, DaemonOptions, MusicAdapter
from assistant.recommend.song import song_id
from assistant.server import security, ws as ws_module
from test_server import TOKEN, WAIT_S, FakeRecognizer, arun, http_fetch, http_get, recv, running


def tagged_ogg(path, title: str, artist: str) -> None:
    from mutagen.oggvorbis import OggVorbis

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), (0.1 * np.sin(np.arange(4000) / 3)).astype(np.float32), 8000, format="OGG", subtype="VORBIS")
    tags = OggVorbis(path)
    tags.update({"title": title, "artist": artist})
    tags.save()


def test_music_folder_links_outside_the_folder_are_not_read_or_served(tmp_path):
    from assistant.recommend.loaders.folder import load_folder

    music, outside = tmp_path / "music", tmp_path / "outside"
    tagged_ogg(music / "inside.ogg", "Inside Song", "Band")
    tagged_ogg(outside / "secret.ogg", "Secret Song", "Private")
    (music / "link.ogg").symlink_to(outside / "secret.ogg")
    (music / "linked-folder").symlink_to(outside, target_is_directory=True)
    (music / "inner").mkdir()
    (music / "inner" / "ok.ogg").symlink_to(music / "inside.ogg")  # a link that stays inside is fine

    report = load_folder(music)
    assert sorted(s.title for s in report.songs) == ["Inside Song", "Inside Song"]
    assert [(where.endswith("link.ogg"), "outside the music folder" in why) for where, why in report.skipped] == [(True, True)]

    # the daemon serves only files inside its music folders, whatever a catalog says a song's source is
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text(json.dumps({"title": "Linked", "artist": "X", "source": str(music / "link.ogg")}) + "\n"
                       + json.dumps({"title": "Passwd", "artist": "X", "source": "/etc/passwd"}) + "\n"
                       + json.dumps({"title": "Dotdot", "artist": "X", "source": str(music / ".." / "outside" / "secret.ogg")}) + "\n",
                       encoding="utf-8")
    cfg_path = tmp_path / "config.toml"
    cfg_path.write_text(f'[recommend]\nuse_default_catalog = false\ncatalogs = ["{catalog}"]\nmusic_folders = ["{music}"]\n'
                        f'embed_model = "hashing"\ncache_dir = "{tmp_path / "cache"}"\n'
                        f'[preferences]\ndb_path = "{tmp_path / "p.sqlite3"}"\n', encoding="utf-8")
    config = dataclasses.replace(load_config(cfg_path, environ={}), server=dataclasses.replace(ServerConfig(), port=0))

    async def main():
        d = Daemon(config, DaemonOptions(input="none"), lambda c: FakeRecognizer(), MusicAdapter.load)
        task = asyncio.create_task(d.run())
        await asyncio.wait_for(d.ready.wait(), WAIT_S)
        try:
            assert d.music_state["ready"], d.music_state
            base = f"http://127.0.0.1:{d.server.port}/media/"
            get = lambda title, artist: asyncio.to_thread(http_fetch, base + song_id(artist, title))  # noqa: E731
            code, _, body = await get("Inside Song", "Band")
            assert code == 200 and body.startswith(b"OggS")
            for title in ("Linked", "Passwd", "Dotdot"):
                code, _, body = await get(title, "X")
                assert code == 404 and b"no playable file in the configured music folders" in body, (title, body)
            assert (await get("Secret Song", "Private"))[0] == 404  # never read into the catalog
        finally:
            d.stop()
            await asyncio.wait_for(task, WAIT_S)

    arun(main())


def test_token_is_compared_in_constant_time_whatever_the_guess(monkeypatch):
    calls = []
    real = security.hmac.compare_digest

    def spy(a, b):
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(security.hmac, "compare_digest", spy)
    policy = security.AccessPolicy(ServerConfig(token=TOKEN))
    guesses = ["", "x", TOKEN[:-1], TOKEN[:-1] + "X", TOKEN + "0", "y" * 4096]
    assert [policy.token_ok(f"/ws?token={g}", None) for g in guesses] == [False] * len(guesses)
    assert not policy.token_ok("/ws", "Bearer " + TOKEN[:8])
    assert policy.token_ok(f"/ws?token={TOKEN}", None) and policy.token_ok("/ws", f"Bearer {TOKEN}")
    assert len(calls) == len(guesses) + 3  # every check goes through compare_digest (no early == or length test)
    assert {a for a, b in calls} == {b for a, b in calls} == {32}  # on digests: equal lengths whatever was guessed


def raw_http(port: int, request: bytes, timeout_s: float = WAIT_S) -> bytes:
    """Send a raw request and read until the daemon closes or has sent a whole response head."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
        s.sendall(request)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
        return data


def status_of(response: bytes) -> int | None:
    line = response.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) > 1 and line[1].isdigit() else None


def test_dns_rebinding_hosts_are_refused_on_every_path():
    async def main():
        async with running() as d:
            port = d.server.port
            upgrade = (b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       b"Sec-WebSocket-Version: 13\r\n")
            bad_hosts = [b"evil.example", b"evil.example:%d" % port, b"127.0.0.1.evil.example", b"localhost.evil.example",
                         b"evil.example:80@127.0.0.1", b"0x7f.evil", b""]
            for path in (b"/healthz", b"/metrics", b"/", b"/static/app.js", b"/ws"):
                extra = upgrade if path == b"/ws" else b""
                for host in bad_hosts:
                    head = b"GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (path, host, extra)
                    response = await asyncio.to_thread(raw_http, port, head)
                    assert status_of(response) == 403, (path, host, response[:200])
                no_host = await asyncio.to_thread(raw_http, port, b"GET %s HTTP/1.1\r\n%s\r\n" % (path, extra))
                assert status_of(no_host) in (400, 403), (path, no_host[:200])
                for host in (b"127.0.0.1:%d" % port, b"localhost:%d" % port, b"[::1]:%d" % port):
                    ok = await asyncio.to_thread(raw_http, port, b"GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (path, host, extra))
                    assert status_of(ok) in (101, 200), (path, host, ok[:200])
    arun(main())


def test_overlong_or_slow_requests_do_not_hold_the_daemon(monkeypatch):
    monkeypatch.setattr(ws_module, "OPEN_TIMEOUT_S", 1.0)  # the cut-off for an unfinished request, short for the test

    async def main():
        async with running() as d:
            port = d.server.port
            # an over-long request line or header: refused at once, not buffered
            for request in (b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                            b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"b" * 100_000 + b"\r\n\r\n",
                            b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-H: 1\r\n" * 1000 + b"\r\n"):
                response = await asyncio.to_thread(raw_http, port, request)
                assert response == b"" or status_of(response) in (400, 413, 414, 431), response[:200]

            # twenty clients that send their request a byte at a time and never finish it
            slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
            for s in slow:
                s.setblocking(False)

            async def trickle(s: socket.socket) -> bool:
                """True once the daemon has closed this connection."""
                for byte in b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"z" * 10_000:
                    try:
                        s.send(bytes([byte]))
                        if s.recv(1024) == b"":
                            return True
                    except BlockingIOError:
                        pass
                    except OSError:  # reset or broken pipe: closed
                        return True
                    await asyncio.sleep(0.1)
                return False

            trickling = [asyncio.create_task(trickle(s)) for s in slow]
            idle = socket.create_connection(("127.0.0.1", port))  # sends nothing at all
            # meanwhile everyone else is served
            code, body = await asyncio.to_thread(http_get, d.http + "/healthz")
            assert code == 200 and json.loads(body)["status"] == "ok"
            async with connect(d.url) as ws:
                await recv(ws, "hello")
                await ws.send(json.dumps({"type": "ping", "id": "alive"}))
                assert (await recv(ws, "pong"))["request"] == "alive"
            # and the slow ones are cut off (OPEN_TIMEOUT_S), freeing what they held
            assert all(await asyncio.wait_for(asyncio.gather(*trickling), 4 * WAIT_S))
            idle.settimeout(WAIT_S)
            assert idle.recv(1024) == b""
            for s in (*slow, idle):
                s.close()
    arun(main())
