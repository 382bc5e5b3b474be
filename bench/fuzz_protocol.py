"""Protocol fuzzer: seeded hostile traffic over several WebSocket clients at a live daemon.

    .venv/bin/python bench/fuzz_protocol.py [--messages 10000] [--clients 8] [--seed 1] [--small] [--json]

Starts `assistant serve --input none` as a subprocess (the shipped model and the default
catalog; `--small`: a tiny random recognizer, a six-song catalog and the hashing embedder,
which start in seconds), then `--clients` connections send `--messages` WebSocket frames
between them, drawn from a seeded generator:

    random bytes, random text, truncated JSON, deeply nested JSON, wrong field types,
    unknown event types and fields, huge strings (and a frame over max_message_bytes),
    invalid UTF-8 in a text frame, PCM with odd byte counts, audio.end before audio.start,
    remote streams interleaved across clients (left open, ended, or cut off),
    abrupt disconnects in the middle of a frame (raw sockets), and valid messages between.

Each client reads everything the daemon sends it and reconnects when it is closed. The
daemon's per-client message rate limit is raised (`ASSISTANT_SERVER_MAX_MESSAGES_PER_S`) so
that every frame reaches the parser instead of being dropped unread; everything else is the
default configuration. Afterwards the daemon must still answer /healthz, a clean client's
typed request (recommendations) and spoken request (a remote stream -> transcript.final),
have no traceback in its log, and be back to one client, no remote streams and empty queues.
Its resident memory is read after a warm-up fuzz of a tenth of the messages, after each further
tenth, and at the end. `tests/test_fuzz_protocol.py` runs a short, seeded pass of the same code in `make test`.

The content of every frame is a function of the seed; the interleaving of the clients is
not (it depends on scheduling), so a failure is reproduced by the seed plus the log.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import socket
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # audio_signals, daemon_proc: shared with the tests

from synthetic import pcm16, room, small_catalog_config, tiny_checkpoint_file, utterance  # noqa: E402

MESSAGE_TYPES = ("query", "feedback", "audio.start", "audio.end", "ping")
SERVER_TYPES = ("hello", "status", "vad.start", "vad.end", "transcript.partial", "transcript.final", "intent",
                "recommendations", "error", "ack", "pong")
CLEAN_COMMAND = "play something sad by adele"
LOG_PROBLEMS = re.compile(r"Traceback|exception was never retrieved|Exception in callback|Task was destroyed")
RATE_OVERRIDE = {"ASSISTANT_SERVER_MAX_MESSAGES_PER_S": "100000"}
SETTLE_S = 900.0  # how long the benchmark lets the daemon work off the fuzzed streams' utterances


# ---------------------------------------------------------------- the generator


def _odd_value(rng: random.Random):
    """A JSON value of a random kind, often one no field expects."""
    kind = rng.randrange(12)
    return [None, True, -1, 2 ** 63, 1e308, "", "x" * rng.randrange(1, 300), [], [1, "a", None], {"a": {"b": []}},
            float("nan"), "\ud800 lone surrogate"][kind]


def _random_text(rng: random.Random, n: int) -> str:
    pools = ("abc{}[]\":,0123456789 ", "\x00\x01\x1f\x7f", "éßЖ中文😀🎵", "\u202e\ufeff\u200b")
    return "".join(rng.choice(rng.choice(pools)) for _ in range(n))


def _valid(rng: random.Random) -> dict:
    kind = rng.choice(MESSAGE_TYPES)
    msg: dict = {"type": kind, "id": f"f{rng.randrange(10 ** 6)}"}
    if kind == "query":
        msg["text"] = rng.choice([CLEAN_COMMAND, "skip", "more like this", "pause", "recommend some jazz", "blah"])
    elif kind == "feedback":
        msg.update(song_id=rng.choice(["s1", "nope", "x" * 256]), kind=rng.choice(["like", "dislike", "skip", "played"]))
    elif kind == "audio.start":
        msg["format"] = {"encoding": rng.choice(["pcm_s16le", "pcm_f32le"]), "sample_rate_hz": rng.choice([8000, 16000, 44100, 48000]),
                         "channels": rng.choice([1, 2])}
    if rng.random() < 0.3:  # fresh user ids too: per-user state in the daemon must stay bounded
        msg["user"] = rng.choice(["alice", "bob", "", "u" * 100, "\ud83d\ude00", f"user{rng.randrange(10 ** 6)}"])
    return msg


class Generator:
    """Seeded frames. `next()` -> (kind, [actions]); an action is ("text", str), ("bytes", bytes),
    ("raw_text", bytes) (bytes sent as a text frame), ("stream", n_frames, close) or ("cut", bytes)."""

    KINDS = {  # kind: weight
        "random_bytes": 8, "random_text": 8, "truncated_json": 10, "nested_json": 5, "wrong_types": 14,
        "unknown_type": 6, "huge_string": 3, "oversize_frame": 0.3, "invalid_utf8": 1, "odd_pcm": 6,
        "audio_end_first": 4, "stream": 6, "cut_mid_frame": 2, "special_json": 6, "valid": 12,
    }

    def __init__(self, seed: int, max_message_bytes: int = 1_048_576):
        self.rng = random.Random(seed)
        self.max_message_bytes = max_message_bytes
        self.kinds, self.weights = zip(*self.KINDS.items())

    def next(self) -> tuple[str, list[tuple]]:
        kind = self.rng.choices(self.kinds, self.weights)[0]
        return kind, getattr(self, "_" + kind)()

    def _random_bytes(self):
        return [("bytes", self.rng.randbytes(self.rng.choice([0, 1, 3, 17, 640, 4095])))]

    def _random_text(self):
        return [("text", _random_text(self.rng, self.rng.randrange(0, 400)))]

    def _truncated_json(self):
        text = json.dumps(_valid(self.rng))
        return [("text", text[: self.rng.randrange(0, len(text))])]

    def _nested_json(self):
        depth = self.rng.choice([50, 1000, 5000, 100_000, 400_000])
        opener, closer = self.rng.choice([("[", "]"), ('{"a":', "}")])
        tail = closer * depth if self.rng.random() < 0.5 else ""
        if self.rng.random() < 0.5:  # nested inside a field of a real message
            return [("text", '{"type":"query","text":"x","user":' + opener * depth + "1" + tail + "}")]
        return [("text", opener * depth + "1" + tail)]

    def _wrong_types(self):
        msg = _valid(self.rng)
        key = self.rng.choice([*msg.keys(), "v", "ts", "format", "unknown_field"])
        msg[key] = _odd_value(self.rng)
        if self.rng.random() < 0.3 and isinstance(msg.get("format"), dict):
            msg["format"][self.rng.choice(["encoding", "sample_rate_hz", "channels", "extra"])] = _odd_value(self.rng)
        return [("text", json.dumps(msg, allow_nan=True))]

    def _unknown_type(self):
        t = self.rng.choice([*SERVER_TYPES, "", "QUERY", "query ", "x" * 10_000, _random_text(self.rng, 20)])
        return [("text", json.dumps({"type": t, "text": "x"}))]

    def _huge_string(self):
        n = self.rng.choice([10_000, 100_000, self.max_message_bytes - 100])
        field_ = self.rng.choice(["text", "id", "user", "song_id"])
        return [("text", json.dumps({"type": "query", "text": "play", field_: "a" * n})[: self.max_message_bytes - 1])]

    def _oversize_frame(self):  # the connection is closed with 1009; the client reconnects
        return [("bytes", b"\0" * (self.max_message_bytes + 1))]

    def _invalid_utf8(self):  # the connection is closed with 1007; the client reconnects
        return [("raw_text", b'{"type":"query","text":"\xff\xfe\xc3"}')]

    def _odd_pcm(self):
        fmt = {"encoding": self.rng.choice(["pcm_s16le", "pcm_f32le"]), "channels": self.rng.choice([1, 2])}
        return [("text", json.dumps({"type": "audio.start", "format": fmt})),
                ("bytes", self.rng.randbytes(self.rng.choice([1, 3, 5, 7, 321, 1001]))),
                ("bytes", (b"\xff\xff\xc0\x7f" * 100) if fmt["encoding"] == "pcm_f32le" else b"\x00\x80" * 100),  # NaN floats / int16 min
                ("text", json.dumps({"type": "audio.end"}))]

    def _audio_end_first(self):
        return [("text", json.dumps({"type": "audio.end", "id": "early"}))]

    def _stream(self):
        return [("stream", self.rng.randrange(5, 60), self.rng.choice(["end", "end", "open", "leave"]))]

    def _cut_mid_frame(self):
        length = self.rng.choice([10, 1000, 70000])
        header = bytes([0x82]) + (bytes([0x80 | length]) if length < 126 else
                                  bytes([0x80 | 126]) + length.to_bytes(2, "big") if length < 65536 else
                                  bytes([0x80 | 127]) + length.to_bytes(8, "big"))
        return [("cut", header + b"\0\0\0\0" + self.rng.randbytes(self.rng.randrange(0, length)))]

    def _special_json(self):
        return [("text", self.rng.choice([
            "null", "[]", '"query"', "1e999", "-0", " ", "\ufeff{}", "{}", '{"type":null}', '{"type":"query","type":"ping"}',
            '{"type":"ping","v":NaN}', '{"type":"ping","v":Infinity}', '{"type":"ping","v":1.0}', '{"type":"ping","v":true}',
            '{"type":"query","text":"\\ud800"}', '{"type":"query","text":"\\u0000"}', '{"type":"ping","id":"\\udfff"}',
            '{"type":"audio.start","format":{"sample_rate_hz":1e400}}', '{"type":"query","text":"' + "9" * 5000 + '"}',
            '{"type":"ping","id":' + "9" * 5000 + "}", '{"type":"feedback","song_id":"s1","kind":"like","user":"\\ud800"}']))]

    def _valid(self):
        return [("text", json.dumps(_valid(self.rng)))]


# ---------------------------------------------------------------- the clients


@dataclass
class FuzzReport:
    seed: int
    messages: int = 0                       # WebSocket frames sent (a cut frame counts as one)
    by_kind: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)    # error events received, by code
    closes: Counter = field(default_factory=Counter)    # connections closed by the daemon, by close code
    reconnects: int = 0
    internal_errors: int = 0                # `internal` error events: a bug answered politely
    client_send_errors: int = 0             # the fuzzing client's own library failed a send (the connection was cut)
    unreachable: bool = False               # the daemon stopped accepting connections
    seconds: float = 0.0

    def to_dict(self) -> dict:
        counters = {k: dict(sorted((str(int(a)) if isinstance(a, int) else str(a), b) for a, b in getattr(self, k).items()))
                    for k in ("by_kind", "errors", "closes")}
        return {**{f.name: getattr(self, f.name) for f in fields(self)}, **counters, "seconds": round(self.seconds, 1)}


def _handshake(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    return s


def _cut(port: int, data: bytes) -> None:
    """Open a WebSocket, send part of a frame, and reset the connection (no close frame, no FIN)."""
    try:
        s = _handshake(port)
    except OSError:  # a busy daemon did not answer the handshake in time: nothing to cut
        return
    try:
        s.sendall(data)
    except OSError:
        pass
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # l_onoff=1, l_linger=0: RST
    s.close()


class FuzzClient:
    def __init__(self, url: str, port: int, gen: Generator, report: FuzzReport, rng: random.Random):
        self.url, self.port, self.gen, self.report, self.rng = url, port, gen, report, rng
        self.ws = None
        self.reader: asyncio.Task | None = None

    async def _connect(self) -> None:
        """Connect, retrying for a while: a refused connection means the daemon is gone (a crash, reported)."""
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidHandshake

        for attempt in range(20):
            try:
                self.ws = await connect(self.url, max_size=None, open_timeout=60)
                break
            except (OSError, TimeoutError, InvalidHandshake):  # refused, or cut off by a busy daemon's open timeout
                if attempt == 19:
                    self.report.unreachable = True
                    raise
                await asyncio.sleep(0.5)
        self.reader = asyncio.create_task(self._read(self.ws))

    async def _read(self, ws) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for message in ws:
                msg = json.loads(message)
                if msg.get("type") == "error":
                    self.report.errors[msg.get("code")] += 1
                    self.report.internal_errors += msg.get("code") == "internal"
        except ConnectionClosed:
            pass
        code = ws.close_code if ws.close_code is not None else "none"
        self.report.closes[code] += 1

    async def _send(self, frame, text: bool | None = None) -> None:
        from websockets.exceptions import ConnectionClosed

        if self.ws is None:
            await self._connect()
        self.report.messages += 1
        try:
            await self.ws.send(frame, text=text)
        except ConnectionClosed:
            await self._reconnect()
        except Exception:  # noqa: BLE001 - the client library tripping over a connection the daemon cut: start afresh
            self.report.client_send_errors += 1
            await self._reconnect()

    async def _reconnect(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        if self.reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.reader, 10)
        self.report.reconnects += 1
        await self._connect()

    async def _stream(self, frames: int, close: str) -> None:
        fmt = {"encoding": "pcm_s16le", "sample_rate_hz": 16000, "channels": 1}
        await self._send(json.dumps({"type": "audio.start", "format": fmt}))
        seed = self.rng.randrange(1000)
        pcm = pcm16(utterance(self.rng.choice([300, 900, 1500]), seed, f0=self.rng.choice([110.0, 150.0])))
        step = 2 * 16000 * self.rng.choice([20, 40, 100]) // 1000
        for i in range(frames):
            start = (i * step) % max(1, len(pcm) - step)
            await self._send(pcm[start:start + step])
            if self.rng.random() < 0.1:  # garbage between audio frames
                _, actions = self.gen.next()
                await self._actions(actions, nested=True)
        if close == "end":
            await self._send(json.dumps({"type": "audio.end"}))
        elif close == "leave":  # disconnect with the stream open
            await self._reconnect()

    async def _actions(self, actions: list[tuple], nested: bool = False) -> None:
        for action in actions:
            kind = action[0]
            if kind == "text":
                await self._send(action[1])
            elif kind == "bytes":
                await self._send(action[1])
            elif kind == "raw_text":
                await self._send(action[1], text=True)
            elif kind == "stream" and not nested:
                await self._stream(action[1], action[2])
            elif kind == "cut":
                self.report.messages += 1
                await asyncio.to_thread(_cut, self.port, action[1])

    async def run(self, n: int) -> None:
        await self._connect()
        try:
            while self.report.messages < n:
                kind, actions = self.gen.next()
                self.report.by_kind[kind] += 1
                await self._actions(actions)
        finally:
            with contextlib.suppress(Exception):
                await self.ws.close()
            if self.reader is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.reader, 10)


async def fuzz(url: str, port: int, messages: int, clients: int, seed: int, report: FuzzReport | None = None) -> FuzzReport:
    """Send about `messages` frames over `clients` connections (each its own seeded generator)."""
    report = report or FuzzReport(seed)
    target = report.messages + messages
    t0 = time.monotonic()
    workers = [FuzzClient(url, port, Generator(seed * 1000 + i), report, random.Random(seed * 1000 + i + 500))
               for i in range(clients)]
    await asyncio.gather(*(w.run(target) for w in workers))
    report.seconds += time.monotonic() - t0
    return report


# ---------------------------------------------------------------- the checks afterwards


def http_json(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as r:
        return json.loads(r.read())


def metric(text: str, name: str) -> float:
    """The value of one sample line of /metrics (`name` includes its labels)."""
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else float("nan")


def metrics_text(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
        return r.read().decode()


async def clean_client(url: str, speech, timeout_s: float = 120.0) -> dict:
    """A well-behaved client: a typed request and a spoken one (16 kHz float audio as a remote stream)."""
    from websockets.asyncio.client import connect

    async with connect(url, max_size=None) as ws:
        async def until(pred):
            while True:
                msg = json.loads(await asyncio.wait_for(ws.recv(), timeout_s))
                if pred(msg):
                    return msg

        await until(lambda m: m["type"] == "hello")
        await ws.send(json.dumps({"type": "query", "id": "clean-typed", "text": CLEAN_COMMAND}))
        typed = await until(lambda m: m.get("request") == "clean-typed" and m["type"] in ("recommendations", "error"))
        await ws.send(json.dumps({"type": "audio.start", "id": "clean-audio"}))
        ack = await until(lambda m: m.get("request") == "clean-audio")
        source = ack.get("source")

        async def talk() -> None:  # like a microphone: the command, then room noise until told to stop
            pcm, k = pcm16(speech), 0
            while True:
                for i in range(0, len(pcm), 1280):  # 40 ms frames at about 1.3 x real time
                    await ws.send(pcm[i:i + 1280])
                    await asyncio.sleep(0.03)
                k += 1
                pcm = pcm16(room(1000, k))

        talker = asyncio.create_task(talk())
        try:
            final = await until(lambda m: m["type"] == "transcript.final" and m.get("source") == source)
        finally:
            talker.cancel()
        await ws.send(json.dumps({"type": "audio.end", "id": "clean-end"}))
        await until(lambda m: m.get("request") == "clean-end")
        return {"typed": typed["type"], "typed_items": len(typed.get("items") or []), "spoken_final": final["text"],
                "spoken_source": source}


def rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", text, re.M).group(1)) / 1024


def log_problems(log_text: str) -> list[str]:
    """Lines of the daemon's log that show a traceback or an unhandled task error."""
    return [line for line in log_text.splitlines() if LOG_PROBLEMS.search(line)]


async def settle(port: int, timeout_s: float = 60.0) -> dict:
    """Wait until the fuzz clients are gone: no clients, no remote streams, empty queues (from /metrics).
    Returns that state (what was left, if the timeout came first) and `settle_s`, how long it took."""
    t0 = time.monotonic()
    while True:
        text = await asyncio.to_thread(metrics_text, port)
        state = {"clients": metric(text, "assistant_clients"), "remote_sources": metric(text, "assistant_remote_sources"),
                 "asr_queue": metric(text, 'assistant_queue_depth{queue="asr_worker"}'),
                 "music_queue": metric(text, 'assistant_queue_depth{queue="music_worker"}')}
        if not any(state.values()) or time.monotonic() - t0 > timeout_s:
            return {**state, "settle_s": round(time.monotonic() - t0, 1)}
        await asyncio.sleep(0.2)


def command_audio(tmp: Path):
    """CLEAN_COMMAND spoken by espeak-ng (16 kHz, with pauses around it), else a speech-like signal."""
    import shutil
    import subprocess

    import numpy as np

    if shutil.which("espeak-ng") is None:
        return utterance(1500)
    from assistant.audio.io import load_audio

    wav = tmp / "clean.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), CLEAN_COMMAND], check=True, capture_output=True)
    return np.concatenate([room(500), load_audio(wav, 16000), room(1500, 2)])


# ---------------------------------------------------------------- the benchmark


async def run_bench(args) -> dict:
    from daemon_common import SHIPPED_MODEL, DaemonProcess, machine

    tmp = Path(tempfile.mkdtemp(prefix="fuzz-"))
    model = tiny_checkpoint_file(tmp / "tiny.pt", (CLEAN_COMMAND,)) if args.small or not SHIPPED_MODEL.is_file() else SHIPPED_MODEL
    extra = small_catalog_config(tmp) if args.small else ""
    daemon = DaemonProcess(tmp, model, {**os.environ, **RATE_OVERRIDE}, ["--input", "none"], extra)
    try:
        await daemon.wait_ready(need_listening=False, timeout_s=900)  # the model and catalog load slowly on a busy machine
        port = daemon.port
        speech = command_audio(tmp)
        report = FuzzReport(args.seed)
        warm = max(args.clients, args.messages // 10)
        await fuzz(daemon.url, port, warm, args.clients, args.seed, report)
        await settle(port, SETTLE_S)
        rss_warm = rss_mb(daemon.proc.pid)
        rss_series = [(report.messages, round(rss_warm, 1))]
        for k in range(1, 10):  # the rest in nine parts, memory read after each
            await fuzz(daemon.url, port, args.messages * (k + 1) // 10 - report.messages, args.clients, args.seed + k, report)
            rss_series.append((report.messages, round(rss_mb(daemon.proc.pid), 1)))
        state = await settle(port, SETTLE_S)  # the streams' utterances are still being recognized for a while
        rss_end = rss_mb(daemon.proc.pid)
        utterances = {line.split('"')[1]: float(line.split()[-1]) for line in metrics_text(port).splitlines()
                      if line.startswith("assistant_utterances_total{")}
        health = http_json(port, "/healthz")
        clean = await clean_client(daemon.url, speech)
        alive = daemon.proc.poll() is None
    finally:
        code = daemon.stop()
    problems = log_problems(daemon.log.read_text(errors="replace"))
    return {"bench": "fuzz_protocol", "machine": machine(), "model": str(model), "catalog": "small" if args.small else "default",
            "report": report.to_dict(), "after": state, "utterances": utterances, "health": health, "clean_client": clean, "alive_after": alive,
            "exit_code": code, "log_problems": problems[:20], "rss_mb_after_warmup": round(rss_warm, 1),
            "rss_mb_end": round(rss_end, 1), "rss_growth_pct": round(100 * (rss_end - rss_warm) / rss_warm, 2),
            "rss_mb_by_messages": rss_series,
            "crashes": int(not alive or report.unreachable) + len(problems) + report.internal_errors + report.closes.get(1011, 0),
            "log": str(daemon.log)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--small", action="store_true", help="tiny random recognizer, six-song catalog, hashing embedder")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    result = asyncio.run(run_bench(args))
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=2))
    return 0 if result["crashes"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
