"""Voices, noise and clips for the spoken benchmark (bench/spoken_e2e.py).

- `voice_settings(kind)`: the held-out reserved voices (mbrola us3, flite rms,
  festival ked_diphone, espeak-ng en-gb-scotland) or the training voices used
  as a validation set, each at two speeds; voices not installed are skipped
  with a warning.
- `mix_clip`: speech with quiet before and after, and real noise under all of
  it at a given SNR measured over the speech (its louder frames).
- `ClipMaker`: synthesizes (cached under runs/) and mixes one command's clip.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import warnings
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RATE_HZ = 16000
LEAD_S = 0.5            # quiet before the speech
TRAIL_S = 0.5           # quiet after it (the VAD's hangover is 400 ms by default)
PEAK_LIMIT = 0.95
ACTIVE_FRAME = 320      # 20 ms frames for the speech power
ACTIVE_BELOW_PEAK_DB = 35.0
HELDOUT_SPEEDS = (0.9, 1.15)
TRAIN_SPEEDS = (0.95, 1.1)


@dataclass(frozen=True)
class VoiceSetting:
    """A voice at one speed; `label` names it in tables ("flite/rms x1.15")."""

    engine: str
    voice: str
    variant: str = ""
    speed: float = 1.0

    @property
    def speaker(self) -> str:
        return f"{self.engine}/{self.voice}" + (f"+{self.variant}" if self.variant else "")

    @property
    def label(self) -> str:
        return f"{self.speaker} x{self.speed:g}"

    def spec(self):
        from assistant.training.synth import VoiceSpec

        return VoiceSpec(self.engine, self.voice, variant=self.variant, speed=self.speed)


HELDOUT_VOICES = (("mbrola", "us3", ""), ("flite", "rms", ""), ("festival", "ked_diphone", ""),
                  ("espeak-ng", "en-gb-scotland", ""))
TRAIN_VOICES = (("espeak-ng", "en-us", ""), ("espeak-ng", "en-us", "m3"), ("espeak-ng", "en-us", "f3"),
                ("espeak-ng", "en-us", "klatt"), ("flite", "kal16", ""), ("flite", "awb", ""), ("flite", "slt", ""),
                ("mbrola", "us1", ""), ("mbrola", "us2", ""), ("mbrola", "en1", ""),
                ("festival", "kal_diphone", ""), ("festival", "cmu_us_slt_arctic_hts", ""),
                ("piper", "en_US-joe-medium", ""))


def voice_settings(kind: str) -> list[VoiceSetting]:
    """Installed voices of `kind` ("heldout" or "train") at two speeds each, in a fixed order."""
    from assistant.training.synth import available_voices, is_reserved_speaker

    if kind not in ("heldout", "train"):
        raise ValueError(f"voices must be 'heldout' or 'train', got {kind!r}")
    wanted, speeds = (HELDOUT_VOICES, HELDOUT_SPEEDS) if kind == "heldout" else (TRAIN_VOICES, TRAIN_SPEEDS)
    have = available_voices(include_reserved=kind == "heldout")
    out, missing = [], []
    for engine, voice, variant in wanted:
        if voice not in have.get(engine, ()):
            missing.append(f"{engine}/{voice}")
            continue
        reserved = is_reserved_speaker(f"{engine}/{voice}")
        assert reserved == (kind == "heldout"), (engine, voice)
        out.extend(VoiceSetting(engine, voice, variant, s) for s in speeds)
    if missing:
        warnings.warn(f"voices not installed, skipped: {', '.join(missing)} "
                      "(`bash scripts/setup.sh --synth` installs them)", stacklevel=2)
    if not out:
        raise RuntimeError(f"no {kind} voice is installed (need espeak-ng at least)")
    return out


# --------------------------------------------------------------------------- mixing

def active_power(speech: np.ndarray) -> float:
    """Mean power of the frames within 35 dB of the loudest (the speech, not the pauses)."""
    n = len(speech) // ACTIVE_FRAME
    if n == 0:
        return float(np.mean(speech.astype(np.float64) ** 2)) if len(speech) else 0.0
    p = np.mean(speech[: n * ACTIVE_FRAME].astype(np.float64).reshape(n, ACTIVE_FRAME) ** 2, axis=1)
    return float(p[p >= p.max() * 10 ** (-ACTIVE_BELOW_PEAK_DB / 10)].mean())


def noise_segment(noise: np.ndarray, n: int, offset: int) -> np.ndarray:
    """`n` samples of `noise` from `offset`, wrapping around."""
    if len(noise) == 0:
        raise ValueError("noise is empty")
    idx = (offset + np.arange(n)) % len(noise)
    return noise[idx].astype(np.float32)


def mix_clip(speech: np.ndarray, noise: np.ndarray | None, snr_db: float | None, offset: int,
             lead_s: float = LEAD_S, trail_s: float = TRAIL_S) -> tuple[np.ndarray, float]:
    """(clip, gain): `lead_s` of quiet, the speech, `trail_s` of quiet, with `noise` from
    `offset` under the whole clip at `snr_db` over the speech (None = clean). The clip is
    scaled down as a whole (`gain` < 1) when it would peak above PEAK_LIMIT."""
    lead, trail = int(round(lead_s * RATE_HZ)), int(round(trail_s * RATE_HZ))
    clip = np.concatenate([np.zeros(lead, np.float32), speech.astype(np.float32), np.zeros(trail, np.float32)])
    if snr_db is not None:
        if noise is None:
            raise ValueError("a noisy clip needs noise")
        seg = noise_segment(noise, len(clip), offset)
        p_noise = float(np.mean(seg.astype(np.float64) ** 2))
        p_speech = active_power(speech)
        if p_noise > 0 and p_speech > 0:
            clip = clip + seg * np.float32(np.sqrt(p_speech / (p_noise * 10 ** (snr_db / 10))))
    peak = float(np.max(np.abs(clip))) if len(clip) else 0.0
    gain = PEAK_LIMIT / peak if peak > PEAK_LIMIT else 1.0
    return (clip * np.float32(gain)).astype(np.float32), gain


def measured_snr_db(speech: np.ndarray, clip: np.ndarray, lead_s: float = LEAD_S) -> float:
    """SNR of `clip` over the speech it was made from (for tests): speech power / the rest's power."""
    lead = int(round(lead_s * RATE_HZ))
    placed = np.zeros_like(clip)
    placed[lead: lead + len(speech)] = speech
    gain = float(np.dot(clip, placed) / max(np.dot(placed, placed), 1e-12))
    rest = clip - gain * placed
    return 10 * np.log10(active_power(gain * speech) / max(float(np.mean(rest.astype(np.float64) ** 2)), 1e-20))


def load_noise(path: str | Path) -> np.ndarray:
    from assistant.training.augment import load_audio_16k

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"noise file not found: {path}")
    return load_audio_16k(path)


# --------------------------------------------------------------------------- clips

class ClipMaker:
    """Synthesizes a command with a voice (cached as .npy under `cache_dir`) and mixes it."""

    def __init__(self, cache_dir: Path, noise: np.ndarray | None, seed: int):
        self.cache_dir = cache_dir
        self.noise = noise
        self.seed = seed
        cache_dir.mkdir(parents=True, exist_ok=True)

    def speech(self, voice: VoiceSetting, text: str) -> np.ndarray:
        from assistant.training.synth import synthesize

        key = hashlib.sha1(json.dumps([dataclasses.asdict(voice), text]).encode()).hexdigest()[:20]
        path = self.cache_dir / f"{key}.npy"
        if path.is_file():
            return np.load(path)
        audio = synthesize(voice.spec(), text, pad_s=(0.0, 0.0))
        np.save(path, audio)
        return audio

    def offset(self, command_id: str, snr_db: float | None) -> int:
        """A seeded random start in the noise, different per command and level."""
        if self.noise is None:
            return 0
        h = int(hashlib.sha1(f"{self.seed}/{command_id}/{snr_db}".encode()).hexdigest()[:12], 16)
        return int(np.random.default_rng(h).integers(0, len(self.noise)))

    def clip(self, voice: VoiceSetting, command_id: str, text: str, snr_db: float | None,
             trail_s: float = TRAIL_S) -> tuple[np.ndarray, float]:
        """(clip, speech duration in s)."""
        speech = self.speech(voice, text)
        clip, _ = mix_clip(speech, self.noise, snr_db, self.offset(command_id, snr_db), trail_s=trail_s)
        return clip, len(speech) / RATE_HZ


def write_wav(path: Path, audio: np.ndarray) -> None:
    """16 kHz mono int16 WAV."""
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE_HZ)
        w.writeframes(pcm.tobytes())


def snr_label(snr_db: float | None) -> str:
    return "clean" if snr_db is None else f"{snr_db:g} dB"
