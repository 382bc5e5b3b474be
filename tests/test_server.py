"""The daemon in-process over a real socket: protocol, HTTP, safety limits, remote audio, shutdown.

The recognizer and the music service are fakes injected into `Daemon`, so
these tests check the transport, the pipeline wiring and the bad-input
handling independently of any trained model.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import socket
import time
import urllib.request

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from assistant.config import Config, ServerConfig, load_config
from assistant.daemon import Daemon, DaemonOptions
from assistant.errors import AssistantError, StorageError
from assistant.server.commands import CommandResult
from synthetic import room, speechlike  # noqa: F401  (test_daemon imports them from here)

RATE = 16000
TOKEN = "0123456789abcdef0123"
WAIT_S = 30.0  # how long an expected event may take before the test fails (only reached on failure; generous for a loaded machine)


# ---------------------------------------------------------------- fakes


class FakeSession:
    def __init__(self, final: str):
        self.samples = 0
        self.final = final

    def accept(self, audio: np.ndarray) -> str:
        self.samples += len(audio)
        return " ".join(["la"] * (self.samples // 8000))

    def finish(self) -> str:
        return self.final


class FakeRecognizer:
    def __init__(self, final: str = "play something sad by adele"):
        self.final = final
        self.bias: list[str] = []

    def new_session(self) -> FakeSession:
        return FakeSession(self.final)

    def set_bias(self, phrases) -> None:
        self.bias = list(phrases)


class FakeMusic:
    def __init__(self):
        self.feedback_log: list[tuple] = []
        self.seen: list[tuple] = []
        self.closed = False

    def bias_phrases(self) -> list[str]:
        return ["Adele", "Someone Like You"]

    def handle(self, text: str, user: str, now_playing: str | None) -> CommandResult:
        self.seen.append((text, user, now_playing))
        if "explode" in text:
            raise RuntimeError("boom")
        if text.startswith("pause"):
            return CommandResult("pause", {}, 0.9, None)
        if text.startswith("blah"):
            return CommandResult("none", {}, 0.1, [])
        return CommandResult("play", {"artist": "Adele"}, 0.93,
                             [{"id": "s1", "title": "Someone Like You", "artist": "Adele", "score": 0.9, "reasons": ["artist"]}])

    def feedback(self, user: str, song_id: str, kind: str) -> None:
        if song_id == "missing":
            raise AssistantError(f"unknown song id {song_id!r}")
        if song_id == "disk-full":
            raise StorageError("preference database /x/p.sqlite3: the disk is full (database or disk is full); nothing was recorded")
        self.feedback_log.append((user, song_id, kind))

    def close(self) -> None:
        self.closed = True

    media_file = None  # set by a test: the file song "s1" plays from

    def media_path(self, song_id: str):
        return self.media_file if song_id == "s1" else None


# ---------------------------------------------------------------- harness


def make_config(**server) -> Config:
    cfg = load_config(None, environ={})
    return dataclasses.replace(cfg, server=dataclasses.replace(ServerConfig(), port=0, **server))


@contextlib.asynccontextmanager
async def running(config: Config | None = None, music=None, recognizer=None, options: DaemonOptions = DaemonOptions(input="none")):
    config = config or make_config()
    music = music or FakeMusic()
    recognizer = recognizer or FakeRecognizer()
    d = Daemon(config, options, recognizer_factory=lambda c: recognizer, music_factory=lambda c: music)
    task = asyncio.create_task(d.run())
    ready = asyncio.create_task(d.ready.wait())
    await asyncio.wait({task, ready}, timeout=WAIT_S, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # it failed to start: its exception
    assert d.ready.is_set(), "the daemon did not get ready"
    d.url = f"ws://127.0.0.1:{d.server.port}/ws"
    d.http = f"http://127.0.0.1:{d.server.port}"
    try:
        yield d
    finally:
        d.stop()
        await asyncio.wait_for(task, WAIT_S)


async def recv(ws, type_: str, timeout: float = WAIT_S) -> dict:
    """The next event of `type_` (others skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic())))
        if msg["type"] == type_:
            return msg


async def collect(ws, until: str, timeout: float = WAIT_S) -> list[dict]:
    out = []
    deadline = time.monotonic() + timeout
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic())))
        out.append(msg)
        if msg["type"] == until:
            return out


async def open_stream(ws, **fmt) -> dict:
    """audio.start (default format unless given) -> its ack."""
    msg = {"type": "audio.start", **({"format": fmt} if fmt else {})}
    await ws.send(json.dumps(msg))
    return await recv(ws, "ack")


async def speak(ws, audio: np.ndarray) -> None:
    """16 kHz float audio as 40 ms pcm_s16le frames at 1.3 x real time (remote audio is meant to be live)."""
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    for i in range(0, len(pcm), 1280):
        await ws.send(pcm[i:i + 1280])
        await asyncio.sleep(0.03)


def arun(coro):
    return asyncio.run(asyncio.wait_for(coro, 4 * WAIT_S))


def http_fetch(url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """GET -> (status, response headers, body), error statuses included."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=WAIT_S) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def http_get(url: str, headers: dict | None = None) -> tuple[int, str]:
    code, _, body = http_fetch(url, headers)
    return code, body.decode()


# ---------------------------------------------------------------- tests


def test_hello_snapshot_then_query_results_reach_every_client():
    async def main():
        async with running() as d:
            async with connect(d.url) as a, connect(d.url) as b:
                hello = json.loads(await a.recv())
                assert hello["type"] == "hello" and hello["v"] == 1 and hello["session"] == "c1"
                assert hello["config"]["sample_rate_hz"] == 16000 and hello["config"]["mode"] == "always"
                assert hello["snapshot"]["status"]["asr"]["ready"] is True
                assert hello["snapshot"]["recommendations"] is None
                await recv(b, "hello")
                await a.send(json.dumps({"type": "query", "id": "q-1", "text": "play something by adele", "user": "alice"}))
                for ws in (a, b):
                    intent = await recv(ws, "intent")
                    assert intent["name"] == "play" and intent["request"] == "q-1" and intent["source"] is None
                    assert intent["utterance"].startswith("q") and intent["user"] == "alice" and intent["confidence"] == 0.93
                    recs = await recv(ws, "recommendations")
                    assert recs["items"][0]["id"] == "s1" and recs["utterance"] == intent["utterance"]
            async with connect(d.url) as c:  # a late client gets the latest results in hello
                hello = json.loads(await c.recv())
                assert hello["snapshot"]["intent"]["name"] == "play"
                assert hello["snapshot"]["recommendations"]["items"][0]["id"] == "s1"
                assert hello["instance"] == d.server.instance
    arun(main())


def test_player_control_and_none_give_intent_only_and_errors_go_to_the_asker():
    async def main():
        async with running() as d:
            async with connect(d.url) as a, connect(d.url) as b:
                await recv(a, "hello")
                await recv(b, "hello")
                await a.send(json.dumps({"type": "query", "text": "pause"}))
                assert (await recv(a, "intent"))["name"] == "pause"
                await a.send(json.dumps({"type": "query", "text": "blah blah"}))
                assert (await recv(a, "intent"))["name"] == "none"
                await a.send(json.dumps({"type": "ping", "id": "p"}))
                assert (await recv(a, "pong"))["request"] == "p"  # no recommendations came in between
                await a.send(json.dumps({"type": "query", "id": "x", "text": "explode please"}))
                err = await recv(a, "error")
                assert err["code"] == "internal" and err["request"] == "x" and "boom" in err["message"]
                await b.send(json.dumps({"type": "ping", "id": "pb"}))
                events = await collect(b, "pong")
                assert not any(e["type"] == "error" for e in events)
    arun(main())


def test_feedback_acks_records_and_sets_now_playing():
    async def main():
        music = FakeMusic()
        async with running(music=music) as d:
            async with connect(d.url) as ws:
                await recv(ws, "hello")
                await ws.send(json.dumps({"type": "feedback", "id": "f1", "song_id": "s1", "kind": "played"}))
                ack = await recv(ws, "ack")
                assert ack["of"] == "feedback" and ack["request"] == "f1"
                await ws.send(json.dumps({"type": "feedback", "id": "f2", "song_id": "missing", "kind": "like"}))
                err = await recv(ws, "error")
                assert err["code"] == "bad_message" and "unknown song id" in err["message"] and err["request"] == "f2"
                await ws.send(json.dumps({"type": "feedback", "id": "f3", "song_id": "disk-full", "kind": "like"}))
                err = await recv(ws, "error")
                assert err["code"] == "storage" and "disk is full" in err["message"] and err["request"] == "f3"
                await ws.send(json.dumps({"type": "query", "text": "more like this"}))
                await recv(ws, "recommendations")
        assert music.feedback_log == [("default", "s1", "played")]
        assert music.seen[-1] == ("more like this", "default", "s1")
        assert music.closed
    arun(main())


def test_http_healthz_metrics_and_index():
    async def main():
        async with running() as d:
            code, body = await asyncio.to_thread(http_get, d.http + "/healthz")
            assert code == 200 and json.loads(body)["status"] == "ok"
            code, body = await asyncio.to_thread(http_get, d.http + "/metrics")
            assert code == 200
            for name in ("assistant_utterances_total", "assistant_final_latency_seconds_bucket", "assistant_clients",
                         "assistant_audio_dropped_frames_total", "assistant_queue_depth"):
                assert name in body
            code, body = await asyncio.to_thread(http_get, d.http + "/")
            assert code == 200 and "<title>Music assistant</title>" in body
            assert (await asyncio.to_thread(http_get, d.http + "/nope"))[0] == 404
            for bad in ("/static/../daemon.py", "/static/..%2froutes.py", "/static/%2e%2e/%2e%2e/daemon.py",
                        "/static/", "/static/%2fetc%2fpasswd", "/static/nope.js"):
                assert (await asyncio.to_thread(http_get, d.http + bad))[0] == 404, bad
    arun(main())


def test_web_player_files_are_served_with_their_types_and_a_page_policy():
    async def main():
        async with running() as d:
            fetch = lambda path: asyncio.to_thread(http_fetch, d.http + path)  # noqa: E731
            code, headers, body = await fetch("/")
            assert code == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
            assert b'src="/static/app.js"' in body
            policy = headers["Content-Security-Policy"]
            assert "default-src 'self'" in policy and "connect-src 'self'" in policy and "frame-ancestors 'none'" in policy
            for name, kind in (("app.js", "text/javascript"), ("mic-worklet.js", "text/javascript"), ("app.css", "text/css")):
                code, headers, body = await fetch(f"/static/{name}")
                assert code == 200 and headers["Content-Type"] == f"{kind}; charset=utf-8" and body, name
            assert (await asyncio.to_thread(http_get, d.http + "/ws"))[0] == 426
            assert (await asyncio.to_thread(http_get, d.http + "/healthz", {"Host": "evil.example:80"}))[0] == 403
    arun(main())


def test_media_serves_playable_songs_only(tmp_path):
    music = FakeMusic()
    music.media_file = tmp_path / "song.ogg"
    music.media_file.write_bytes(b"OggS fake audio")

    async def main():
        async with running(make_config(token=TOKEN), music=music) as d:
            get = lambda path: asyncio.to_thread(http_get, d.http + path)  # noqa: E731
            assert await get(f"/media/s1?token={TOKEN}") == (200, "OggS fake audio")
            assert (await get("/media/s1"))[0] == 401
            assert await get(f"/media/s2?token={TOKEN}") == (404, "song s2 has no playable file in the configured music folders\n")
            for bad in ("/media/..", "/media/../../etc/passwd", "/media/%2e%2e%2fetc%2fpasswd", "/media/a%00b", "/media/" + "x" * 200):
                code, body = await get(f"{bad}?token={TOKEN}")
                assert code == 404 and ("no such song" in body or "no playable file" in body), bad
            # byte ranges, for seeking in the player
            fetch = lambda path, **h: asyncio.to_thread(http_fetch, f"{d.http}{path}?token={TOKEN}", h)  # noqa: E731
            code, headers, body = await fetch("/media/s1", Range="bytes=5-9")
            assert code == 206 and body == b"fake " and headers["Content-Range"] == "bytes 5-9/15"
            assert headers["Accept-Ranges"] == "bytes" and headers["Content-Type"] == "audio/ogg"
            code, headers, body = await fetch("/media/s1", Range="bytes=99-")
            assert code == 416 and headers["Content-Range"] == "bytes */15"
            code, headers, body = await fetch("/media/s1", Range="bytes=0-1,4-5")  # several ranges: the whole file
            assert code == 200 and body == b"OggS fake audio"
            music.media_file.unlink()  # the file went away after the catalog was read
            assert (await get(f"/media/s1?token={TOKEN}"))[0] == 404
    arun(main())


def test_origin_allow_list_and_token():
    async def main():
        cfg = make_config(token=TOKEN, allowed_origins=("http://localhost:3000",))
        async with running(cfg) as d:
            port = d.server.port
            with pytest.raises(InvalidStatus) as info:
                async with connect(d.url):
                    pass
            assert info.value.response.status_code == 401
            url = f"{d.url}?token={TOKEN}"
            for origin, ok in ((f"http://127.0.0.1:{port}", True), (f"http://localhost:{port}", True),
                               ("http://localhost:3000", True), ("http://evil.example", False),
                               (f"http://evil.example:{port}", False), ("null", False)):
                if ok:
                    async with connect(url, origin=origin) as ws:
                        assert (await recv(ws, "hello"))["type"] == "hello"
                else:
                    with pytest.raises(InvalidStatus) as info:
                        async with connect(url, origin=origin):
                            pass
                    assert info.value.response.status_code == 403, origin
            async with connect(d.url, additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
                await recv(ws, "hello")
            assert (await asyncio.to_thread(http_get, d.http + "/metrics"))[0] == 401
            assert (await asyncio.to_thread(http_get, d.http + "/healthz"))[0] == 200
    arun(main())


def test_binding_off_loopback_needs_a_token():
    cfg = make_config(host="0.0.0.0")
    with pytest.raises(AssistantError, match="token"):
        arun(Daemon(cfg, DaemonOptions(input="none"), lambda c: FakeRecognizer(), lambda c: FakeMusic()).run())


def test_garbage_is_answered_and_the_connection_stays_up():
    async def main():
        async with running() as d:
            async with connect(d.url) as ws:
                await recv(ws, "hello")
                for bad, code in (("{oops", "bad_json"), ('{"type": "dance"}', "unknown_type"),
                                  ('{"type": "query", "text": "x", "v": 9}', "unsupported_version"),
                                  ('{"type": "audio.end"}', "bad_state")):
                    await ws.send(bad)
                    assert (await recv(ws, "error"))["code"] == code
                await ws.send(bytes(range(256)) * 3)
                assert (await recv(ws, "error"))["code"] == "audio_not_started"
                await ws.send(json.dumps({"type": "audio.start", "format": {"encoding": "pcm_s16le", "sample_rate_hz": 16000}}))
                await recv(ws, "ack")
                await ws.send(b"\x01\x02\x03")  # not a whole number of 16-bit samples
                err = await recv(ws, "error")
                assert err["code"] == "bad_audio" and "3 bytes" in err["message"]
                await ws.send(json.dumps({"type": "audio.start"}))
                assert (await recv(ws, "error"))["code"] == "bad_state"
                await ws.send(json.dumps({"type": "ping", "id": "alive"}))
                assert (await recv(ws, "pong"))["request"] == "alive"
            assert d.metrics.refused.get("bad_json") == 1
    arun(main())


def test_huge_message_closes_only_that_client():
    async def main():
        async with running() as d:
            async with connect(d.url) as good:
                await recv(good, "hello")
                bad = await connect(d.url, max_size=None)
                await recv(bad, "hello")
                with contextlib.suppress(ConnectionClosed):
                    await bad.send(b"\0" * (100 * 1024 * 1024))
                    await bad.recv()
                await asyncio.wait_for(bad.wait_closed(), WAIT_S)
                assert bad.close_code == 1009  # message too big
                assert d.metrics.connections.get() == 2
                await good.send(json.dumps({"type": "ping", "id": "ok"}))
                assert (await recv(good, "pong"))["request"] == "ok"
    arun(main())


def test_message_flood_is_rate_limited():
    """The bucket's clock is held still, so what is served does not depend on how fast this machine is."""
    async def main():
        async with running(make_config(max_messages_per_s=200)) as d:
            clock = [1000.0]
            d.server.clock = lambda: clock[0]
            async with connect(d.url) as ws:
                await recv(ws, "hello")
                for i in range(1000):
                    await ws.send(json.dumps({"type": "ping", "id": str(i)}))
                pongs = []
                while (msg := json.loads(await asyncio.wait_for(ws.recv(), WAIT_S)))["type"] != "error":
                    if msg["type"] == "pong":
                        pongs.append(msg["request"])
                assert msg["code"] == "rate_limited"
                assert pongs == [str(i) for i in range(200)]  # the burst, in order; then refused
                while d.metrics.refused.get("rate_limited") < 800:  # until every ping has been read
                    await asyncio.sleep(0.01)
                assert d.metrics.refused.get("rate_limited") == 800
                clock[0] += 1.0  # a second later the bucket has refilled: the client is served again
                await ws.send(json.dumps({"type": "ping", "id": "again"}))
                # nothing in between: one rate_limited error per second of the clock, not one per refused message
                assert json.loads(await asyncio.wait_for(ws.recv(), WAIT_S)) | {"ts": 0} == {"type": "pong", "v": 1, "ts": 0, "request": "again"}
    arun(main())


def _raw_ws_client(port: int) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    return s


def test_client_that_never_reads_is_closed_and_others_keep_every_final():
    from assistant.server import protocol as p

    async def main():
        async with running(make_config(client_queue_events=32)) as d:
            stuck = _raw_ws_client(d.server.port)
            try:
                async with connect(d.url) as good:
                    session = (await recv(good, "hello"))["session"]
                    while len(d.hub.clients) < 2:
                        await asyncio.sleep(0.01)
                    big = "x" * 20000
                    n = 400

                    async def read_finals() -> int:
                        finals = 0
                        while finals < n:
                            msg = json.loads(await asyncio.wait_for(good.recv(), WAIT_S))
                            finals += msg["type"] == "transcript.final"
                        return finals

                    reader = asyncio.create_task(read_finals())
                    good_queue = d.hub.clients[session]
                    for i in range(n):
                        d.hub.publish(p.TranscriptPartial(source="t", utterance=f"u{i}", text=big, audio_ms=i))
                        d.hub.publish(p.TranscriptFinal(source="t", utterance=f"u{i}", text=big, command="", accepted=True, audio_ms=i))
                        await good_queue.wait_for_room()  # the reading client keeps up however slow this machine is
                        await asyncio.sleep(0)
                    assert await reader == n  # every final reached the client that reads
                    assert d.metrics.dropped_events.get("disconnect") == 1
                    assert len(d.hub.clients) == 1  # the stuck one is gone
            finally:
                stuck.close()
    arun(main())


def test_slow_client_loses_partials_before_finals():
    from assistant.server import protocol as p
    from assistant.server.hub import ClientQueue

    closed = []
    q = ClientQueue(4, lambda: closed.append(True))
    final = p.TranscriptFinal(source="m", utterance="u1", text="t", command="t", accepted=True, audio_ms=1)
    status = p.Status(listening=True, mode="always", input={})
    for i in range(3):
        q.put(p.TranscriptPartial(source="m", utterance="u1", text=str(i), audio_ms=i))
    q.put(final)
    q.put(status)
    q.put(final)
    q.put(status)
    types = lambda: [json.loads(i.data)["type"] for i in q.items]  # noqa: E731
    assert types() == ["transcript.final", "status", "transcript.final", "status"]  # partials went first
    q.put(final)
    assert types() == ["transcript.final", "transcript.final", "status", "transcript.final"]  # then the older status
    assert not closed
    q.put(final)  # nothing left to shed: the client is closed, no final is silently lost
    assert closed and q.overflowed


def test_remote_audio_gives_the_full_event_sequence():
    async def main():
        async with running() as d:
            async with connect(d.url) as ws, connect(d.url) as watcher:
                await recv(ws, "hello")
                await recv(watcher, "hello")
                await ws.send(json.dumps({"type": "audio.start", "id": "a1",
                                          "format": {"encoding": "pcm_s16le", "sample_rate_hz": 48000, "channels": 2}}))
                ack = await recv(ws, "ack")
                source = ack["source"]
                assert source == "remote-c1-1" and ack["request"] == "a1"
                audio = np.concatenate([room(600, 1), speechlike(1500) + room(1500, 2), room(1200, 3)])
                import soxr
                stereo = np.repeat(soxr.resample(audio, RATE, 48000)[:, None], 2, axis=1)
                pcm = (stereo * 32767).astype("<i2").tobytes()
                step = 48000 * 2 * 2 * 40 // 1000  # 40 ms frames
                for i in range(0, len(pcm), step):
                    await ws.send(pcm[i:i + step])
                    await asyncio.sleep(0.03)
                events = await collect(watcher, "recommendations")
                kinds = [e["type"] for e in events if e["type"] not in ("status",)]
                order = [k for k in kinds if k != "transcript.partial"]
                assert order == ["vad.start", "vad.end", "transcript.final", "intent", "recommendations"], kinds
                partials = [e for e in events if e["type"] == "transcript.partial"]
                steps = [b["audio_ms"] - a["audio_ms"] for a, b in zip(partials, partials[1:])]
                assert len(partials) >= 8 and set(steps) == {160}  # one partial per 160 ms of audio
                start = next(e for e in events if e["type"] == "vad.start")
                end = next(e for e in events if e["type"] == "vad.end")
                assert {e.get("source") for e in events if e["type"] != "status"} == {source}
                assert 400 <= start["speech_start_ms"] <= 800 and end["reason"] == "silence" and end["accepted"]
                assert abs(end["duration_ms"] - 1500) <= 150
                final = next(e for e in events if e["type"] == "transcript.final")
                assert final["text"] == final["command"] == "play something sad by adele" and final["accepted"]
                await ws.send(json.dumps({"type": "audio.end", "id": "a2"}))
                assert (await recv(ws, "ack"))["of"] == "audio.end"
            assert d.metrics.utterances.get("command") == 1
            assert d.metrics.dropped_frames.get("remote") == 0
    arun(main())


def test_final_decoding_starts_at_a_pause_and_restarts_when_speech_resumes():
    async def main():
        async with running() as d:
            async with connect(d.url) as ws:
                await recv(ws, "hello")
                await open_stream(ws)
                await speak(ws, np.concatenate([room(500, 1), speechlike(700) + room(700, 2), room(240, 3),  # a pause, then more
                                                speechlike(700, f0=150) + room(700, 4), room(1000, 5)]))
                events = await collect(ws, "transcript.final")
                assert sum(e["type"] == "vad.start" for e in events) == 1
                partials = [e["audio_ms"] for e in events if e["type"] == "transcript.partial"]
                assert partials == sorted(partials) and all(ms % 160 == 0 for ms in partials)
                final = events[-1]
                assert final["text"] == "play something sad by adele" and final["audio_ms"] >= 1600
            m = d.metrics.speculative_finals
            assert m.get("discarded") == 1 and m.get("used") == 1
    arun(main())


def test_remote_audio_faster_than_real_time_is_dropped_with_an_error():
    async def main():
        async with running() as d:
            async with connect(d.url) as ws:
                await recv(ws, "hello")
                await open_stream(ws)
                second = (room(1000) * 32767).astype("<i2").tobytes()
                for _ in range(10):  # 10 s of audio at once
                    await ws.send(second)
                err = await recv(ws, "error")
                assert err["code"] == "audio_overflow"
                await ws.send(json.dumps({"type": "ping", "id": "p"}))
                await recv(ws, "pong")
            assert d.metrics.dropped_frames.get("remote") >= 5
    arun(main())


def test_wake_phrase_mode_ignores_utterances_without_it():
    async def main():
        cfg = make_config()
        cfg = dataclasses.replace(cfg, listen=dataclasses.replace(cfg.listen, mode="wake_phrase"))
        rec = FakeRecognizer("play something sad")
        async with running(cfg, recognizer=rec) as d:
            async with connect(d.url) as ws:
                await recv(ws, "hello")
                await open_stream(ws)
                utterance = np.concatenate([room(300), speechlike(600), room(700)])
                await speak(ws, utterance)
                final = await recv(ws, "transcript.final")
                assert final["accepted"] is False and final["command"] == ""
                rec.final = "hey music play something sad"
                await speak(ws, utterance)
                final = await recv(ws, "transcript.final")
                assert final["accepted"] and final["command"] == "play something sad"
                assert (await recv(ws, "intent"))["text"] == "play something sad"
            assert d.metrics.utterances.get("ignored") == 1
        assert rec.bias == ["Adele", "Someone Like You", "hey music"]  # catalog names and the wake phrase
    arun(main())


def test_stop_closes_clients_with_1001():
    async def main():
        cfg = make_config()
        d = Daemon(cfg, DaemonOptions(input="none"), lambda c: FakeRecognizer(), lambda c: FakeMusic())
        task = asyncio.create_task(d.run())
        await asyncio.wait_for(d.ready.wait(), WAIT_S)
        async with connect(f"ws://127.0.0.1:{d.server.port}/ws") as ws:
            await recv(ws, "hello")
            d.stop()
            with pytest.raises(ConnectionClosed):
                while True:
                    await ws.recv()
            assert ws.close_code == 1001
        assert await asyncio.wait_for(task, WAIT_S) == 0
    arun(main())


def test_components_that_fail_to_load_are_reported_in_status():
    async def main():
        def no_model(cfg):
            raise AssistantError("recognizer checkpoint models/asr.pt not found")

        d = Daemon(make_config(), DaemonOptions(input="none"), no_model, lambda c: FakeMusic())
        task = asyncio.create_task(d.run())
        await asyncio.wait_for(d.ready.wait(), WAIT_S)
        async with connect(f"ws://127.0.0.1:{d.server.port}/ws") as ws:
            hello = json.loads(await ws.recv())
            asr = hello["snapshot"]["status"]["asr"]
            assert asr["ready"] is False and "not found" in asr["error"]
            await ws.send(json.dumps({"type": "query", "text": "play adele"}))  # text still works
            await recv(ws, "recommendations")
        d.stop()
        await task
    arun(main())


def test_a_loader_that_raises_a_bug_is_reported_and_the_rest_serves(caplog):
    async def main():
        def broken(cfg):
            raise ModuleNotFoundError("No module named 'assistant.nlu.parser'")

        d = Daemon(make_config(), DaemonOptions(input="none"), lambda c: FakeRecognizer(), broken)
        task = asyncio.create_task(d.run())
        await asyncio.wait_for(d.ready.wait(), WAIT_S)
        async with connect(f"ws://127.0.0.1:{d.server.port}/ws") as ws:
            status = json.loads(await ws.recv())["snapshot"]["status"]
            assert status["asr"]["ready"] is True
            assert status["recommender"] == {"ready": False, "error": "failed to load (ModuleNotFoundError: No module named 'assistant.nlu.parser')"}
            await ws.send(json.dumps({"type": "query", "id": "q", "text": "play adele"}))
            err = await recv(ws, "error")
            assert err["code"] == "unavailable" and "ModuleNotFoundError" in err["message"] and err["request"] == "q"
        d.stop()
        assert await asyncio.wait_for(task, WAIT_S) == 0

    arun(main())
    assert any(r.exc_info and r.exc_info[0] is ModuleNotFoundError for r in caplog.records)  # the traceback is logged


def test_per_connection_bookkeeping_does_not_outlive_the_connection():
    """Found by the fuzzer's memory check: stream numbering kept an entry for every connection ever made."""
    async def main():
        async with running() as d:
            for _ in range(5):
                async with connect(d.url) as ws:
                    await recv(ws, "hello")
                    await open_stream(ws)
            while d.hub.clients or d.remote:  # the daemon's side of those connections is done
                await asyncio.sleep(0.01)
            async with connect(d.url) as ws:
                await recv(ws, "hello")
                assert (await open_stream(ws))["source"] == "remote-c6-1"
                assert list(d._remote_counts) == ["c6"]
    arun(main())


def test_now_playing_is_remembered_for_a_bounded_number_of_users(monkeypatch):
    import assistant.server.commands as commands

    monkeypatch.setattr(commands, "MAX_NOW_PLAYING_USERS", 3)

    async def main():
        async with running() as d:
            async with connect(d.url) as ws:
                await recv(ws, "hello")
                for i, user in enumerate(["u1", "u2", "u3", "u4", "u2"]):
                    await ws.send(json.dumps({"type": "feedback", "id": f"f{i}", "song_id": "s1", "kind": "played", "user": user}))
                    await recv(ws, "ack")
            assert list(d.commands.now_playing) == ["u3", "u4", "u2"]
    arun(main())
