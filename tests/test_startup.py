"""Nothing lost while the daemon starts: audio sent before the recognizer is ready is kept and answered.

The recognizer is made slow to load on purpose: its factory blocks (on the asr
worker) until the test releases it, so the requests below are sure to arrive
while the daemon is still "starting", however fast or slow the machine is.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import threading

import numpy as np
from websockets.asyncio.client import connect
from wyoming.asr import Transcript
from wyoming.client import AsyncTcpClient
from wyoming.error import Error

from assistant.config import WyomingConfig
from assistant.daemon import Daemon, DaemonOptions
from test_server import WAIT_S, FakeMusic, FakeRecognizer, arun, http_fetch, make_config, open_stream, recv, room, speak, speechlike
from test_wyoming import COMMAND_AUDIO, transcribe

START_DELAY_S = 1.0  # requests are sent this long after the daemon starts (the "1 s after start")


class SlowLoad:
    """A recognizer factory that loads only when `release()` is called (or after WAIT_S)."""

    def __init__(self, recognizer=None):
        self.gate = threading.Event()
        self.recognizer = recognizer or FakeRecognizer()

    def __call__(self, config):
        self.gate.wait(WAIT_S)
        return self.recognizer

    def release(self) -> None:
        self.gate.set()


class BiasRecordingRecognizer(FakeRecognizer):
    """Counts sessions opened before the catalog's names were set (kept audio must wait for them too)."""

    unbiased_sessions = 0

    def new_session(self):
        self.unbiased_sessions += not self.bias
        return super().new_session()


def startup_config(**server):
    cfg = make_config(**server)
    return dataclasses.replace(cfg, wyoming=WyomingConfig(enabled=True, port=0))


@contextlib.asynccontextmanager
async def starting(config, load: SlowLoad):
    """The daemon, running but not ready: yields once its sockets listen and START_DELAY_S has passed."""
    d = Daemon(config, DaemonOptions(input="none"), recognizer_factory=load, music_factory=lambda c: FakeMusic())
    task = asyncio.create_task(d.run())
    try:
        await asyncio.sleep(START_DELAY_S)
        while d.server.server is None or d.wyoming.server is None:  # a starved machine may take longer to listen
            assert not task.done(), task.result()
            await asyncio.sleep(0.05)
        d.url = f"ws://127.0.0.1:{d.server.port}/ws"
        d.http = f"http://127.0.0.1:{d.server.port}"
        yield d
    finally:
        load.release()
        d.stop()
        await asyncio.wait_for(task, WAIT_S)


async def fetch_json(url: str) -> tuple[int, dict]:
    code, _, body = await asyncio.to_thread(http_fetch, url)
    return code, json.loads(body)


async def recv_from(ws, type_: str, source: str) -> dict:
    """The next event of `type_` about `source` (every client sees every source's events)."""
    while (msg := await recv(ws, type_))["source"] != source:
        pass
    return msg


def held_audio_samples() -> int:
    """Samples of audio waiting in every open utterance's inbox (what the startup buffer bounds)."""
    total = 0
    for task in asyncio.all_tasks():
        coro = task.get_coro()
        frame = getattr(coro, "cr_frame", None)
        utt = frame.f_locals.get("self") if frame is not None and task.get_name().startswith("utterance-") else None
        if utt is not None:
            total += sum(len(x) for x in list(utt.inbox._queue) if isinstance(x, np.ndarray))
    return total


def test_wyoming_and_websocket_audio_sent_while_starting_are_answered_once_ready():
    load = SlowLoad(BiasRecordingRecognizer())

    async def main():
        async with starting(startup_config(), load) as d:
            code, health = await fetch_json(d.http + "/healthz")
            assert code == 200 and health["state"] == "starting" and health["ready"] is False
            assert (await fetch_json(d.http + "/readyz"))[0] == 503
            async with connect(d.url) as ws:
                hello = await recv(ws, "hello")
                assert hello["snapshot"]["status"]["ready"] is False
                source = (await open_stream(ws))["source"]
                wyoming = asyncio.create_task(transcribe(d.wyoming.port, COMMAND_AUDIO))
                await speak(ws, COMMAND_AUDIO)
                await ws.send(json.dumps({"type": "audio.end"}))
                await recv_from(ws, "vad.end", source)  # the utterance ended while the recognizer was still loading
                assert d.state() == "starting" and not wyoming.done()
                load.release()
                final = await recv_from(ws, "transcript.final", source)
                assert final["text"] == "play something sad by adele"
                events = await wyoming
                transcript = [Transcript.from_event(e).text for e in events if Transcript.is_type(e.type)]
                assert transcript == ["play something sad by adele"], [e.type for e in events]
                status = await recv(ws, "status")
                while not status["ready"]:
                    status = await recv(ws, "status")
            code, health = await fetch_json(d.http + "/readyz")
            assert code == 200 and health["state"] == "ready" and health["ready"] is True

    arun(main())
    assert load.recognizer.unbiased_sessions == 0  # decoded with the catalog's names, like any later audio


def test_a_client_flooding_audio_while_starting_is_bounded_and_told():
    load = SlowLoad()
    bound_s = 1.5

    async def main():
        async with starting(startup_config(startup_buffer_s=bound_s), load) as d:
            async with connect(d.url) as flood, connect(d.url) as other:
                await recv(flood, "hello")
                await recv(other, "hello")
                source = (await open_stream(flood))["source"]
                await speak(flood, np.concatenate([room(300), speechlike(4000) + room(4000, 1)]))
                err = await recv_from(flood, "error", source)
                assert err["code"] == "startup_buffer_full"
                assert "startup_buffer_s" in err["message"]
                assert held_audio_samples() <= bound_s * 16000  # memory does not grow past the bound
                await other.send(json.dumps({"type": "query", "id": "q", "text": "play adele"}))  # others are served
                assert (await recv(other, "recommendations"))["request"] == "q"
                # A Wyoming request past the bound gets a Wyoming error, not silence.
                events = await transcribe(d.wyoming.port, np.concatenate([room(300), speechlike(4000), room(1000, 2)]))
                errors = [Error.from_event(e) for e in events if Error.is_type(e.type)]
                assert errors and errors[0].code == "startup_buffer_full", [e.type for e in events]
                assert d.state() == "starting"
                load.release()
                # Once ready, the same client's next utterance is recognized as usual (a pause ends the dropped one).
                await speak(flood, np.concatenate([room(1500, 3), COMMAND_AUDIO]))
                final = await recv_from(flood, "transcript.final", source)
                assert final["text"] == "play something sad by adele"
            assert d.metrics.utterances.get("startup_dropped") == 2

    arun(main())


def test_a_file_input_played_while_starting_is_recognized_once_ready(tmp_path):
    from conftest import write_wav

    wav = write_wav(tmp_path / "cmd.wav", COMMAND_AUDIO)
    load = SlowLoad()

    async def main():
        d = Daemon(make_config(), DaemonOptions(input=str(wav), realtime=False, exit_after_input=True),
                   recognizer_factory=load, music_factory=lambda c: FakeMusic())
        finals = []
        d.add_listener(lambda e: finals.append(e.text) if e.type == "transcript.final" else None)
        task = asyncio.create_task(d.run())
        try:
            while d.input_state.state != "finished":  # the whole file is read before the recognizer loads
                assert not task.done(), task.result()
                await asyncio.sleep(0.05)
            assert d.state() == "starting" and finals == []
        finally:
            load.release()
        assert await asyncio.wait_for(task, WAIT_S) == 0  # exit_after_input: once its command is answered
        assert finals == ["play something sad by adele"]

    arun(main())


def test_a_wyoming_request_waits_for_a_start_longer_than_its_result_timeout(monkeypatch):
    """The first start builds the catalog's index (a minute or more): a request sent meanwhile is still answered."""
    from assistant.server import wyoming_asr

    monkeypatch.setattr(wyoming_asr, "RESULT_TIMEOUT_S", 0.2)
    load = SlowLoad()

    async def main():
        async with starting(startup_config(), load) as d:
            ended = asyncio.Event()
            d.add_listener(lambda e: ended.set() if e.type == "vad.end" else None)
            request = asyncio.create_task(transcribe(d.wyoming.port, COMMAND_AUDIO))
            await asyncio.wait_for(ended.wait(), WAIT_S)
            await asyncio.sleep(1.0)  # five result timeouts pass while the daemon starts
            assert not request.done() and d.state() == "starting"
            # the recognition after the start must not race a 0.2 s timeout on a busy machine: the next wait, begun
            # while still starting (the one running now ends within 0.2 s), gets the usual bound
            monkeypatch.setattr(wyoming_asr, "RESULT_TIMEOUT_S", 60.0)
            await asyncio.sleep(0.5)
            assert not request.done() and d.state() == "starting"
            load.release()
            events = await request
            transcript = [Transcript.from_event(e).text for e in events if Transcript.is_type(e.type)]
            assert transcript == ["play something sad by adele"], [e.type for e in events]

    arun(main())
