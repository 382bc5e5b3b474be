"""Synthetic inputs for daemon tests and benchmarks, made in code (no espeak-ng, no shipped model):
speech-like audio and room noise, a tiny random recognizer checkpoint, a six-song catalog."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

RATE = 16000


def speechlike(ms: int, f0: float = 120.0) -> np.ndarray:
    """A voiced, syllable-modulated vowel sequence (a glottal pulse train through three formant resonators, a new
    vowel every 250 ms) that webrtcvad and Silero VAD both take for speech."""
    from scipy.signal import lfilter

    n = RATE * ms // 1000
    t = np.arange(n) / RATE
    phase = np.cumsum(f0 * (1 + 0.1 * np.sin(2 * np.pi * 3 * t))) / RATE
    pulses = np.diff(np.floor(phase), prepend=0.0)
    vowels = ((700, 1220, 2600), (300, 2300, 3000), (500, 900, 2400), (400, 1900, 2550))
    x = np.zeros(n)
    seg = RATE // 4
    for i in range(0, n, seg):
        for f, bw in zip(vowels[(i // seg) % len(vowels)], (80, 90, 120)):
            r, th = np.exp(-np.pi * bw / RATE), 2 * np.pi * f / RATE
            x[i:i + seg] += lfilter([1 - r], [1, -2 * r * np.cos(th), r * r], pulses[i:i + seg])
    x = x * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))
    return (0.2 * x / max(np.abs(x).max(), 1e-9)).astype(np.float32)


def room(ms: int, seed: int = 0) -> np.ndarray:
    """Quiet white noise (about -54 dBFS)."""
    return (0.002 * np.random.default_rng(seed).standard_normal(RATE * ms // 1000)).astype(np.float32)


def utterance(speech_ms: int = 1500, seed: int = 0, f0: float = 120.0) -> np.ndarray:
    """Room noise, speech over noise, then enough silence for the endpointer to end it."""
    return np.concatenate([room(500, seed), speechlike(speech_ms, f0) + room(speech_ms, seed + 1), room(1200, seed + 2)])


def music(seconds: float, seed: int = 0, rms: float = 0.1) -> np.ndarray:
    """Instrumental music made in code: a chord progression of harmonic tones with a melody and a drum on
    every beat (webrtcvad takes much of it for speech; Silero VAD does not)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    out = np.zeros(n, np.float64)
    beat_s, roots = 0.5, (220.0, 174.6, 261.6, 196.0)
    for b in range(int(np.ceil(seconds / beat_s))):
        s, e = int(b * beat_s * RATE), min(n, int((b + 1) * beat_s * RATE))
        t = np.arange(e - s) / RATE
        root = roots[(b // 4) % 4]
        for ratio in (1.0, 1.26, 1.5, 2.0):
            f = root * ratio
            out[s:e] += sum((0.08 / h) * np.exp(-3.0 * t) * np.sin(2 * np.pi * f * h * t) for h in range(1, 6))
        f = 2 * root * (1.0, 1.12, 1.26, 1.5, 1.68)[rng.integers(5)]
        out[s:e] += 0.1 * np.exp(-4.0 * t) * np.sin(2 * np.pi * f * t + 2 * np.sin(2 * np.pi * 5 * t))
        k = min(e - s, RATE // 20)
        out[s:s + k] += 0.3 * rng.standard_normal(k) * np.exp(-np.arange(k) / 300)
    return (out * (rms / max(np.sqrt(np.mean(out ** 2)), 1e-9))).astype(np.float32)


def pcm16(audio: np.ndarray) -> bytes:
    """float audio -> little-endian 16-bit PCM bytes."""
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def tiny_checkpoint_file(path: Path, lm_texts: tuple[str, ...] = ("play hello by adele", "skip this song")) -> Path:
    """A small untrained StreamingCTC checkpoint (weights random, seeded): the plumbing works, its text is noise."""
    import torch

    from assistant.asr.checkpoint import save_checkpoint
    from assistant.asr.features import FeatureExtractor
    from assistant.asr.network import ModelConfig, StreamingCTC

    torch.manual_seed(0)
    model = StreamingCTC(ModelConfig(cnn_channels=4, residual_blocks=1, rnn_input_dim=32, rnn_hidden=32, rnn_layers=1, lookahead_frames=2))
    save_checkpoint(path, model.eval(), FeatureExtractor.create(), lm_texts=list(lm_texts), training={"note": "test fixture"})
    return path


SMALL_CATALOG = [
    {"title": "Someone Like You", "artist": "Adele", "genres": ["pop", "soul"], "year": 2011, "valence": 0.2, "energy": 0.3},
    {"title": "Hello", "artist": "Adele", "genres": ["pop", "soul"], "year": 2015, "valence": 0.25, "energy": 0.45},
    {"title": "Happy", "artist": "Pharrell Williams", "genres": ["pop"], "year": 2013, "valence": 0.95, "energy": 0.8},
    {"title": "So What", "artist": "Miles Davis", "genres": ["jazz"], "year": 1959, "valence": 0.5, "energy": 0.3},
    {"title": "Bohemian Rhapsody", "artist": "Queen", "genres": ["rock"], "year": 1975, "valence": 0.4, "energy": 0.6},
    {"title": "Clair de Lune", "artist": "Claude Debussy", "genres": ["classical"], "year": 1905, "valence": 0.3, "energy": 0.1},
]


def small_catalog_config(root: Path) -> str:
    """A [recommend] table for a daemon that starts in seconds: SMALL_CATALOG, the model-free hashing embedder,
    the index cache in root/cache."""
    catalog = root / "catalog.jsonl"
    catalog.write_text("".join(json.dumps(s) + "\n" for s in SMALL_CATALOG), encoding="utf-8")
    return (f'[recommend]\nuse_default_catalog = false\ncatalogs = ["{catalog}"]\nembed_model = "hashing"\n'
            f'cache_dir = "{root / "cache"}"\n')
