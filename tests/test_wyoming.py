"""The Wyoming speech-to-text service over real TCP, with the `wyoming` package's own client.

Most tests run the daemon in-process with the fake recognizer of test_server
(the transport, the pipeline wiring and bad input, independent of any model);
the last one runs `assistant serve` with the shipped recognizer on an
espeak-ng command.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import socket
import time

import numpy as np
import pytest
from websockets.asyncio.client import connect
from wyoming.asr import Transcribe, Transcript, TranscriptChunk
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event, async_write_event
from wyoming.info import Describe, Info
from wyoming.ping import Ping, Pong

from assistant.config import WyomingConfig
from assistant.errors import AssistantError
from assistant.server.wyoming_asr import check_wyoming_bind
from test_server import WAIT_S, FakeMusic, FakeRecognizer, arun, collect, make_config, recv, room, running, speechlike

RATE = 16000
COMMAND_AUDIO = np.concatenate([room(400), speechlike(1500) + room(1500, 1), room(700, 2)])


def wyoming_config(**kw):
    cfg = make_config()
    return dataclasses.replace(cfg, wyoming=WyomingConfig(enabled=True, port=0, **kw))


def pcm16(audio: np.ndarray, rate: int = RATE, channels: int = 1) -> bytes:
    """16 kHz float audio -> 16-bit PCM at `rate` (resampled), `channels` interleaved."""
    if rate != RATE:
        import soxr

        audio = soxr.resample(audio, RATE, rate)
    x = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    if channels == 2:
        x = np.repeat(x, 2)
    return x.tobytes()


async def read_until(client: AsyncTcpClient, types: set[str], timeout: float = WAIT_S) -> list[Event]:
    """Events until one whose type is in `types` (included)."""
    events = []
    async with asyncio.timeout(timeout):
        while True:
            event = await client.read_event()
            assert event is not None, f"connection closed after {[e.type for e in events]}"
            events.append(event)
            if event.type in types:
                return events


async def transcribe(port: int, audio: np.ndarray, rate: int = RATE, channels: int = 1, chunk_ms: int = 64,
                     realtime: float = 0.0) -> list[Event]:
    """One request as Home Assistant sends it; the events up to transcript-stop (or an error)."""
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate=rate, width=2, channels=channels).event())
        data = pcm16(audio, rate, channels)
        step = rate * chunk_ms // 1000 * 2 * channels
        for i in range(0, len(data), step):
            await client.write_event(AudioChunk(rate=rate, width=2, channels=channels, audio=data[i:i + step]).event())
            if realtime:
                await asyncio.sleep(chunk_ms / 1000 / realtime)
        await client.write_event(AudioStop().event())
        return await read_until(client, {"transcript-stop", "error"}, timeout=30)


def transcript_of(events: list[Event]) -> str:
    types = [e.type for e in events]
    assert types[0] == "transcript-start" and types[-2:] == ["transcript", "transcript-stop"], types
    assert set(types[1:-2]) <= {"transcript-chunk"}, types
    return Transcript.from_event(events[-2]).text


def test_describe_answers_info_with_our_asr_model():
    async def main():
        async with running(wyoming_config()) as d:
            async with AsyncTcpClient("127.0.0.1", d.wyoming.port) as client:
                await client.write_event(Describe().event())
                info = Info.from_event((await read_until(client, {"info"}))[-1])
                await client.write_event(Ping(text="hi").event())
                assert Pong.from_event((await read_until(client, {"pong"}))[-1]).text == "hi"
        (asr,) = info.asr
        assert asr.installed and asr.supports_transcript_streaming
        assert asr.models and asr.models[0].languages == ["en"] and asr.models[0].name == "asr"

    arun(main())


def test_transcribe_gives_the_pipelines_final_and_runs_the_command():
    async def main():
        async with running(wyoming_config()) as d:
            async with connect(d.url) as ws:
                await recv(ws, "hello")
                events = await transcribe(d.wyoming.port, COMMAND_AUDIO, realtime=4)
                seen = await collect(ws, "recommendations")
            metrics = d.metrics.render()
        assert transcript_of(events) == "play something sad by adele"
        final = next(e for e in seen if e["type"] == "transcript.final")
        assert final["source"].startswith("wyoming-") and final["text"] == "play something sad by adele"
        assert [e["type"] for e in seen if e["type"] in ("intent", "recommendations")] == ["intent", "recommendations"]
        assert 'assistant_wyoming_events_total{outcome="transcript"} 1' in metrics

    arun(main())


def test_streamed_chunks_are_the_settled_words_of_the_partials():
    class Growing(FakeRecognizer):
        """Partials grow word by word: 'play', 'play some', ...; the final is their whole text."""

        def new_session(self):
            session = super().new_session()
            words = self.final.split()
            session.accept = lambda audio, s=session: (setattr(s, "samples", s.samples + len(audio)),
                                                      " ".join(words[: s.samples // 6400]))[1]
            return session

    async def main():
        async with running(wyoming_config(), recognizer=Growing()) as d:
            return await transcribe(d.wyoming.port, COMMAND_AUDIO, realtime=4)

    events = arun(main())
    chunks = [TranscriptChunk.from_event(e).text for e in events if e.type == "transcript-chunk"]
    assert len(chunks) >= 2
    assert "".join(chunks) == transcript_of(events) == "play something sad by adele"


def test_four_satellites_at_once_each_get_their_own_transcript():
    async def main():
        async with running(wyoming_config()) as d:
            formats = [(16000, 1), (8000, 1), (48000, 2), (22050, 1)]
            results = await asyncio.gather(*(transcribe(d.wyoming.port, COMMAND_AUDIO, rate, ch, realtime=2) for rate, ch in formats))
            await asyncio.sleep(0.1)
            return results, d.metrics.dropped_frames.get("wyoming"), len(d.remote)

    results, dropped, open_sources = arun(main())
    assert [transcript_of(r) for r in results] == ["play something sad by adele"] * 4
    assert dropped == 0 and open_sources == 0


def test_audio_sent_all_at_once_is_paced_not_dropped():
    long_audio = np.concatenate([COMMAND_AUDIO, room(3000, 3), COMMAND_AUDIO])  # two utterances, ~10 s

    async def main():
        async with running(wyoming_config()) as d:
            events = await transcribe(d.wyoming.port, long_audio, chunk_ms=1000)
            return events, d.metrics.dropped_frames.get("wyoming")

    events, dropped = arun(main())
    assert transcript_of(events) == "play something sad by adele play something sad by adele"
    assert dropped == 0


def test_silence_gives_an_empty_transcript_and_transcribe_only_runs_no_command():
    music = FakeMusic()

    async def main():
        async with running(wyoming_config(run_commands=False), music=music) as d:
            async with connect(d.url) as ws:
                await recv(ws, "hello")
                silent = await transcribe(d.wyoming.port, room(1500))
                spoken = await transcribe(d.wyoming.port, COMMAND_AUDIO)
                await recv(ws, "transcript.final")
                # A command would have reached the music worker before this query (one thread, in order): once
                # the query is answered, nothing else may have been handled.
                await ws.send(json.dumps({"type": "query", "id": "after", "text": "pause"}))
                intents = []
                while not intents or intents[-1].get("request") != "after":
                    intents.append(await recv(ws, "intent"))
        return silent, spoken, intents

    silent, spoken, intents = arun(main())
    assert [i["request"] for i in intents] == ["after"]
    assert [text for text, _, _ in music.seen] == ["pause"]
    assert transcript_of(silent) == ""
    assert transcript_of(spoken) == "play something sad by adele"


def test_bad_input_is_answered_with_errors_and_the_service_stays_up():
    async def main():
        async with running(wyoming_config()) as d:
            port = d.wyoming.port
            async with AsyncTcpClient("127.0.0.1", port) as c:
                codes = []
                for event in (Event(type="synthesize", data={"text": "hello"}),            # not ours
                              AudioChunk(rate=RATE, width=2, channels=1, audio=b"\0\0" * 320).event(),  # before start
                              AudioChunk(rate=RATE, width=2, channels=1, audio=b"\0\0" * 320).event(),  # (answered once)
                              AudioStop().event(),                                         # nothing open
                              AudioStart(rate=RATE, width=4, channels=1).event(),          # 32-bit
                              AudioStart(rate=96000, width=2, channels=1).event(),         # rate
                              Event(type="audio-start", data={"rate": "fast"}),            # garbage fields
                              AudioStart(rate=RATE, width=2, channels=1).event(),          # fine
                              AudioStart(rate=RATE, width=2, channels=1).event(),          # already open
                              AudioChunk(rate=RATE, width=2, channels=1, audio=b"\0\0\0").event(),  # half a sample
                              AudioChunk(rate=8000, width=2, channels=1, audio=b"\0\0" * 80).event(),  # other format
                              Describe().event()):
                    await c.write_event(event)
                events = await read_until(c, {"info"})
                codes = [Error.from_event(e).code for e in events if e.type == "error"]
                texts = [Error.from_event(e).text for e in events if e.type == "error"]
                await c.write_event(AudioStop().event())
                assert transcript_of(await read_until(c, {"transcript-stop"})) == ""
            # a client that vanishes mid-utterance
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await async_write_event(AudioStart(rate=RATE, width=2, channels=1).event(), writer)
            await async_write_event(AudioChunk(rate=RATE, width=2, channels=1, audio=pcm16(COMMAND_AUDIO[:RATE * 2])).event(), writer)
            writer.close()
            # a client that sends garbage framing is told and closed
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"this is not json\n")
            garbage_reply = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(json.dumps({"type": "audio-chunk", "payload_length": 10 ** 9}).encode() + b"\n")
            huge_reply = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            # the service still works, and the vanished client's stream was cleaned up
            after = await transcribe(port, COMMAND_AUDIO)
            for _ in range(50):
                if not d.remote:
                    break
                await asyncio.sleep(0.1)
            return codes, texts, garbage_reply, huge_reply, after, len(d.remote)

    codes, texts, garbage_reply, huge_reply, after, open_sources = arun(main())
    assert codes == ["unknown_type", "audio_not_started", "bad_state", "bad_audio", "bad_audio", "bad_audio",
                     "bad_state", "bad_audio", "bad_audio"], texts
    assert "expected 2 (16-bit PCM)" in texts[3] and "8000 to 48000" in texts[4] and "differs from audio-start" in texts[8]
    assert b'"type": "error"' in garbage_reply and b"not JSON" in garbage_reply
    assert b"payload_length must be an integer from 0 to" in huge_reply
    assert transcript_of(after) == "play something sad by adele"
    assert open_sources == 0


def test_no_recognizer_is_an_error_event():
    async def main():
        from assistant.daemon import Daemon, DaemonOptions

        def fail(config):
            raise AssistantError("model file models/x.pt not found")

        d = Daemon(wyoming_config(), DaemonOptions(input="none"), recognizer_factory=fail, music_factory=lambda c: FakeMusic())
        task = asyncio.create_task(d.run())
        await asyncio.wait_for(d.ready.wait(), WAIT_S)
        try:
            return await transcribe(d.wyoming.port, COMMAND_AUDIO)
        finally:
            d.stop()
            await asyncio.wait_for(task, WAIT_S)

    events = arun(main())
    assert events[-1].type == "error"
    error = Error.from_event(events[-1])
    assert error.code == "unavailable" and "models/x.pt not found" in error.text


def test_off_loopback_needs_an_allow_list_and_others_are_refused():
    with pytest.raises(AssistantError, match=r"\[wyoming\] allowed_clients: required"):
        check_wyoming_bind(WyomingConfig(enabled=True, host="0.0.0.0"))
    check_wyoming_bind(WyomingConfig(enabled=True, host="0.0.0.0", allowed_clients=("192.168.1.0/24",)))
    from assistant.config import load_config

    with pytest.raises(AssistantError, match=r"\[wyoming\] allowed_clients: expected IP addresses"):
        load_config(None, environ={"ASSISTANT_WYOMING_ALLOWED_CLIENTS": '["kitchen"]'})

    async def main():
        async with running(wyoming_config(allowed_clients=("192.0.2.0/24",))) as d:
            refused = await read_all(d.wyoming.port)
        async with running(wyoming_config(max_clients=1)) as d:
            async with AsyncTcpClient("127.0.0.1", d.wyoming.port) as first:
                await first.write_event(Describe().event())
                await read_until(first, {"info"})
                crowded = await read_all(d.wyoming.port)
        return refused, crowded

    refused, crowded = arun(main())
    assert b"not_allowed" in refused and b"allowed_clients" in refused
    assert b"too_many_clients" in crowded and b"max_clients" in crowded


async def read_all(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


@pytest.mark.slow
def test_spoken_command_over_wyoming_plays_on_mpd(tmp_path, request):
    """`assistant serve` with the shipped recognizer and a private MPD: an espeak-ng command sent as Home
    Assistant sends it, by two satellites at once, is transcribed for each and played on MPD."""
    from conftest import espeak
    from daemon_proc import COMMAND, recognizer_model, start_daemon, stop_daemon, wait_healthy
    from mpd_server import MpdServer, make_music

    from assistant.audio.io import load_audio

    model, trained = recognizer_model(request)
    songs = make_music(tmp_path / "music")
    wav = espeak(COMMAND, tmp_path / "command.wav")
    audio = np.concatenate([room(300), load_audio(wav), room(600, 1)]).astype(np.float32)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        wport = s.getsockname()[1]
    with MpdServer(tmp_path / "mpd", tmp_path / "music") as mpd:
        proc, port, log = start_daemon(tmp_path, dict(os.environ), model, args=("--input", "none"), extra_config=(
            f"[wyoming]\nenabled = true\nport = {wport}\n"
            f"[player]\nbackend = \"mpd\"\nport = {mpd.port}\nreconnect_interval_s = 0.5\n"
            f"[recommend]\nuse_default_catalog = false\nmusic_folders = [\"{tmp_path / 'music'}\"]\n"
            f"embed_model = \"hashing\"\ncache_dir = \"{tmp_path / 'cache'}\"\n"))
        try:
            wait_healthy(port, proc, log)

            async def main():
                return await asyncio.gather(*(transcribe(wport, audio, rate, 1, realtime=1.0) for rate in (16000, 22050)))

            results = asyncio.run(main())
            # the two commands are handled one after the other, each replacing MPD's queue: wait until
            # MPD plays and its queue has not changed for 2 s
            c = mpd.client()
            deadline, seen, since = time.monotonic() + WAIT_S, None, time.monotonic()
            while time.monotonic() < deadline:
                status, current = c.status(), c.currentsong()
                if (status["state"], status["playlist"]) != seen:
                    seen, since = (status["state"], status["playlist"]), time.monotonic()
                elif status["state"] == "play" and time.monotonic() - since > 2.0:
                    break
                time.sleep(0.1)
            c.disconnect()
        finally:
            assert stop_daemon(proc) == 0, log.read_text()[-2000:]
    texts = [transcript_of(r) for r in results]
    if trained:
        from rapidfuzz import fuzz

        assert all(fuzz.ratio(t, COMMAND) >= 80 for t in texts), texts
        assert status["state"] == "play" and current["file"] in {s.file for s in songs}, (status, current, texts)
        if all("adele" in t.split() for t in texts):
            assert current["artist"] == "Adele", (current, texts)
