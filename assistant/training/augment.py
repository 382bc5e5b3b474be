"""Waveform augmentation for the speech corpus: speed, noise, music, reverb, gain.

Everything works on float32 mono numpy arrays at one sample rate (16 kHz in
the corpus) and is deterministic given its parameters: the corpus planner
draws an `AugmentSpec` per clip from a seeded RNG, and `apply_augment` turns
(clip, spec, noise banks) into the augmented clip, whichever worker runs it.

Background music comes from tiny MIDI files written here byte by byte
(`write_random_midi`) and rendered with fluidsynth and the Debian General MIDI
soundfont (`render_music_bank`); when fluidsynth or the soundfont is missing,
`synth_music_numpy` makes music-like tones (chords, melody, percussion clicks)
with numpy instead.
"""

from __future__ import annotations

import dataclasses
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE_HZ = 16000
NOISE_KINDS = ("kitchen", "white", "pink", "brown", "music")
SOUNDFONT_CANDIDATES = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
)


# --------------------------------------------------------------------------- specs

@dataclass(frozen=True)
class AugmentSpec:
    """What to do to one clip; every random choice is already made (deterministic).

    speed: resampling factor (1.1 = 10 % faster and higher); 1.0 = unchanged.
    reverb_rt60_s: 0 = no reverb; else RT60 of a synthetic exponentially decaying IR.
    reverb_wet: mix of the reverberant signal (0..1).
    noise_kind: "" or one of NOISE_KINDS; noise_snr_db: speech-to-noise ratio.
    noise_offset: where in the noise/music bank to start, as a fraction 0..1.
    noise_index: which music piece in the bank.
    seed: for coloured noise and the impulse response.
    gain_db: final gain (peak-limited to -0.5 dBFS).
    """

    speed: float = 1.0
    reverb_rt60_s: float = 0.0
    reverb_wet: float = 0.0
    noise_kind: str = ""
    noise_snr_db: float = 0.0
    noise_offset: float = 0.0
    noise_index: int = 0
    seed: int = 0
    gain_db: float = 0.0

    @property
    def is_clean(self) -> bool:
        return self.speed == 1.0 and self.reverb_rt60_s == 0 and not self.noise_kind and self.gain_db == 0

    def to_dict(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v != getattr(CLEAN, k)}

    def describe(self) -> str:
        parts = []
        if self.speed != 1.0:
            parts.append(f"speed{self.speed:.2f}")
        if self.reverb_rt60_s:
            parts.append(f"reverb{self.reverb_rt60_s:.2f}")
        if self.noise_kind:
            parts.append(f"{self.noise_kind}@{self.noise_snr_db:.0f}dB")
        if self.gain_db:
            parts.append(f"gain{self.gain_db:+.0f}dB")
        return "+".join(parts) or "clean"


CLEAN = AugmentSpec()


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges used by `sample_augment` (configs/corpus.toml [augment])."""

    clean_fraction: float = 0.3
    speed_prob: float = 0.5
    speed_min: float = 0.9
    speed_max: float = 1.1
    reverb_prob: float = 0.3
    reverb_rt60_min_s: float = 0.15
    reverb_rt60_max_s: float = 0.8
    noise_prob: float = 0.7
    noise_weights: tuple[float, ...] = (0.3, 0.1, 0.15, 0.1, 0.35)  # in NOISE_KINDS order
    noise_snr_min_db: float = 0.0
    noise_snr_max_db: float = 20.0
    music_snr_min_db: float = 0.0
    music_snr_max_db: float = 20.0
    gain_prob: float = 0.5
    gain_min_db: float = -18.0
    gain_max_db: float = 6.0


def sample_augment(rng: np.random.Generator, cfg: AugmentConfig, n_music: int, have_kitchen: bool) -> AugmentSpec:
    """Draw one clip's augmentation (clean with probability `clean_fraction`)."""
    if rng.random() < cfg.clean_fraction:
        return CLEAN
    speed = float(rng.uniform(cfg.speed_min, cfg.speed_max)) if rng.random() < cfg.speed_prob else 1.0
    rt60 = float(rng.uniform(cfg.reverb_rt60_min_s, cfg.reverb_rt60_max_s)) if rng.random() < cfg.reverb_prob else 0.0
    wet = float(rng.uniform(0.3, 0.9)) if rt60 else 0.0
    kind, snr, offset, index = "", 0.0, 0.0, 0
    if rng.random() < cfg.noise_prob:
        weights = np.array(cfg.noise_weights, dtype=float)
        if not have_kitchen:
            weights[NOISE_KINDS.index("kitchen")] = 0
        if n_music == 0:
            weights[NOISE_KINDS.index("music")] = 0
        if weights.sum() > 0:
            kind = NOISE_KINDS[int(rng.choice(len(NOISE_KINDS), p=weights / weights.sum()))]
            lo, hi = ((cfg.music_snr_min_db, cfg.music_snr_max_db) if kind == "music"
                      else (cfg.noise_snr_min_db, cfg.noise_snr_max_db))
            snr = float(rng.uniform(lo, hi))
            offset = float(rng.random())
            index = int(rng.integers(0, max(1, n_music)))
    gain = float(rng.uniform(cfg.gain_min_db, cfg.gain_max_db)) if rng.random() < cfg.gain_prob else 0.0
    spec = AugmentSpec(speed=round(speed, 3), reverb_rt60_s=round(rt60, 3), reverb_wet=round(wet, 3),
                       noise_kind=kind, noise_snr_db=round(snr, 2), noise_offset=round(offset, 4),
                       noise_index=index, seed=int(rng.integers(0, 2**31 - 1)), gain_db=round(gain, 2))
    # A draw that changed nothing is the clean clip.
    return CLEAN if spec.speed == 1.0 and not rt60 and not kind and not gain else spec


# --------------------------------------------------------------------------- primitives

def speed_perturb(wav: np.ndarray, factor: float, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """Play `factor` times faster (tempo and pitch, like sox `speed`) by resampling."""
    if factor == 1.0 or len(wav) == 0:
        return wav
    import soxr

    # Treat the clip as recorded at sr*factor and resample it to sr.
    return soxr.resample(wav, sample_rate_hz * factor, sample_rate_hz).astype(np.float32)


def coloured_noise(n: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """White, pink (1/f power) or brown (1/f^2 power) noise with unit RMS."""
    white = rng.standard_normal(n)
    if kind == "white":
        out = white
    else:
        spec = np.fft.rfft(white)
        f = np.fft.rfftfreq(n)
        f[0] = f[1] if n > 1 else 1.0
        exponent = {"pink": 0.5, "brown": 1.0}[kind]
        out = np.fft.irfft(spec / f**exponent, n)
    out = out - out.mean()
    rms = np.sqrt(np.mean(out**2)) + 1e-12
    return (out / rms).astype(np.float32)


def impulse_response(rt60_s: float, rng: np.random.Generator, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """A synthetic room impulse response: direct path + exponentially decaying noise tail."""
    n = max(1, int(rt60_s * sample_rate_hz))
    t = np.arange(n) / sample_rate_hz
    decay = np.exp(-6.9078 * t / rt60_s)  # -60 dB at rt60
    tail = rng.standard_normal(n) * decay
    predelay = int(rng.uniform(0.002, 0.015) * sample_rate_hz)
    ir = np.zeros(n + predelay, dtype=np.float64)
    ir[0] = 1.0
    ir[predelay:] += tail * 0.3
    return (ir / np.sqrt(np.sum(ir**2))).astype(np.float32)


def add_reverb(wav: np.ndarray, rt60_s: float, wet: float, rng: np.random.Generator) -> np.ndarray:
    """Convolve with a synthetic IR (same length output, energy kept), mixed `wet`."""
    if rt60_s <= 0 or len(wav) == 0:
        return wav
    ir = impulse_response(rt60_s, rng)
    n = len(wav) + len(ir) - 1
    nfft = 1 << (n - 1).bit_length()
    rev = np.fft.irfft(np.fft.rfft(wav, nfft) * np.fft.rfft(ir, nfft), nfft)[: len(wav)]
    out = (1 - wet) * wav + wet * rev
    src_rms, out_rms = _rms(wav), _rms(out)
    return (out * (src_rms / out_rms if out_rms > 0 else 1.0)).astype(np.float32)


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """speech + noise scaled so that 10*log10(P_speech / P_noise) = snr_db (noise tiled/cut to fit)."""
    if len(speech) == 0 or len(noise) == 0:
        return speech
    noise = _fit_length(noise, len(speech), 0)
    ps, pn = _active_power(speech), np.mean(noise.astype(np.float64) ** 2)
    if pn <= 0 or ps <= 0:
        return speech
    scale = np.sqrt(ps / (pn * 10 ** (snr_db / 10)))
    return (speech + scale * noise).astype(np.float32)


def apply_gain(wav: np.ndarray, gain_db: float, peak: float = 0.944) -> np.ndarray:
    """Scale by `gain_db`, then limit the peak to `peak` (about -0.5 dBFS) so nothing clips."""
    out = wav * (10 ** (gain_db / 20))
    m = float(np.max(np.abs(out))) if len(out) else 0.0
    if m > peak:
        out = out * (peak / m)
    return out.astype(np.float32)


@dataclass
class NoiseBank:
    """Noise sources loaded once per worker: real kitchen noise and rendered music pieces."""

    kitchen: np.ndarray | None = None
    music: list[np.ndarray] = dataclasses.field(default_factory=list)

    @classmethod
    def load(cls, kitchen_path: str | Path | None, music_paths: list[str | Path]) -> "NoiseBank":
        return cls(
            kitchen=load_audio_16k(kitchen_path) if kitchen_path and Path(kitchen_path).exists() else None,
            music=[load_audio_16k(p) for p in music_paths],
        )


def apply_augment(wav: np.ndarray, spec: AugmentSpec, bank: NoiseBank) -> np.ndarray:
    """Speed -> reverb -> additive noise/music -> gain, per `spec`."""
    if spec.is_clean:
        return wav
    rng = np.random.default_rng(spec.seed)
    out = speed_perturb(wav, spec.speed)
    out = add_reverb(out, spec.reverb_rt60_s, spec.reverb_wet, rng)
    if spec.noise_kind:
        if spec.noise_kind in ("white", "pink", "brown"):
            noise = coloured_noise(len(out), spec.noise_kind, rng)
        elif spec.noise_kind == "kitchen" and bank.kitchen is not None:
            noise = _fit_length(bank.kitchen, len(out), int(spec.noise_offset * len(bank.kitchen)))
        elif spec.noise_kind == "music" and bank.music:
            piece = bank.music[spec.noise_index % len(bank.music)]
            noise = _fit_length(piece, len(out), int(spec.noise_offset * len(piece)))
        else:
            noise = coloured_noise(len(out), "pink", rng)  # source missing in this run: fall back
        out = mix_at_snr(out, noise, spec.noise_snr_db)
    return apply_gain(out, spec.gain_db)


# --------------------------------------------------------------------------- music

def _varlen(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def write_random_midi(path: str | Path, seed: int, seconds: float = 30.0) -> None:
    """Write a small type-0 MIDI file: chord pad + melody + bass + drums, random key/tempo/instruments."""
    rng = np.random.default_rng(seed)
    tpb = 480
    bpm = int(rng.integers(70, 150))
    beats = int(seconds * bpm / 60)
    root = int(rng.integers(48, 60))
    minor = bool(rng.random() < 0.5)
    scale = [0, 2, 3, 5, 7, 8, 10] if minor else [0, 2, 4, 5, 7, 9, 11]
    progression = [[0, 3, 4, 0], [0, 5, 3, 4], [0, 4, 5, 3], [5, 3, 0, 4]][int(rng.integers(0, 4))]
    pad_prog = int(rng.choice([0, 4, 48, 49, 88, 89, 19, 24, 25]))
    lead_prog = int(rng.choice([0, 11, 24, 56, 65, 73, 80, 81, 40]))
    bass_prog = int(rng.choice([32, 33, 34, 38]))
    events: list[tuple[int, bytes]] = [
        (0, bytes([0xFF, 0x51, 0x03]) + struct.pack(">I", 60_000_000 // bpm)[1:]),
        (0, bytes([0xC0, pad_prog])), (0, bytes([0xC1, lead_prog])), (0, bytes([0xC2, bass_prog])),
    ]

    def note(t: int, dur: int, ch: int, pitch: int, vel: int) -> None:
        pitch = int(np.clip(pitch, 0, 127))
        events.append((t, bytes([0x90 | ch, pitch, vel])))
        events.append((t + dur, bytes([0x80 | ch, pitch, 0])))

    for bar in range(beats // 4 + 1):
        degree = progression[bar % 4]
        t0 = bar * 4 * tpb
        chord = [root + scale[(degree + k) % 7] + 12 * ((degree + k) // 7) for k in (0, 2, 4)]
        for p in chord:
            note(t0, 4 * tpb - 10, 0, p, 55)
        note(t0, 2 * tpb - 10, 2, chord[0] - 12, 80)
        note(t0 + 2 * tpb, 2 * tpb - 10, 2, chord[0] - 12, 75)
        t = t0
        while t < t0 + 4 * tpb:
            dur = int(rng.choice([tpb // 2, tpb, tpb, 2 * tpb]))
            if rng.random() < 0.85:
                p = root + 12 + scale[int(rng.integers(0, 7))]
                note(t, dur - 10, 1, p, int(rng.integers(60, 100)))
            t += dur
        for beat in range(4):  # drums on channel 10
            tb = t0 + beat * tpb
            note(tb, tpb // 4, 9, 36 if beat % 2 == 0 else 38, 90)
            note(tb, tpb // 4, 9, 42, 60)
            note(tb + tpb // 2, tpb // 4, 9, 42, 50)
    events.sort(key=lambda e: (e[0], e[1][0] & 0xF0 != 0x80))
    track = bytearray()
    last = 0
    for t, data in events:
        track += _varlen(t - last) + data
        last = t
    track += _varlen(0) + bytes([0xFF, 0x2F, 0x00])
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, tpb)
    Path(path).write_bytes(header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track))


def find_soundfont() -> str | None:
    return next((p for p in SOUNDFONT_CANDIDATES if Path(p).exists()), None)


def synth_music_numpy(seconds: float, seed: int, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """Music-like audio without fluidsynth: harmonic chord pads, a melody and percussive clicks."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate_hz)
    t = np.arange(n) / sample_rate_hz
    out = np.zeros(n)
    bpm = rng.uniform(70, 150)
    beat = 60 / bpm
    root = 110 * 2 ** (rng.integers(0, 12) / 12)
    scale = [0, 2, 4, 5, 7, 9, 11]

    def tone(f: float, start: float, dur: float, amp: float) -> None:
        a, b = int(start * sample_rate_hz), min(n, int((start + dur) * sample_rate_hz))
        if a >= b:
            return
        tt = t[a:b] - start
        env = np.minimum(1, tt / 0.01) * np.exp(-tt * 2.5)
        out[a:b] += amp * env * sum(np.sin(2 * np.pi * f * h * tt) / h for h in (1, 2, 3))

    s = 0.0
    while s < seconds:
        deg = int(rng.integers(0, 7))
        for k in (0, 2, 4):
            tone(root * 2 ** (scale[(deg + k) % 7] / 12), s, 4 * beat, 0.15)
        for i in range(4):
            tone(2 * root * 2 ** (scale[int(rng.integers(0, 7))] / 12), s + i * beat, beat, 0.2)
            a = int((s + i * beat) * sample_rate_hz)
            m = min(n - a, int(0.03 * sample_rate_hz))
            if m > 0:
                out[a:a + m] += rng.standard_normal(m) * np.exp(-np.arange(m) / 80) * 0.3
        s += 4 * beat
    return (out / (np.max(np.abs(out)) + 1e-9) * 0.5).astype(np.float32)


def render_music_bank(out_dir: str | Path, count: int, seed: int, seconds: float = 30.0) -> tuple[list[Path], str]:
    """Make `count` background-music pieces as 16 kHz WAVs in `out_dir` (cached); return (paths, method)."""
    import soundfile as sf

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fluidsynth, soundfont = shutil.which("fluidsynth"), find_soundfont()
    method = "fluidsynth" if fluidsynth and soundfont else "numpy"
    paths = []
    for i in range(count):
        path = out_dir / f"music_{method}_{seed}_{i:03d}.wav"
        paths.append(path)
        if path.exists():
            continue
        tmp = path.with_suffix(".tmp.wav")
        audio = None
        if method == "fluidsynth":
            with tempfile.TemporaryDirectory() as td:
                mid = Path(td) / "piece.mid"
                write_random_midi(mid, seed * 1000 + i, seconds)
                raw = Path(td) / "raw.wav"
                proc = subprocess.run([fluidsynth, "-ni", "-g", "0.6", "-r", str(SAMPLE_RATE_HZ), "-F", str(raw),
                                       soundfont, str(mid)], capture_output=True, timeout=120)
                if proc.returncode == 0 and raw.exists():
                    audio = load_audio_16k(raw)
        if audio is None or len(audio) < SAMPLE_RATE_HZ or _rms(audio) < 1e-4:
            audio = synth_music_numpy(seconds, seed * 1000 + i)
        sf.write(tmp, audio, SAMPLE_RATE_HZ, subtype="PCM_16")
        tmp.rename(path)
    return paths, method


# --------------------------------------------------------------------------- helpers

def load_audio_16k(path: str | Path) -> np.ndarray:
    """Read any soundfile-readable file as float32 mono 16 kHz."""
    import soundfile as sf
    import soxr

    audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if sr != SAMPLE_RATE_HZ:
        audio = soxr.resample(audio, sr, SAMPLE_RATE_HZ).astype(np.float32)
    return np.ascontiguousarray(audio, dtype=np.float32)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if len(x) else 0.0


def _active_power(x: np.ndarray, frame: int = 320) -> float:
    """Mean power over the louder frames (speech, not its leading/trailing silence)."""
    n = len(x) // frame
    if n < 2:
        return float(np.mean(x.astype(np.float64) ** 2))
    p = np.mean(x[: n * frame].astype(np.float64).reshape(n, frame) ** 2, axis=1)
    thresh = p.max() * 10 ** (-35 / 10)
    active = p[p > thresh]
    return float(active.mean()) if len(active) else float(p.mean())


def _fit_length(x: np.ndarray, n: int, offset: int) -> np.ndarray:
    if len(x) == 0:
        return np.zeros(n, dtype=np.float32)
    offset %= len(x)
    reps = (offset + n) // len(x) + 1
    return np.tile(x, reps)[offset: offset + n]
