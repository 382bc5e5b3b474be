"""Pure pieces of the server: access policy, rate limit, metrics text, wake phrase, remote PCM decoding."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from assistant.audio.remote import RemoteSource, decode_pcm
from assistant.config import ListenConfig, ServerConfig
from assistant.errors import AssistantError
from assistant.server.listening import ListenPolicy, split_wake_phrase
from assistant.server.metrics import Counter, Histogram, Registry
from assistant.server.protocol import AudioFormat, ProtocolError
from assistant.server.ratelimit import TokenBucket
from assistant.server.routes import byte_range
from assistant.server.security import AccessPolicy, check_bind, is_loopback

TOKEN = "0123456789abcdef"


def test_loopback_names():
    for host in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "192.168.1.5", "example.com", "", "::"):
        assert not is_loopback(host), host


def test_bind_rules():
    check_bind(ServerConfig())
    check_bind(ServerConfig(host="0.0.0.0", token=TOKEN))
    with pytest.raises(AssistantError, match="token"):
        check_bind(ServerConfig(host="0.0.0.0"))
    with pytest.raises(AssistantError, match="16 characters"):
        check_bind(ServerConfig(token="short"))


def test_origin_and_host_on_a_loopback_bind():
    policy = AccessPolicy(ServerConfig(allowed_origins=("https://player.example",)))
    host = "127.0.0.1:8765"
    assert policy.origin_ok(None, host)                             # not a browser
    assert policy.origin_ok("http://127.0.0.1:8765", host)
    assert policy.origin_ok("http://localhost:8765", "localhost:8765")
    assert policy.origin_ok("http://[::1]:8765", "[::1]:8765")
    assert policy.origin_ok("https://player.example/", host)          # allow-listed
    assert not policy.origin_ok("http://localhost:3000", host)        # another local site
    assert not policy.origin_ok("http://evil.example:8765", host)
    assert not policy.origin_ok("null", host)
    assert not policy.origin_ok("file://", host)
    assert policy.host_ok(host) and policy.host_ok("localhost:8765") and policy.host_ok("[::1]:8765")
    assert not policy.host_ok("evil.example:8765")                    # DNS rebinding
    assert not policy.host_ok(None)


def test_origin_on_a_lan_bind_is_the_page_itself():
    policy = AccessPolicy(ServerConfig(host="0.0.0.0", token=TOKEN))
    assert policy.host_ok("192.168.1.5:8765")
    assert policy.origin_ok("http://192.168.1.5:8765", "192.168.1.5:8765")
    assert not policy.origin_ok("http://192.168.1.6:8765", "192.168.1.5:8765")
    assert not policy.origin_ok("http://192.168.1.5", "192.168.1.5:8765")


def test_token_by_query_or_bearer():
    policy = AccessPolicy(ServerConfig(token=TOKEN))
    assert policy.token_ok(f"/ws?token={TOKEN}", None)
    assert policy.token_ok("/ws", f"Bearer {TOKEN}")
    assert not policy.token_ok("/ws?token=wrong", None)
    assert not policy.token_ok("/ws", None)
    assert AccessPolicy(ServerConfig()).token_ok("/ws", None)


def test_token_bucket():
    b = TokenBucket(10, now_s=0.0)
    assert sum(b.allow(0.0) for _ in range(20)) == 10   # the burst
    assert not b.allow(0.05)
    assert b.allow(0.11)                                 # refilled one
    audio = TokenBucket(1.5, 3.0, now_s=0.0)
    assert audio.allow(0.0, cost=2.5) and not audio.allow(0.0, cost=1.0) and audio.allow(1.0, cost=1.0)


def test_prometheus_text():
    r = Registry()
    c = r.add(Counter("x_total", "Things.", ["kind"]))
    h = r.add(Histogram("lat_seconds", "Latency.", (0.1, 0.5)))
    c.inc(2, 'a"b')
    for v in (0.05, 0.3, 0.3, 2.0):
        h.observe(v)
    text = r.render()
    assert '# TYPE x_total counter\nx_total{kind="a\\"b"} 2\n' in text
    assert 'lat_seconds_bucket{le="0.1"} 1\nlat_seconds_bucket{le="0.5"} 3\nlat_seconds_bucket{le="+Inf"} 4\n' in text
    assert "lat_seconds_count 4\n" in text and "lat_seconds_sum 2.65\n" in text


@pytest.mark.parametrize("heard, ok, command", [
    ("hey music play adele", True, "play adele"),
    ("hay music play adele", True, "play adele"),
    ("heymusic skip", True, "skip"),
    ("hey musik next song", True, "next song"),
    ("hey music", True, ""),
    ("play adele", False, ""),
    ("a music play", False, ""),
    ("", False, ""),
])
def test_wake_phrase_split(heard, ok, command):
    assert split_wake_phrase(heard, "Hey Music!", 75.0) == (ok, command)


def test_wake_phrase_alone_arms_the_next_utterance_of_that_source_only():
    policy = ListenPolicy(ListenConfig(mode="wake_phrase", follow_up_s=5.0))
    assert policy.decide("mic", "hey music", 0.0).accepted
    assert not policy.decide("remote-c1-1", "play adele", 1.0).accepted
    assert policy.decide("mic", "play adele", 2.0).command == "play adele"
    assert not policy.decide("mic", "play adele", 3.0).accepted          # used up
    policy.decide("mic", "hey music", 10.0)
    assert not policy.decide("mic", "play adele", 16.0).accepted         # too late
    always = ListenPolicy(ListenConfig())
    assert always.decide("mic", "play adele", 0.0).command == "play adele"
    assert not always.decide("mic", "  ", 0.0).accepted


def test_decode_pcm_formats():
    s16 = np.array([0, 16384, -32768, 32767], dtype="<i2").tobytes()
    assert np.allclose(decode_pcm(s16, AudioFormat()), [0, 0.5, -1, 32767 / 32768])
    stereo = np.array([[0.5, -0.5], [1.0, 0.0]], dtype="<f4").tobytes()
    assert np.allclose(decode_pcm(stereo, AudioFormat("pcm_f32le", 16000, 2)), [0.0, 0.5])
    with pytest.raises(ProtocolError):
        decode_pcm(b"\x00\x00\x00", AudioFormat())
    with pytest.raises(ProtocolError, match="NaN"):
        decode_pcm(np.array([np.nan], dtype="<f4").tobytes(), AudioFormat("pcm_f32le"))
    with warnings.catch_warnings():  # huge floats are clipped, without numpy overflow warnings in the daemon's log
        warnings.simplefilter("error")
        assert np.allclose(decode_pcm(np.array([3e38, 3e38, 0.5, -2], dtype="<f4").tobytes(), AudioFormat("pcm_f32le", 16000, 2)),
                           [1.0, -0.25])


def test_remote_source_resamples_to_16k():
    async def main():
        src = RemoteSource("r", AudioFormat("pcm_s16le", 48000, 1), max_blocks=100)
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(48000) / 48000) * 32767).astype("<i2").tobytes()
        for i in range(0, len(tone), 1920):
            assert src.push(tone[i:i + 1920], now_s=i / 96000) == 0
        src.end()
        out = np.concatenate([b async for b in src.blocks()])
        assert abs(len(out) - 16000) <= 16
    import asyncio

    asyncio.run(main())


def test_byte_ranges():
    assert byte_range(None, 100) is None and byte_range("", 100) is None
    assert byte_range("bytes=0-9", 100) == (0, 9)
    assert byte_range("bytes=90-", 100) == (90, 99)
    assert byte_range("bytes=90-500", 100) == (90, 99)  # clipped to the file
    assert byte_range("bytes=-10", 100) == (90, 99)
    assert byte_range("bytes=-500", 100) == (0, 99)
    for ignored in ("bytes=0-1,5-6", "items=0-1", "bytes=-", "bytes=a-b"):  # served whole, as HTTP allows
        assert byte_range(ignored, 100) is None, ignored
    for bad in ("bytes=100-", "bytes=50-10", "bytes=-0"):
        with pytest.raises(ValueError):
            byte_range(bad, 100)


def test_without_the_web_ui_the_root_says_where_things_are(tmp_path):
    import asyncio

    from websockets.datastructures import Headers
    from websockets.http11 import Request

    from assistant.server.metrics import DaemonMetrics
    from assistant.server.routes import HttpRoutes

    routes = HttpRoutes(AccessPolicy(ServerConfig()), DaemonMetrics(), dict, static_dir=tmp_path)  # no index.html there
    resp = asyncio.run(routes.route(Request("/", Headers({"Host": "127.0.0.1:8765"}))))
    assert resp.status_code == 200 and b"/ws" in resp.body and b"not installed" in resp.body
    assert "Content-Security-Policy" not in resp.headers


def test_the_web_player_reads_only_what_the_protocol_sends():
    """static/protocol.js checks the fields the page reads: each must exist in assistant.server.protocol."""
    import dataclasses
    import re

    from assistant.server import protocol as p
    from assistant.server.routes import STATIC_DIR

    js = (STATIC_DIR / "protocol.js").read_text(encoding="utf-8")
    assert int(re.search(r"export const PROTOCOL_VERSION = (\d+);", js).group(1)) == p.PROTOCOL_VERSION
    block = js[js.index("const FIELDS = {"):js.index("};", js.index("const FIELDS = {"))]
    read = {m.group(1): re.findall(r"(\w+): \"", m.group(2)) for m in re.finditer(r'^\s*"([\w.]+)": \{(.*)\},$', block, re.M)}
    assert set(read) == set(p.SERVER_EVENTS), "protocol.js should know every server event type"
    for kind, names in read.items():
        sent = {f.name for f in dataclasses.fields(p.SERVER_EVENTS[kind])}
        assert set(names) <= sent, f"{kind}: the page reads {sorted(set(names) - sent)}, which the daemon does not send"
    buttons = re.search(r"export const FEEDBACK_BUTTONS = (.*);", (STATIC_DIR / "render.js").read_text(encoding="utf-8")).group(1)
    assert set(re.findall(r'\["(\w+)", "', buttons)) | {"played"} == set(p.FEEDBACK_KINDS)  # "played" is sent by the player


def test_armed_sources_expire_instead_of_piling_up():
    policy = ListenPolicy(ListenConfig(mode="wake_phrase", follow_up_s=8.0))
    for i in range(100):  # remote streams come and go, each said the wake phrase alone once
        assert policy.decide(f"remote-c{i}-1", "hey music", now_s=float(i)).accepted
    assert policy.decide("mic", "hey music", now_s=200.0).accepted
    assert list(policy._armed_until) == ["mic"]
