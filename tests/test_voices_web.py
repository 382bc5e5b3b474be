"""The web page's voice profiles (issue 18) in headless Chromium against the scripted stand-in daemon of
test_web_player: who was recognized, correcting it (voice.correct with the feedback given), forgetting a voice,
and "Add a voice" from an uploaded file (voice.enrol with 16 kHz pcm_s16le)."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import soundfile as sf
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from test_web_player import (WAIT_S, browser, command_wav, hello, library, problems, scripted, scripted_item, text,  # noqa: F401
                             wait_connected, wait_until)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def next_message(scripted, type_: str, kind: str | None = None) -> dict:
    """The next message of `type_` the page sent (a feedback of `kind`: the player also reports "played")."""
    while True:
        msg = json.loads(scripted.received.get(timeout=WAIT_S))
        if msg["type"] == type_ and (kind is None or msg.get("kind") == kind):
            return msg


def status(voices: dict) -> dict:
    return {"type": "status", "v": 1, "ts": 1.0, "listening": False, "mode": "always",
            "input": {"kind": "none", "state": "off"}, "voices": voices}


def test_recognized_speaker_correction_forget_and_add_a_voice(browser, scripted, tmp_path):
    browser.get(scripted.url)
    ws = scripted.next_connection()
    scripted.send(ws, hello(), status({"enabled": True, "active": True, "enrolled": ["Anna", "Ben"], "error": None}))
    wait_connected(browser)
    wait_until(browser, lambda d: "Anna" in text(d, "voice-list") and "Ben" in text(d, "voice-list"), "enrolled voices not listed")

    scripted.send(ws, {"type": "transcript.final", "v": 1, "source": "mic", "utterance": "u7", "text": "play it",
                       "command": "play it", "accepted": True, "audio_ms": 900,
                       "speaker": {"user": "Anna", "recognized": True, "score": 0.86, "nearest": "Anna"}},
                  {"type": "recommendations", "v": 1, "utterance": "u7", "intent": "play", "user": "Anna",
                   "items": [scripted_item("s1", "First")]})
    wait_until(browser, lambda d: text(d, "speaker") == "Recognized: Anna", "the recognized speaker is not shown")
    browser.find_element(By.CSS_SELECTOR, '#songs li[data-id="s1"] button[data-action="like"]').click()
    like = next_message(scripted, "feedback", "like")
    assert (like["song_id"], like["kind"], like["user"]) == ("s1", "like", "Anna")  # feedback goes to Anna's profile

    Select(browser.find_element(By.ID, "voice-who")).select_by_value("Ben")
    browser.find_element(By.ID, "voice-correct").click()
    fix = next_message(scripted, "voice.correct")
    assert (fix["utterance"], fix["user"], fix["from_user"]) == ("u7", "Ben", "Anna")
    assert fix["feedback"] == [{"song_id": "s1", "kind": "like"}]
    scripted.send(ws, {"type": "voice", "v": 1, "action": "correct", "state": "corrected", "name": "Ben",
                       "message": "u7 is Ben's now (1 feedback moved)", "enrolled": ["Anna", "Ben"]})
    wait_until(browser, lambda d: text(d, "speaker") == "Corrected: Ben", "the correction is not shown")
    browser.find_element(By.CSS_SELECTOR, '#songs li[data-id="s1"] button[data-action="skip"]').click()
    assert next_message(scripted, "feedback", "skip")["user"] == "Ben"  # later feedback follows the correction

    browser.find_element(By.CSS_SELECTOR, '#voice-list button[data-forget="Ben"]').click()
    assert next_message(scripted, "voice.forget")["name"] == "Ben"

    wav = tmp_path / "anna.wav"
    t = np.arange(48000) / 48000
    sf.write(wav, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 48000)  # 1 s at 48 kHz
    browser.find_element(By.ID, "voice-name").send_keys("Carla")
    browser.find_element(By.ID, "voice-files").send_keys(str(wav))
    wait_until(browser, lambda d: d.find_element(By.ID, "voice-save").is_enabled(), "Save voice stays disabled with a file")
    browser.find_element(By.ID, "voice-save").click()
    enrol = next_message(scripted, "voice.enrol")
    pcm = np.frombuffer(base64.b64decode(enrol["recordings"][0]), dtype="<i2")
    assert enrol["name"] == "Carla" and len(enrol["recordings"]) == 1
    assert abs(len(pcm) - 16000) <= 16  # resampled to 16 kHz
    scripted.send(ws, {"type": "voice", "v": 1, "action": "enrol", "state": "refused", "name": "Carla",
                       "message": "Carla's voice was not saved: no speech heard", "enrolled": ["Anna"]})
    wait_until(browser, lambda d: "no speech heard" in text(d, "voice-message"), "a refusal is not shown")
    assert problems(browser) == []
    scripted.call(ws.close(1001, "done"))
