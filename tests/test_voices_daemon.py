"""Voice profiles in the daemon (issue 18): who spoke becomes the utterance's `user`; enrolment, deletion and
correction over the WebSocket and by voice. Voices from espeak-ng (scripts/setup.sh installs it)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json

import numpy as np
import pytest
from websockets.asyncio.client import connect

from assistant.audio.io import load_audio
from assistant.config import PreferencesConfig, VoicesConfig
from conftest import espeak
from test_server import FakeMusic, FakeRecognizer, arun, make_config, open_stream, recv, running, speak

SENTENCES = ("the quick brown fox jumps over the lazy dog near the river bank",
             "she sells sea shells by the sea shore every summer morning",
             "a stitch in time saves nine and a penny saved is a penny earned")
COMMAND = "play something sad by adele please"
ANNA_VOICE, OTHER_VOICE = "en+f3", "en-us"   # cosine 0.67 apart; 0.91 for Anna's own command


class RefilingMusic(FakeMusic):
    def __init__(self):
        super().__init__()
        self.refiled: list[tuple] = []

    def refile(self, from_user, to_user, feedback) -> int:
        self.refiled.append((from_user, to_user, [dict(f) for f in feedback]))
        return len(feedback)


def said(tmp_path, text: str, voice: str) -> np.ndarray:
    return load_audio(espeak(text, tmp_path / f"{abs(hash((text, voice)))}.wav", voice))


def pcm_b64(audio: np.ndarray) -> str:
    return base64.b64encode((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()).decode()


def config(tmp_path):
    cfg = make_config()
    return dataclasses.replace(cfg, preferences=PreferencesConfig(db_path=str(tmp_path / "prefs.sqlite3")),
                               voices=VoicesConfig(db_path=str(tmp_path / "voices.sqlite3")))


def with_silence(audio: np.ndarray) -> np.ndarray:
    """0.3 s before, 1 s after (the endpointer's hangover is 0.4 s)."""
    return np.concatenate([np.zeros(4800, np.float32), audio, np.zeros(16000, np.float32)])


async def say_remotely(ws, audio: np.ndarray) -> dict:
    """One utterance on the client's open remote stream -> its transcript.final."""
    await speak(ws, with_silence(audio))
    return await recv(ws, "transcript.final")


def test_an_enrolled_voice_becomes_the_utterances_user_and_a_stranger_the_default(tmp_path):
    enrol = [pcm_b64(said(tmp_path, s, ANNA_VOICE)) for s in SENTENCES]
    anna_cmd, other_cmd = said(tmp_path, COMMAND, ANNA_VOICE), said(tmp_path, COMMAND, OTHER_VOICE)
    music = RefilingMusic()

    async def main() -> None:
        async with running(config(tmp_path), music=music) as d, connect(d.url) as ws:
            hello = await recv(ws, "hello")
            assert hello["snapshot"]["status"]["voices"] == {"enabled": True, "active": False, "enrolled": [], "error": None}
            await open_stream(ws)
            final = await say_remotely(ws, other_cmd)        # nobody enrolled: no identification
            assert final["speaker"] is None
            assert (await recv(ws, "intent"))["user"] == "default"

            await ws.send(json.dumps({"type": "voice.enrol", "id": "e1", "name": "Anna", "recordings": enrol}))
            event = await recv(ws, "voice")
            assert (event["state"], event["name"], event["request"], event["enrolled"]) == ("enrolled", "Anna", "e1", ["Anna"])
            assert (await recv(ws, "status"))["voices"]["active"] is True

            final = await say_remotely(ws, anna_cmd)
            assert final["speaker"]["user"] == "Anna" and final["speaker"]["recognized"]
            intent, recs = await recv(ws, "intent"), await recv(ws, "recommendations")
            assert intent["user"] == recs["user"] == "Anna"
            assert music.seen[-1][1] == "Anna"                 # the recommender used Anna's profile

            final = await say_remotely(ws, other_cmd)
            assert final["speaker"] == {"user": "default", "recognized": False, "score": final["speaker"]["score"],
                                        "nearest": "Anna"} and final["speaker"]["score"] < 0.80
            assert (await recv(ws, "intent"))["user"] == "default"

            # the page corrects it: the feedback given for that utterance moves to Anna
            await ws.send(json.dumps({"type": "voice.correct", "id": "c1", "utterance": final["utterance"], "user": "Anna",
                                      "from_user": "default", "feedback": [{"song_id": "s1", "kind": "like"}]}))
            event = await recv(ws, "voice")
            assert (event["action"], event["state"], event["request"]) == ("correct", "corrected", "c1")
            assert music.refiled == [("default", "Anna", [{"song_id": "s1", "kind": "like"}])]

            await ws.send(json.dumps({"type": "voice.forget", "id": "f1", "name": "Anna"}))
            event = await recv(ws, "voice")
            assert (event["state"], event["enrolled"]) == ("forgotten", [])

    arun(main())


@pytest.mark.parametrize("mode", ["always", "wake_phrase"])
def test_spoken_enrolment_takes_three_utterances_and_typed_forget_deletes_it(tmp_path, mode):
    sentences = [said(tmp_path, s, OTHER_VOICE) for s in SENTENCES]
    recognizer = FakeRecognizer(final="hey music remember my voice as ben")
    cfg = config(tmp_path)
    cfg = dataclasses.replace(cfg, listen=dataclasses.replace(cfg.listen, mode=mode))

    async def main() -> None:
        async with running(cfg, music=RefilingMusic(), recognizer=recognizer) as d, connect(d.url) as ws:
            await recv(ws, "hello")
            await open_stream(ws)
            await say_remotely(ws, sentences[0])
            event = await recv(ws, "voice")
            assert (event["action"], event["state"], event["name"]) == ("enrol", "listening", "Ben")
            recognizer.final = "anything at all"            # the next two: enrolment sentences (no wake phrase needed)
            await say_remotely(ws, sentences[1])
            assert (await recv(ws, "voice"))["state"] == "listening"
            await say_remotely(ws, sentences[2])
            event = await recv(ws, "voice")
            assert (event["state"], event["enrolled"]) == ("enrolled", ["Ben"]), event["message"]

            await ws.send(json.dumps({"type": "query", "id": "q1", "text": "remember my voice as Carla"}))
            event = await recv(ws, "voice")                  # typed: the page is asked to record
            assert (event["state"], event["name"]) == ("record", "Carla")
            await ws.send(json.dumps({"type": "query", "id": "q2", "text": "forget the voice of Ben"}))
            event = await recv(ws, "voice")
            assert (event["state"], event["name"], event["enrolled"]) == ("forgotten", "Ben", [])

    arun(main())


def test_refused_enrolment_and_bad_messages_say_why(tmp_path):
    async def main() -> None:
        async with running(config(tmp_path), music=RefilingMusic()) as d, connect(d.url) as ws:
            await recv(ws, "hello")
            silence = pcm_b64(np.zeros(3 * 16000, np.float32))
            await ws.send(json.dumps({"type": "voice.enrol", "id": "e1", "name": "Anna", "recordings": [silence]}))
            event = await recv(ws, "voice")
            assert event["state"] == "refused" and "silent" in event["message"]
            await ws.send(json.dumps({"type": "voice.enrol", "id": "e2", "name": "Anna", "recordings": ["not base64!"]}))
            error = await recv(ws, "error")
            assert error["request"] == "e2" and "not base64" in error["message"]
            await ws.send(json.dumps({"type": "voice.forget", "id": "f1", "name": "Nobody"}))
            event = await recv(ws, "voice")
            assert event["state"] == "refused" and "no voice named 'Nobody'" in event["message"]

    arun(main())


def test_a_damaged_voice_store_starts_the_daemon_with_the_default_profile(tmp_path):
    (tmp_path / "voices.sqlite3").write_bytes(b"garbage" * 1000)

    async def main() -> None:
        async with running(config(tmp_path), music=RefilingMusic()) as d, connect(d.url) as ws:
            hello = await recv(ws, "hello")
            voices = hello["snapshot"]["status"]["voices"]
            assert voices["active"] is False and "damaged" in voices["error"] and "default profile" in voices["error"]
            await ws.send(json.dumps({"type": "query", "text": "remember my voice as Anna"}))
            event = await recv(ws, "voice")
            assert event["state"] == "failed" and "damaged" in event["message"]

    arun(main())
