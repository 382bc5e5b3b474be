"""Waveform augmentation: speed, SNR mixing, coloured noise, reverb, gain, MIDI, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.training import augment as A

SR = 16000


def _tone(seconds=1.0, f=220.0):
    t = np.arange(int(seconds * SR)) / SR
    return (0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32)


def test_speed_perturb_changes_length():
    x = _tone(1.0)
    assert len(A.speed_perturb(x, 1.1)) == pytest.approx(SR / 1.1, rel=0.01)
    assert len(A.speed_perturb(x, 0.9)) == pytest.approx(SR / 0.9, rel=0.01)
    assert A.speed_perturb(x, 1.0) is x


@pytest.mark.parametrize("snr", [0.0, 10.0, 20.0])
def test_mix_at_snr(snr):
    x = _tone(1.0)
    noise = A.coloured_noise(SR // 3, "white", np.random.default_rng(0))  # shorter: tiled
    y = A.mix_at_snr(x, noise, snr)
    n = y - x
    measured = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(n.astype(np.float64) ** 2))
    assert measured == pytest.approx(snr, abs=0.2)


def test_coloured_noise_slopes():
    rng = np.random.default_rng(1)
    n = 1 << 15
    for kind, lo_hi_min in (("white", 0.5), ("pink", 3.0), ("brown", 30.0)):
        x = A.coloured_noise(n, kind, rng)
        assert np.sqrt(np.mean(x**2)) == pytest.approx(1.0, rel=1e-3)
        p = np.abs(np.fft.rfft(x)) ** 2
        low, high = p[10:200].mean(), p[-4000:].mean()
        assert low / high > lo_hi_min


def test_reverb_keeps_length_and_energy():
    x = _tone(0.5)
    y = A.add_reverb(x, 0.5, 0.7, np.random.default_rng(0))
    assert len(y) == len(x)
    assert np.sqrt(np.mean(y**2)) == pytest.approx(np.sqrt(np.mean(x**2)), rel=1e-3)
    assert not np.allclose(x, y)


def test_gain_limits_peak():
    x = _tone(0.1)
    assert np.max(np.abs(A.apply_gain(x, 20.0))) <= 0.945
    assert np.max(np.abs(A.apply_gain(x, -6.0))) == pytest.approx(0.5 * 10 ** (-6 / 20), rel=1e-3)


def test_sample_and_apply_are_deterministic():
    cfg = A.AugmentConfig(clean_fraction=0.0, noise_prob=1.0)
    specs = [A.sample_augment(np.random.default_rng(5), cfg, n_music=2, have_kitchen=False) for _ in range(2)]
    assert specs[0] == specs[1] and not specs[0].is_clean
    bank = A.NoiseBank(kitchen=None, music=[_tone(2.0, 330), _tone(2.0, 440)])
    x = _tone(1.0)
    assert np.array_equal(A.apply_augment(x, specs[0], bank), A.apply_augment(x, specs[0], bank))
    assert A.apply_augment(x, A.CLEAN, bank) is x
    rng = np.random.default_rng(0)
    draws = [A.sample_augment(rng, cfg, 2, False) for _ in range(300)]
    assert not any(d.noise_kind == "kitchen" for d in draws)  # no kitchen noise available
    assert {d.noise_kind for d in draws} >= {"white", "pink", "brown", "music"}
    assert all(0.9 <= d.speed <= 1.1 for d in draws)


def test_clean_fraction():
    rng = np.random.default_rng(0)
    draws = [A.sample_augment(rng, A.AugmentConfig(clean_fraction=0.3), 1, True) for _ in range(1000)]
    frac = sum(d.is_clean for d in draws) / len(draws)
    assert 0.25 < frac < 0.45  # clean by choice, plus draws that changed nothing


def test_midi_file_and_numpy_music(tmp_path):
    p = tmp_path / "x.mid"
    A.write_random_midi(p, seed=1, seconds=4)
    data = p.read_bytes()
    assert data[:4] == b"MThd" and b"MTrk" in data and data.endswith(b"\xff\x2f\x00")
    m = A.synth_music_numpy(2.0, seed=1)
    assert len(m) == 2 * SR and 0.1 < np.max(np.abs(m)) <= 0.5 + 1e-6


def test_render_music_bank(tmp_path):
    paths, method = A.render_music_bank(tmp_path, count=1, seed=3, seconds=3.0)
    assert method in ("fluidsynth", "numpy") and paths[0].exists()
    audio = A.load_audio_16k(paths[0])
    assert len(audio) >= SR and np.sqrt(np.mean(audio**2)) > 1e-3
