"""The endpointer: pre-roll, start trigger, hangover, min/max length, flush; and webrtcvad on real speech."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from assistant.audio.vad import Endpointer, SpeechAudio, SpeechEnded, SpeechPaused, SpeechResumed, SpeechStarted
from assistant.config import VadConfig

RATE = 16000


class EnergyVad:
    """Deterministic stand-in for webrtcvad: a frame is speech when it is loud."""

    def is_speech(self, pcm: bytes, rate: int) -> bool:
        assert rate == RATE
        x = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
        return float(np.sqrt(np.mean(x * x))) > 1000.0


def tone(ms: int) -> np.ndarray:
    t = np.arange(RATE * ms // 1000) / RATE
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def silence(ms: int) -> np.ndarray:
    return np.zeros(RATE * ms // 1000, dtype=np.float32)


def run(ep: Endpointer, audio: np.ndarray, block: int = 480) -> list:
    events = []
    for i in range(0, len(audio), block):
        events += ep.push(audio[i:i + block])
    return events


def kinds(events, pauses: bool = False):
    skip = (SpeechAudio,) if pauses else (SpeechAudio, SpeechPaused, SpeechResumed)
    return [type(e).__name__ for e in events if not isinstance(e, skip)]


def test_one_utterance_with_preroll_and_hangover():
    cfg = VadConfig(preroll_ms=300, start_trigger_ms=90, hangover_ms=400, min_utterance_ms=250)
    ep = Endpointer(cfg, vad=EnergyVad())
    events = run(ep, np.concatenate([silence(1200), tone(900), silence(1000)]), block=333)
    assert kinds(events) == ["SpeechStarted", "SpeechEnded"]
    start = events[0]
    assert start.speech_start_ms == 1200
    # pre-roll (300 ms) + trigger window (90 ms) of audio handed over at the start
    assert len(start.audio) == RATE * 390 // 1000
    end = next(e for e in events if isinstance(e, SpeechEnded))
    assert (end.speech_end_ms, end.duration_ms, end.reason, end.accepted) == (2100, 900, "silence", True)
    # the end is decided exactly hangover_ms after the last voiced frame
    audio_after_start = sum(len(e.audio) for e in events if isinstance(e, SpeechAudio))
    assert 1200 + 90 + audio_after_start * 1000 // RATE == 2100 + 390  # 400 ms in whole 30 ms frames
    assert not ep.in_speech


def test_short_blip_is_not_accepted_and_noise_under_trigger_never_starts():
    cfg = VadConfig(start_trigger_ms=90, min_utterance_ms=250)
    ep = Endpointer(cfg, vad=EnergyVad())
    assert kinds(run(ep, np.concatenate([silence(510), tone(50), silence(800)]))) == []  # 2 voiced frames of 3
    events = run(ep, np.concatenate([tone(150), silence(800)]))
    assert kinds(events) == ["SpeechStarted", "SpeechEnded"]
    assert events[-1].accepted is False


def test_pause_shorter_than_hangover_keeps_one_utterance():
    ep = Endpointer(VadConfig(hangover_ms=400), vad=EnergyVad())
    events = run(ep, np.concatenate([silence(300), tone(510), silence(300), tone(510), silence(600)]))
    assert kinds(events) == ["SpeechStarted", "SpeechEnded"]
    assert events[-1].duration_ms == 1320


def test_pauses_inside_an_utterance_are_reported():
    ep = Endpointer(VadConfig(hangover_ms=400), vad=EnergyVad())
    events = run(ep, np.concatenate([silence(300), tone(510), silence(210), tone(510), silence(600)]))
    assert kinds(events, pauses=True) == ["SpeechStarted", "SpeechPaused", "SpeechResumed", "SpeechPaused", "SpeechEnded"]
    # the second pause is reported 150 ms after the last voiced frame, the end 390 ms after it
    audio_ms = np.cumsum([len(e.audio) * 1000 // RATE if isinstance(e, SpeechAudio) else 0 for e in events])
    at = {type(e).__name__: ms for e, ms in zip(events, audio_ms) if not isinstance(e, SpeechAudio)}
    assert at["SpeechEnded"] - at["SpeechPaused"] == 390 - 150
    short = run(Endpointer(VadConfig(hangover_ms=400), vad=EnergyVad()),
                np.concatenate([silence(300), tone(510), silence(90), tone(510), silence(600)]))
    assert kinds(short, pauses=True) == ["SpeechStarted", "SpeechPaused", "SpeechEnded"]  # 90 ms is no pause


class ConfusedVad(EnergyVad):
    """webrtcvad after digital silence: from then on it calls room noise speech too."""

    def __init__(self):
        self.confused = False

    def is_speech(self, pcm: bytes, rate: int) -> bool:
        self.confused = self.confused or not any(pcm)
        return self.confused or super().is_speech(pcm, rate)


def test_the_noise_floor_ends_speech_even_when_webrtcvad_calls_noise_speech():
    rng = np.random.default_rng(1)
    noise = lambda ms: (0.003 * rng.standard_normal(RATE * ms // 1000)).astype(np.float32)  # noqa: E731
    audio = np.concatenate([noise(1500), tone(600) + noise(600), silence(120), noise(3000)])  # a dropout, then room noise
    events = run(Endpointer(VadConfig(), vad=ConfusedVad()), audio)
    assert kinds(events) == ["SpeechStarted", "SpeechEnded"]
    end = next(e for e in events if isinstance(e, SpeechEnded))
    assert end.reason == "silence" and abs(end.speech_end_ms - 2100) <= 60  # not 3 s of noise later


def test_max_length_cuts_and_restarts():
    ep = Endpointer(VadConfig(max_utterance_ms=1000), vad=EnergyVad())
    events = run(ep, np.concatenate([silence(300), tone(1500), silence(700)]))
    ends = [e for e in events if isinstance(e, SpeechEnded)]
    assert [e.reason for e in ends] == ["max_length", "silence"]
    assert ends[0].duration_ms == 990  # whole frames, never longer than the maximum
    assert kinds(events).count("SpeechStarted") == 2


def test_flush_ends_open_utterance():
    ep = Endpointer(VadConfig(), vad=EnergyVad())
    assert kinds(run(ep, np.concatenate([silence(300), tone(600)]))) == ["SpeechStarted"]
    (end,) = ep.flush()
    assert end.reason == "end_of_input" and end.accepted
    assert ep.flush() == []


def test_block_size_does_not_matter():
    audio = np.concatenate([silence(400), tone(700), silence(900), tone(400), silence(900)])
    ref = None
    for block in (160, 480, 1000, 4801, len(audio)):
        ev = run(Endpointer(VadConfig(), vad=EnergyVad()), audio, block)
        summary = [(type(e).__name__, getattr(e, "speech_start_ms", None), getattr(e, "speech_end_ms", None))
                   for e in ev if isinstance(e, (SpeechStarted, SpeechEnded))]
        assert ref is None or summary == ref
        ref = summary
    assert [s[0] for s in ref] == ["SpeechStarted", "SpeechEnded"] * 2


def _espeak(text: str) -> np.ndarray:
    from assistant.audio.io import load_audio

    out = subprocess.run(["espeak-ng", "--stdout", "-s", "150", text], capture_output=True, check=True).stdout
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        f.write(out)
        f.flush()
        return load_audio(f.name)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (scripts/setup.sh installs it)")
def test_webrtcvad_finds_two_spoken_commands():
    a, b = _espeak("play something sad by adele"), _espeak("skip this song")
    audio = np.concatenate([silence(800), a, silence(1500), b, silence(1500)])
    audio += 0.002 * np.random.default_rng(0).standard_normal(len(audio)).astype(np.float32)  # a quiet room, never digital zero
    ep = Endpointer(VadConfig(engine="webrtc"))
    events = run(ep, audio)
    starts = [e for e in events if isinstance(e, SpeechStarted)]
    ends = [e for e in events if isinstance(e, SpeechEnded)]
    assert len(starts) == 2 and len(ends) == 2, kinds(events)
    assert all(e.accepted and e.reason == "silence" for e in ends)
    # espeak pads its output with silence: compare with where the sound is (-40 dB of the peak, 10 ms frames)
    frames = a[: len(a) // 160 * 160].reshape(-1, 160)
    loud = np.flatnonzero(np.sqrt((frames ** 2).mean(axis=1)) > 0.01 * np.sqrt((frames ** 2).mean(axis=1)).max())
    true_start_ms, true_end_ms = 800 + loud[0] * 10, 800 + (loud[-1] + 1) * 10
    assert abs(starts[0].speech_start_ms - true_start_ms) <= 90
    assert abs(ends[0].speech_end_ms - true_end_ms) <= 90  # webrtcvad's own overhang is gated away


def test_speech_at_stream_start_waits_for_warmup_but_keeps_its_audio():
    ep = Endpointer(VadConfig(), vad=EnergyVad())
    events = run(ep, np.concatenate([tone(900), silence(800)]))
    start = events[0]
    assert isinstance(start, SpeechStarted) and start.speech_start_ms <= 300
    assert len(start.audio) >= RATE * 330 // 1000  # nothing before the trigger was thrown away
    assert kinds(events) == ["SpeechStarted", "SpeechEnded"]
