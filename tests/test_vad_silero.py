"""Silero VAD as the Endpointer's frame classifier ([vad] engine = "silero"): speech found, music ignored."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from assistant.audio.vad import Endpointer, SpeechEnded, SpeechStarted
from assistant.config import VadConfig, load_config
from assistant.errors import AssistantError
from synthetic import music, room
from test_vad import _espeak, run, silence

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install -e .)")
pytest.importorskip("silero_vad", reason="silero-vad is not installed (pip install -e .)")

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng is not installed (scripts/setup.sh installs it)")


def starts_and_ends(events):
    return [e for e in events if isinstance(e, SpeechStarted)], [e for e in events if isinstance(e, SpeechEnded)]


def loud_span_ms(a: np.ndarray, offset_ms: int) -> tuple[int, int]:
    frames = a[: len(a) // 160 * 160].reshape(-1, 160)
    rms = np.sqrt((frames ** 2).mean(axis=1))
    loud = np.flatnonzero(rms > 0.01 * rms.max())
    return offset_ms + loud[0] * 10, offset_ms + (loud[-1] + 1) * 10


@needs_espeak
def test_silero_finds_two_spoken_commands_in_a_quiet_room():
    a, b = _espeak("play something sad by adele"), _espeak("skip this song")
    audio = np.concatenate([silence(800), a, silence(1500), b, silence(1500)])
    audio = audio + room(len(audio) * 1000 // 16000 + 1)[: len(audio)]
    starts, ends = starts_and_ends(run(Endpointer(VadConfig(engine="silero")), audio))
    assert len(starts) == 2 and len(ends) == 2
    assert all(e.accepted and e.reason == "silence" for e in ends)
    start_ms, end_ms = loud_span_ms(a, 800)
    assert abs(starts[0].speech_start_ms - start_ms) <= 150
    assert abs(ends[0].speech_end_ms - end_ms) <= 150


def test_music_alone_starts_no_utterance_with_silero_but_does_with_webrtcvad():
    tune = np.concatenate([room(500), music(20.0) + room(20000)])
    silero_starts, _ = starts_and_ends(run(Endpointer(VadConfig(engine="silero")), tune))
    webrtc_starts, _ = starts_and_ends(run(Endpointer(VadConfig(engine="webrtc")), tune))
    assert silero_starts == []
    assert len(webrtc_starts) >= 3  # the music this test plays is not trivially unlike speech


@needs_espeak
def test_a_command_over_music_is_found_with_silero():
    cmd = _espeak("play something sad by adele")
    start_ms = 3000
    bed = music(3.0 + len(cmd) / 16000 + 2.0, seed=1, rms=0.05)
    placed = np.zeros_like(bed)
    placed[start_ms * 16: start_ms * 16 + len(cmd)] = cmd * (0.1 / np.sqrt(np.mean(cmd ** 2)))  # speech ~6 dB over the music
    starts, ends = starts_and_ends(run(Endpointer(VadConfig(engine="silero")), bed + placed))
    assert len(starts) == 1 and ends and ends[0].accepted
    s_ms, e_ms = loud_span_ms(cmd, start_ms)
    assert s_ms - 150 <= starts[0].speech_start_ms <= s_ms + 300
    assert ends[0].speech_end_ms <= e_ms + 600


def test_engine_is_validated_and_selectable_from_the_config_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[vad]\nengine = "silero"\nsilero_threshold = 0.6\n')
    assert load_config(path, environ={}).vad.engine == "silero"
    with pytest.raises(AssistantError, match=r"\[vad\] engine.*'webrtc' or 'silero'"):
        load_config(None, environ={"ASSISTANT_VAD_ENGINE": "rnnoise"})
    with pytest.raises(AssistantError, match="silero_threshold"):
        load_config(None, environ={"ASSISTANT_VAD_SILERO_THRESHOLD": "1.5"})


def test_silero_state_is_per_stream_and_the_session_shared():
    from assistant.audio.silero import SileroVad

    a, b = SileroVad(), SileroVad()
    assert a.session is b.session
    a.probabilities(music(1.0))
    assert not np.array_equal(a._state, b._state)


def test_without_the_silero_package_the_endpointer_falls_back_to_webrtcvad(monkeypatch, caplog):
    from assistant.audio import silero, vad

    def missing():
        raise silero.SileroUnavailable("[vad] engine = \"silero\" needs the silero-vad package")

    monkeypatch.setattr(silero, "shared_session", missing)
    monkeypatch.setattr(vad, "_silero_missing_said", False)
    ep = Endpointer(VadConfig(engine="silero"))
    assert type(ep.vad).__module__.startswith("webrtcvad") or type(ep.vad).__name__ == "Vad"
    assert "silero-vad package" in caplog.text and "webrtcvad instead" in caplog.text
