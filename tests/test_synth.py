"""TTS voices: each installed engine speaks a short clip; reserved voices never sampled for training."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from assistant.training import synth as S

INSTALLED = S.available_voices(include_reserved=True)


@pytest.mark.parametrize("spec", [
    S.VoiceSpec("espeak-ng", "en-us", "f3", speed=1.1, pitch=60),
    S.VoiceSpec("mbrola", "us1", speed=0.9, pitch=40),
    S.VoiceSpec("flite", "slt", speed=1.1, pitch=60),
    S.VoiceSpec("festival", "kal_diphone", speed=0.9),
    S.VoiceSpec("festival", "us1_mbrola", speed=1.1),
    S.VoiceSpec("mbrola", "de2-en", speed=1.0, pitch=55),
    S.VoiceSpec("piper", "en_US-joe-medium", speed=1.1, noise=0.5, noise_w=0.7),
], ids=lambda s: s.speaker)
def test_engine_speaks_16k_mono(spec):
    if spec.voice not in INSTALLED.get(spec.engine, ()):
        pytest.skip(f"{spec.engine} voice {spec.voice} is not installed (bash scripts/setup.sh --synth)")
    wav = S.synthesize(spec, "play some music", pad_s=(0.1, 0.2))
    assert wav.dtype == np.float32 and wav.ndim == 1
    assert 0.5 < len(wav) / S.SAMPLE_RATE_HZ < 4
    assert np.max(np.abs(wav)) == pytest.approx(0.7, abs=0.01)
    assert np.all(wav[:1000] == 0)  # leading pad


def test_empty_text_is_an_error():
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    with pytest.raises(S.SynthesisError):
        S.synthesize(S.VoiceSpec("espeak-ng", "en-us"), "  ")


def test_reserved_speakers():
    for s in ["mbrola/us3", "flite/rms", "festival/ked_diphone", "espeak-ng/en-gb-scotland",
              "espeak-ng/en-gb-scotland+f2", "espeak-ng/mb-us3", "festival/us3_mbrola"]:
        assert S.is_reserved_speaker(s), s
    for s in ["mbrola/us1", "flite/slt", "festival/kal_diphone", "espeak-ng/en-gb-x-rp+m3", "espeak-ng/en",
              "piper/en_US-joe-medium", "espeak-ng/en-us+rms", "festival/us1_mbrola", "mbrola/de2-en"]:
        assert not S.is_reserved_speaker(s), s


def test_sample_voice_never_reserved_and_deterministic():
    voices = {"espeak-ng": S.ESPEAK_TRAIN_ACCENTS + ("en-gb-scotland",), "mbrola": ("us1", "us3"),
              "flite": ("slt", "rms"), "festival": ("kal_diphone", "ked_diphone"), "piper": S.PIPER_VOICES}
    cfg = S.VoiceConfig()
    a = [S.sample_voice(np.random.default_rng(3), voices, cfg) for _ in range(1)]
    rng = np.random.default_rng(3)
    draws = [S.sample_voice(rng, voices, cfg) for _ in range(2000)]
    assert draws[0] == a[0]
    assert not any(S.is_reserved(d) for d in draws)
    assert {d.engine for d in draws} == set(S.ENGINES)
    esp = [d for d in draws if d.engine == "espeak-ng"]
    assert all(130 / 175 - 1e-3 <= d.speed <= 200 / 175 + 1e-3 and 30 <= d.pitch <= 70 for d in esp)


def test_eval_voices_are_all_reserved():
    specs = S.eval_voice_specs("curated")
    assert specs and all(S.is_reserved(s) for s in specs)
    rng = np.random.default_rng(0)
    assert all(S.is_reserved(S.sample_eval_voice(rng, specs)) for _ in range(50))


def test_trim_silence():
    wav = np.concatenate([np.zeros(8000), np.ones(1600) * 0.5, np.zeros(8000)]).astype(np.float32)
    out = S.trim_silence(wav)
    assert 1600 <= len(out) <= 1600 + 3 * 160


def test_voice_inventory_from_config():
    cfg = S.VoiceConfig(mbrola_voices=("us1",), festival_voices=(), flite_voices=("slt",), espeak_accents=("en-us",),
                        espeak_variants=("m3",))
    voices = {e: v for e, v in cfg.inventory().items() if v}
    rng = np.random.default_rng(0)
    draws = [S.sample_voice(rng, voices, cfg) for _ in range(300)]
    assert {d.speaker for d in draws if d.engine != "piper"} <= {"mbrola/us1", "flite/slt", "espeak-ng/en-us+m3"}
    assert "festival" not in {d.engine for d in draws}


def test_festival_voice_counts_only_when_its_folder_exists(tmp_path, monkeypatch):
    """Only ked_diphone installed: kal_diphone must not count as installed (a generator is always truthy)."""
    (tmp_path / "english" / "ked_diphone").mkdir(parents=True)
    monkeypatch.setattr(S, "FESTIVAL_VOICE_ROOTS", (str(tmp_path),))
    monkeypatch.setattr(S.shutil, "which", lambda name: f"/usr/bin/{name}")
    assert S._festival_voice_installed("ked_diphone")
    assert not S._festival_voice_installed("kal_diphone")
    have = S.available_voices(wanted={"festival": ("kal_diphone", "ked_diphone")})
    assert have.get("festival") == ("ked_diphone",)
