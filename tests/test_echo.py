"""Echo cancellation (assistant/audio/echo.py): the echo of a known reference is removed, speech is kept,
and a missing, silent, mismatched or malformed reference is reported without stalling or changing the audio."""

from __future__ import annotations

import asyncio
import json
import shutil

import numpy as np
import pytest

from assistant.audio import echo as echo_mod
from assistant.audio.echo import EchoCanceller, EchoOptions
from assistant.audio.remote import RemoteSource
from assistant.server.protocol import AudioFormat, ProtocolError, parse_client_message
from synthetic import music

RATE = 16000
BLOCK = 480  # 30 ms, not a multiple of the canceller's 10 ms frame on purpose below (+ odd blocks)

try:
    echo_mod._load_speexdsp()
except echo_mod.SpeexUnavailable:
    pytest.skip("libspeexdsp is not installed (scripts/setup.sh installs libspeexdsp1)", allow_module_level=True)


def room_echo(played: np.ndarray, delay_ms: int = 30, seed: int = 0) -> np.ndarray:
    """The speakers' sound at the microphone: a delay and a decaying room response (RT60 about 0.25 s)."""
    rng = np.random.default_rng(seed)
    n = RATE // 4
    rir = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n) * 0.05
    rir[0] = 1.0
    y = np.convolve(played, rir)[: len(played)]
    d = RATE * delay_ms // 1000
    return (0.5 * np.concatenate([np.zeros(d), y[: len(y) - d]])).astype(np.float32)


def run(aec: EchoCanceller, mic: np.ndarray, ref: np.ndarray | None, sizes=(BLOCK,)) -> np.ndarray:
    out, i, k = [], 0, 0
    while i < len(mic):
        n = sizes[k % len(sizes)]
        out.append(aec.process(mic[i:i + n], None if ref is None else ref[i:i + n]))
        i, k = i + n, k + 1
    return np.concatenate(out + [aec.flush()])


def db(x: np.ndarray) -> float:
    return 10 * np.log10(float(np.mean(x.astype(np.float64) ** 2)) + 1e-12)


def test_the_echo_of_the_reference_is_removed():
    played = music(8.0, seed=2)
    mic = room_echo(played)
    aec = EchoCanceller()
    out = run(aec, mic, played, sizes=(BLOCK, 333, 1000))
    assert len(out) == len(mic)  # every sample comes out, in order
    assert aec.state == "active" and aec.erle_db > 15
    assert db(mic[3 * RATE:]) - db(out[3 * RATE:]) > 15  # after a few seconds of adaptation


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (scripts/setup.sh installs it)")
def test_a_voice_over_the_echo_is_kept_while_the_echo_goes():
    from test_vad import _espeak

    said = _espeak("play something sad by adele and then skip this song")
    played = music(12.0, seed=2)
    mic = room_echo(played)
    s = 6 * RATE
    speech = np.zeros_like(mic)
    voiced = said[np.abs(said) > 0.01]
    speech[s:s + len(said)] = said * np.float32(np.sqrt(np.mean(mic ** 2) / np.mean(voiced ** 2)))  # as loud as the echo
    out = run(EchoCanceller(), mic + speech, played)
    seg = slice(s, s + len(said))
    gain = float(np.dot(out[seg], speech[seg]) / np.dot(speech[seg], speech[seg]))
    before = db(speech[seg]) - db(mic[seg])
    after = db(gain * speech[seg]) - db(out[seg] - gain * speech[seg])
    assert gain > 0.8  # the voice is not taken for echo
    assert after - before > 8


def test_no_reference_passes_the_microphone_through_unchanged():
    mic = music(2.0)
    aec = EchoCanceller()
    out = run(aec, mic, None)
    np.testing.assert_array_equal(out, mic)
    assert aec.state == "no_reference"


def test_a_reference_of_the_wrong_length_is_said_and_the_block_passes():
    aec = EchoCanceller()
    mic = music(0.1)
    out = aec.process(mic, mic[:100])
    np.testing.assert_array_equal(out, mic)
    assert aec.state == "no_reference" and "100 samples" in aec.error and str(len(mic)) in aec.error


def test_a_reference_that_stops_is_reported():
    played = music(6.0, seed=3)
    ref = played.copy()
    ref[3 * RATE:] = 0.0  # the player stopped sending what it plays; the room still hears music
    aec = EchoCanceller()
    out = run(aec, room_echo(played), ref)
    assert len(out) == 6 * RATE
    assert aec.state == "reference_silent"


@pytest.mark.parametrize("kind", ["other_music", "wrong_rate"])
def test_a_reference_that_does_not_match_the_room_is_reported(kind):
    played = music(12.0, seed=4)
    if kind == "other_music":
        ref = music(12.0, seed=5)[::-1].copy()
    else:  # 44.1 kHz audio taken for 48 kHz: the reference runs 9 % fast and drifts away at once
        idx = np.minimum((np.arange(len(played)) * 48000 / 44100).astype(int), len(played) - 1)
        ref = played[idx]
    aec = EchoCanceller()
    out = run(aec, room_echo(played), ref)
    assert len(out) == len(played)
    assert aec.state == "not_converging"


def test_without_the_library_audio_passes_and_status_says_why(monkeypatch):
    def missing():
        raise echo_mod.SpeexUnavailable("libspeexdsp is not installed (Debian package libspeexdsp1)")

    monkeypatch.setattr(echo_mod, "_load_speexdsp", missing)
    aec = EchoCanceller()
    mic = music(1.0)
    np.testing.assert_array_equal(run(aec, mic, mic), mic)
    assert aec.state == "unavailable" and "libspeexdsp1" in aec.error


def test_options_are_checked():
    with pytest.raises(ValueError, match="filter_ms must be 50 to 1000"):
        EchoOptions(filter_ms=5000)


# -- a remote stream with a reference channel ---------------------------------------------------------


def stereo_pcm(mic: np.ndarray, ref: np.ndarray, ref_channel: int) -> bytes:
    x = np.stack([ref, mic] if ref_channel == 0 else [mic, ref], axis=1)
    return (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()


async def _drain(source: RemoteSource) -> np.ndarray:
    return np.concatenate([b async for b in source.blocks()])


@pytest.mark.parametrize("ref_channel", [0, 1])
def test_a_remote_stream_with_a_reference_channel_is_cancelled(ref_channel):
    played = music(8.0, seed=6)
    mic = room_echo(played)
    fmt = AudioFormat("pcm_s16le", RATE, 2, echo_reference_channel=ref_channel)
    changes = []
    source = RemoteSource("remote-t-1", fmt, 10_000, echo=EchoCanceller(), on_echo_state=lambda: changes.append(1))
    pcm = stereo_pcm(mic, played, ref_channel)
    frame = RATE // 50 * 4  # 20 ms of 2 x int16
    for i in range(0, len(pcm), frame):
        assert source.push(pcm[i:i + frame], now_s=i / frame / 50) == 0
    assert source.echo_status() == {"state": "active", "error": None} and changes
    source.end()
    out = asyncio.run(_drain(source))
    assert abs(len(out) - len(mic)) < 160
    assert db(mic[4 * RATE:]) - db(out[4 * RATE:len(mic)]) > 15


def test_without_echo_cancellation_the_reference_channel_is_left_out_not_mixed_in():
    played = music(1.0, seed=7)
    mic = 0.5 * music(1.0, seed=8)
    fmt = AudioFormat("pcm_s16le", RATE, 2, echo_reference_channel=1)
    source = RemoteSource("remote-t-2", fmt, 1000, echo=None)
    assert source.push(stereo_pcm(mic, played, 1), now_s=0.0) == 0
    source.end()
    out = asyncio.run(_drain(source))
    np.testing.assert_allclose(out, mic, atol=1 / 16000)
    assert source.echo_status() is None


@pytest.mark.parametrize("fmt, match", [
    ({"channels": 1, "echo_reference_channel": 0}, "echo_reference_channel must be 0 or 1 with channels 2"),
    ({"channels": 2, "echo_reference_channel": 2}, "echo_reference_channel must be 0 or 1 with channels 2"),
    ({"channels": 2, "echo_reference_channel": "left"}, "echo_reference_channel"),
])
def test_audio_start_checks_the_reference_channel(fmt, match):
    msg = json.dumps({"type": "audio.start", "id": "a1", "format": {"encoding": "pcm_s16le", "sample_rate_hz": 16000, **fmt}})
    with pytest.raises(ProtocolError, match=match):
        parse_client_message(msg)
