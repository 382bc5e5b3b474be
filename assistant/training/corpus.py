"""Build the speech corpus: plan every clip (seeded), synthesize/convert the missing ones in
parallel, write JSONL manifests and STATS.json.

Layout of the output folder (default `corpus/`, git-ignored):

    train.jsonl valid.jsonl                  training / model selection
    eval_reserved.jsonl                      reserved voices x held-out command sentences
    eval_seed.jsonl                          the seed example x every reserved voice (human-like variants)
    eval_seed_allvariants.jsonl              ... x every espeak-ng variant installed
    eval_lj002.jsonl eval_librispeech_mini.jsonl eval_fsdd_theo.jsonl   real speech, evaluation only
    clips/<split>/<ab>/<key>.wav            synthesized (and augmented) clips, 16 kHz mono PCM16
    real/<source>/<name>.wav                 real speech resampled to 16 kHz
    _music/                                  rendered background music
    STATS.json                               hours per manifest, source, engine and voice; build time

Every clip's file name is a hash of everything that made it (text, voice
settings, augmentation, padding, format version), so re-running skips clips
that exist and rebuilds only what a config change touched. All random
choices are made while planning, from `numpy.random.default_rng([seed, stream])`,
so the result does not depend on the number of workers or their order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time
import tomllib
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from assistant.errors import AssistantError
from assistant.training import augment as A
from assistant.training import synth as S
from assistant.training.manifest import ManifestEntry, write_manifest
from assistant.training.texts import TextConfig, make_text_sets

FORMAT_VERSION = 1
# Synthesized evaluation clips are trimmed at this level whatever [corpus] trim_db says, so that every
# corpus version shares the same evaluation audio (and soft final consonants are kept).
EVAL_TRIM_DB = -50.0
REPO_ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- config

@dataclass(frozen=True)
class CorpusSection:
    seed: int = 1234
    data_dir: str = "../shared/data"  # relative paths: against the repository root
    out_dir: str = "corpus"
    jobs: int = 2
    pad_min_s: float = 0.05  # silence kept/added before and after each synthesized clip
    pad_max_s: float = 0.4
    trim_db: float = -40.0  # synthesized clips: trim leading/trailing audio this far below the loudest 10 ms


@dataclass(frozen=True)
class RealSection:
    ljspeech_lj001: bool = True  # LJ001-* clips (LJ002-* are never trained on)
    librispeech_dir: str = "speech/librispeech-train-clean-100-sample"  # relative to data_dir; "" = none
    fsdd_train: bool = True  # FSDD speakers other than theo
    augmented_copies: int = 1  # extra augmented copies of each LJ001 / LibriSpeech clip
    fsdd_augmented_copies: int = 0
    # speechocean762 (non-native adults and children, relative to data_dir; "" = none). Speakers are held out
    # by a seeded draw: `valid` ones go to valid.jsonl, `eval` ones to eval_speechocean.jsonl; neither trains.
    speechocean762_dir: str = ""
    speechocean762_valid_speakers: int = 10
    speechocean762_eval_speakers: int = 20
    speechocean762_augmented_copies: int = 0
    alnum_dir: str = ""  # alnum-speech: its Numbers recordings (ten digits read one by one); "" = none
    wake_words_dir: str = ""  # wake-words: crowd-sourced keywords; "" = none
    wake_words_per_keyword: int = 0


@dataclass(frozen=True)
class EvalSection:
    seed_sentence: str = "hello suggest me a sad song"
    lj002: bool = True
    librispeech_mini_dir: str = "speech/librispeech-test-clean-mini"
    fsdd_theo: bool = True
    all_variants_seed: bool = True  # also eval_seed_allvariants.jsonl (every espeak-ng variant)


@dataclass(frozen=True)
class MusicSection:
    pieces: int = 12
    seconds: float = 30.0
    kitchen_noise: str = "noise/kitchen.flac"  # relative to data_dir; "" = none


@dataclass(frozen=True)
class CorpusConfig:
    corpus: CorpusSection = field(default_factory=CorpusSection)
    texts: TextConfig = field(default_factory=TextConfig)
    voices: S.VoiceConfig = field(default_factory=S.VoiceConfig)
    augment: A.AugmentConfig = field(default_factory=A.AugmentConfig)
    valid_augment: A.AugmentConfig = field(default_factory=lambda: A.AugmentConfig(clean_fraction=0.5))
    music: MusicSection = field(default_factory=MusicSection)
    real: RealSection = field(default_factory=RealSection)
    eval: EvalSection = field(default_factory=EvalSection)

    def resolve(self, p: str) -> Path:
        path = Path(p).expanduser()
        return path if path.is_absolute() else REPO_ROOT / path

    @property
    def data_dir(self) -> Path:
        return self.resolve(self.corpus.data_dir)


def _coerce(section: str, key: str, default, value):
    where = f"[{section}] {key}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise AssistantError(f"{where}: expected true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise AssistantError(f"{where}: expected an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise AssistantError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise AssistantError(f"{where}: expected a string, got {value!r}")
        return value
    if isinstance(default, tuple):
        if section == "voices" and key == "engine_weights":
            if not isinstance(value, dict) or any(k not in S.ENGINES for k in value):
                raise AssistantError(f"{where}: expected a table of engine = weight with engines {', '.join(S.ENGINES)}, got {value!r}")
            return tuple((str(k), float(v)) for k, v in value.items())
        if all(isinstance(d, str) for d in default):  # a list of names (voices, variants)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise AssistantError(f"{where}: expected a list of strings, got {value!r}")
            return tuple(value)
        if not isinstance(value, list) or len(value) != len(default):
            raise AssistantError(f"{where}: expected a list of {len(default)} numbers, got {value!r}")
        return tuple(type(d)(v) for d, v in zip(default, value))
    return value


def load_config(path: str | Path | None) -> CorpusConfig:
    """Read configs/corpus.toml; unknown sections/keys and wrong types are errors naming the key."""
    cfg = CorpusConfig()
    if path is None:
        return cfg
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise AssistantError(f"config not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise AssistantError(f"{path}: invalid TOML ({exc})") from None
    changes = {}
    for section, values in raw.items():
        if section not in {f.name for f in dataclasses.fields(CorpusConfig)}:
            raise AssistantError(f"{path}: unknown section [{section}] (expected one of: "
                                 + ", ".join(f.name for f in dataclasses.fields(CorpusConfig)) + ")")
        current = getattr(cfg, section)
        names = {f.name for f in dataclasses.fields(current)}
        if not isinstance(values, dict):
            raise AssistantError(f"{path}: [{section}] must be a table")
        sub = {}
        for key, value in values.items():
            if key not in names:
                raise AssistantError(f"{path}: unknown key '{key}' in [{section}] (expected one of: {', '.join(sorted(names))})")
            sub[key] = _coerce(section, key, getattr(current, key), value)
        changes[section] = dataclasses.replace(current, **sub)
    cfg = dataclasses.replace(cfg, **changes)
    c = cfg.corpus
    if not 1 <= c.jobs <= 64:
        raise AssistantError(f"[corpus] jobs: expected 1 to 64, got {c.jobs}")
    if not -80 <= c.trim_db <= -10:
        raise AssistantError(f"[corpus] trim_db: expected -80 to -10, got {c.trim_db}")
    if not 0 <= c.pad_min_s <= c.pad_max_s <= 2:
        raise AssistantError("[corpus] pad_min_s/pad_max_s: expected 0 <= pad_min_s <= pad_max_s <= 2")
    for name in ("augment", "valid_augment"):
        a = getattr(cfg, name)
        if not 0 <= a.clean_fraction <= 1:
            raise AssistantError(f"[{name}] clean_fraction: expected 0 to 1, got {a.clean_fraction}")
        if not 0.5 <= a.speed_min <= a.speed_max <= 2:
            raise AssistantError(f"[{name}] speed_min/speed_max: expected 0.5 <= speed_min <= speed_max <= 2")
    return cfg


# --------------------------------------------------------------------------- plan

@dataclass
class Job:
    """One output clip: synthesize `text` with `voice`, or convert `src`; then augment."""

    split: str  # manifest name without .jsonl
    source: str
    text: str
    speaker: str
    out: str  # absolute path of the clip
    voice: dict | None = None
    src: str | None = None
    aug: dict = field(default_factory=dict)
    pad: tuple[float, float] = (0.0, 0.0)
    trim_db: float = -40.0

    def key_payload(self) -> dict:
        payload = {"v": FORMAT_VERSION, "text": self.text, "voice": self.voice, "src": self.src, "aug": self.aug,
                   "pad": [round(p, 3) for p in self.pad]}
        if self.voice is not None and self.trim_db != -40.0:  # the first corpus's keys stay valid
            payload["trim_db"] = self.trim_db
        return payload


def clip_key(payload: dict) -> str:
    return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


class Planner:
    def __init__(self, cfg: CorpusConfig, out_dir: Path):
        self.cfg, self.out = cfg, out_dir
        self.jobs: list[Job] = []

    def rng(self, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.cfg.corpus.seed, stream])

    def pad(self, rng: np.random.Generator) -> tuple[float, float]:
        c = self.cfg.corpus
        return (round(float(rng.uniform(c.pad_min_s, c.pad_max_s)), 3), round(float(rng.uniform(c.pad_min_s, c.pad_max_s)), 3))

    def add_tts(self, split: str, source: str, text: str, spec: S.VoiceSpec, aug: A.AugmentSpec,
                pad: tuple[float, float], trim_db: float | None = None) -> None:
        job = Job(split, source, text, spec.speaker, "", voice=spec.to_dict(), aug=aug.to_dict(), pad=pad,
                  trim_db=self.cfg.corpus.trim_db if trim_db is None else trim_db)
        key = clip_key(job.key_payload())
        job.out = str(self.out / "clips" / split / key[:2] / f"{key}.wav")
        self.jobs.append(job)

    def add_convert(self, split: str, source: str, text: str, speaker: str, src: Path, name: str,
                    aug: A.AugmentSpec = A.CLEAN) -> None:
        job = Job(split, source, text, speaker, "", src=str(src), aug=aug.to_dict())
        if aug.is_clean:
            job.out = str(self.out / "real" / source / f"{name}.wav")
        else:
            key = clip_key(job.key_payload())
            job.out = str(self.out / "clips" / split / key[:2] / f"{name}_{key[:10]}.wav")
        self.jobs.append(job)


def plan_corpus(cfg: CorpusConfig, out_dir: Path, voices: dict, n_music: int, have_kitchen: bool,
                log=print) -> tuple[list[Job], dict]:
    """Every clip of every manifest, all random choices made here."""
    from assistant.asr.text import normalize_text

    p = Planner(cfg, out_dir)
    data = cfg.data_dir
    t0 = time.time()
    texts = make_text_sets(data, cfg.texts, cfg.corpus.seed)
    log(f"texts: {texts.counts} ({time.time() - t0:.1f} s)")
    seed_text = normalize_text(cfg.eval.seed_sentence)

    def aug(rng, acfg=cfg.augment):
        return A.sample_augment(rng, acfg, n_music, have_kitchen)

    # Training: commands and general sentences by training voices.
    rng = p.rng(10)
    for text in texts.train_commands:
        p.add_tts("train", "synth-command", text, S.sample_voice(rng, voices, cfg.voices), aug(rng), p.pad(rng))
    rng = p.rng(11)
    for text in texts.train_general:
        p.add_tts("train", "synth-general", text, S.sample_voice(rng, voices, cfg.voices), aug(rng), p.pad(rng))
    # Validation: held-out sentences, training voices.
    rng = p.rng(20)
    for text in texts.valid_commands:
        p.add_tts("valid", "synth-command", text, S.sample_voice(rng, voices, cfg.voices),
                  aug(rng, cfg.valid_augment), p.pad(rng))
    for text in texts.valid_general:
        p.add_tts("valid", "synth-general", text, S.sample_voice(rng, voices, cfg.voices),
                  aug(rng, cfg.valid_augment), p.pad(rng))
    # Evaluation: reserved voices only, clean.
    eval_specs = S.eval_voice_specs("curated")
    rng = p.rng(30)
    if eval_specs:
        for text in texts.eval_commands:
            p.add_tts("eval_reserved", "synth-eval", text, S.sample_eval_voice(rng, eval_specs), A.CLEAN, (0.2, 0.2),
                      EVAL_TRIM_DB)
        for spec in eval_specs:
            p.add_tts("eval_seed", "synth-eval", seed_text, spec, A.CLEAN, (0.2, 0.2), EVAL_TRIM_DB)
        if cfg.eval.all_variants_seed:
            for spec in S.eval_voice_specs("all"):
                p.add_tts("eval_seed_allvariants", "synth-eval", seed_text, spec, A.CLEAN, (0.2, 0.2),
                          EVAL_TRIM_DB)

    # Real speech.
    rng = p.rng(40)
    meta = data / "speech/ljspeech-part1/metadata.csv"
    lj_text = {}
    if meta.exists():
        for line in meta.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split("|")
            if len(parts) >= 2:
                lj_text[parts[0]] = normalize_text(parts[-1])
    wavs = data / "speech/ljspeech-part1/wavs"
    for f in sorted(wavs.glob("LJ00[12]-*.flac")) if wavs.is_dir() else []:
        text = lj_text.get(f.stem)
        if not text:
            continue
        if f.stem.startswith("LJ002-"):
            if cfg.eval.lj002:
                p.add_convert("eval_lj002", "ljspeech-lj002", text, "ljspeech/LJ", f, f.stem)
        elif f.stem.startswith("LJ001-") and cfg.real.ljspeech_lj001:
            p.add_convert("train", "ljspeech-lj001", text, "ljspeech/LJ", f, f.stem)
            for _ in range(cfg.real.augmented_copies):
                p.add_convert("train", "ljspeech-lj001", text, "ljspeech/LJ", f, f.stem,
                              A.sample_augment(rng, dataclasses.replace(cfg.augment, clean_fraction=0), n_music, have_kitchen))
    from assistant.training.librispeech import iter_librispeech

    if cfg.real.librispeech_dir and (data / cfg.real.librispeech_dir).exists():
        for u in iter_librispeech(data / cfg.real.librispeech_dir):
            p.add_convert("train", "librispeech-train-clean-100", u.text, f"librispeech/{u.speaker}", u.audio, u.utt_id)
            for _ in range(cfg.real.augmented_copies):
                p.add_convert("train", "librispeech-train-clean-100", u.text, f"librispeech/{u.speaker}", u.audio,
                              u.utt_id, A.sample_augment(rng, dataclasses.replace(cfg.augment, clean_fraction=0),
                                                         n_music, have_kitchen))
    if cfg.eval.librispeech_mini_dir and (data / cfg.eval.librispeech_mini_dir).exists():
        for u in iter_librispeech(data / cfg.eval.librispeech_mini_dir):
            p.add_convert("eval_librispeech_mini", "librispeech-test-clean", u.text, f"librispeech/{u.speaker}",
                          u.audio, u.utt_id)
    fsdd = data / "speech/fsdd/recordings"
    for f in sorted(fsdd.glob("*.flac")) if fsdd.is_dir() else []:
        parts = f.stem.split("_")
        if len(parts) != 3 or not parts[0].isdigit():
            continue
        digit, spk = parts[0], parts[1]
        text = normalize_text(digit)
        if spk == "theo":
            if cfg.eval.fsdd_theo:
                p.add_convert("eval_fsdd_theo", "fsdd-theo", text, "fsdd/theo", f, f.stem)
        elif cfg.real.fsdd_train:
            p.add_convert("train", "fsdd", text, f"fsdd/{spk}", f, f.stem)
            for _ in range(cfg.real.fsdd_augmented_copies):
                p.add_convert("train", "fsdd", text, f"fsdd/{spk}", f, f.stem,
                              A.sample_augment(rng, dataclasses.replace(cfg.augment, clean_fraction=0), n_music, have_kitchen))
    _plan_speechocean762(p, cfg, data, n_music, have_kitchen)
    _plan_alnum_numbers(p, cfg, data)
    _plan_wake_words(p, cfg, data)
    return p.jobs, texts.counts


def _read_tsv(path: Path) -> list[dict]:
    import csv

    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def speechocean762_held_out(speakers, valid: int, eval_: int, seed: int) -> tuple[set, set]:
    """A seeded draw of (valid speakers, evaluation speakers) from the sorted speaker ids."""
    ordered = sorted(set(speakers))
    order = np.random.default_rng([seed, 45]).permutation(len(ordered))
    picked = [ordered[i] for i in order[: valid + eval_]]
    return set(picked[:valid]), set(picked[valid:])


def _plan_speechocean762(p: Planner, cfg: CorpusConfig, data: Path, n_music: int, have_kitchen: bool) -> None:
    from assistant.asr.text import normalize_text

    root = data / cfg.real.speechocean762_dir if cfg.real.speechocean762_dir else None
    if root is None or not (root / "transcripts.tsv").is_file():
        return
    rows = _read_tsv(root / "transcripts.tsv")
    valid, held = speechocean762_held_out([r["speaker"] for r in rows], cfg.real.speechocean762_valid_speakers,
                                          cfg.real.speechocean762_eval_speakers, cfg.corpus.seed)
    rng = p.rng(41)
    noisy = dataclasses.replace(cfg.augment, clean_fraction=0)
    for r in rows:
        text, spk, src = normalize_text(r["text"]), r["speaker"], root / r["audio"]
        name = f"{spk}_{Path(r['audio']).stem}"
        if not text:
            continue
        if spk in held:
            p.add_convert("eval_speechocean", "speechocean762-heldout", text, f"speechocean762/{spk}", src, name)
        elif spk in valid:
            p.add_convert("valid", "speechocean762-valid", text, f"speechocean762/{spk}", src, name)
        else:
            p.add_convert("train", "speechocean762", text, f"speechocean762/{spk}", src, name)
            for _ in range(cfg.real.speechocean762_augmented_copies):
                p.add_convert("train", "speechocean762", text, f"speechocean762/{spk}", src, name,
                              A.sample_augment(rng, noisy, n_music, have_kitchen))


def _plan_alnum_numbers(p: Planner, cfg: CorpusConfig, data: Path) -> None:
    """alnum-speech Numbers: the prompted ten-digit number, one word per digit (the reading asked for)."""
    import csv

    from assistant.asr.text import normalize_text

    root = data / cfg.real.alnum_dir if cfg.real.alnum_dir else None
    if root is None or not (root / "metadata.csv").is_file():
        return
    with open(root / "metadata.csv", encoding="utf-8", newline="") as f:
        numbers = {row["Response_ID"]: row["Number"].strip() for row in csv.DictReader(f)}
    for f in sorted((root / "audio" / "Numbers").glob("*.opus")):
        digits = numbers.get(f.stem, "")
        if len(digits) == 10 and digits.isdigit():
            p.add_convert("train", "alnum-numbers", normalize_text(" ".join(digits)), f"alnum/{f.stem}", f, f.stem)


def _plan_wake_words(p: Planner, cfg: CorpusConfig, data: Path) -> None:
    from assistant.asr.text import normalize_text

    root = data / cfg.real.wake_words_dir if cfg.real.wake_words_dir else None
    if root is None or cfg.real.wake_words_per_keyword <= 0 or not (root / "transcripts.tsv").is_file():
        return
    by_word: dict[str, list[dict]] = defaultdict(list)
    for r in _read_tsv(root / "transcripts.tsv"):
        by_word[normalize_text(r["text"])].append(r)
    rng = p.rng(42)
    for word, rows in sorted(by_word.items()):
        for i in sorted(rng.permutation(len(rows))[: cfg.real.wake_words_per_keyword]):
            src = root / rows[i]["audio"]
            name = f"{word.replace(' ', '_')}_{src.stem}"
            p.add_convert("train", "wake-words", word, f"wake-words/{name}", src, name)


# --------------------------------------------------------------------------- execution

_BANK: A.NoiseBank | None = None
_TMP: str | None = None


def _init_worker(kitchen: str | None, music: list[str]) -> None:
    global _BANK, _TMP
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _BANK = A.NoiseBank.load(kitchen, music)
    import tempfile

    _TMP = tempfile.mkdtemp(prefix="synth-worker-")


def _run_job(job: Job) -> tuple[str, float | None, str | None]:
    """Make one clip -> (out path, duration_s or None, error or None)."""
    import soundfile as sf

    try:
        if job.voice is not None:
            spec = S.VoiceSpec(**job.voice)
            wav = S.synthesize(spec, job.text, pad_s=job.pad, tmpdir=_TMP, trim_db=job.trim_db)
        else:
            wav = A.load_audio_16k(job.src)
        spec_aug = A.AugmentSpec(**job.aug) if job.aug else A.CLEAN
        wav = A.apply_augment(wav, spec_aug, _BANK or A.NoiseBank())
        peak = float(np.max(np.abs(wav))) if len(wav) else 0.0
        if peak > 0.999:
            wav = wav * (0.999 / peak)
        os.makedirs(os.path.dirname(job.out), exist_ok=True)
        tmp = job.out + f".{os.getpid()}.tmp.wav"
        sf.write(tmp, wav, A.SAMPLE_RATE_HZ, subtype="PCM_16")
        os.replace(tmp, job.out)
        return job.out, len(wav) / A.SAMPLE_RATE_HZ, None
    except Exception as exc:  # one bad clip must not stop the build
        return job.out, None, f"{type(exc).__name__}: {exc}"[:300]


def _existing_duration(path: str) -> float | None:
    import soundfile as sf

    try:
        info = sf.info(path)
        return info.frames / info.samplerate if info.frames > 0 else None
    except Exception:
        return None


def execute(jobs: list[Job], n_workers: int, kitchen: str | None, music: list[str], log=print) -> tuple[dict, list]:
    """Run the missing jobs; return ({out: duration}, errors [(job, error)])."""
    from tqdm import tqdm

    durations: dict[str, float] = {}
    todo: list[Job] = []
    seen: set[str] = set()
    for job in jobs:
        if job.out in seen:
            continue
        seen.add(job.out)
        d = _existing_duration(job.out) if os.path.exists(job.out) else None
        if d is None:
            todo.append(job)
        else:
            durations[job.out] = d
    log(f"clips: {len(seen)} planned, {len(durations)} cached, {len(todo)} to make with {n_workers} worker(s)")
    execute.last_counts = {"clips_planned": len(seen), "clips_cached": len(durations), "clips_made": len(todo)}
    errors = []
    by_out = {j.out: j for j in todo}
    # Slow engines first so the pool does not end on a long tail of them.
    slow = {"piper": 0, "festival": 1}
    todo.sort(key=lambda j: slow.get((j.voice or {}).get("engine", ""), 2))
    bar = tqdm(total=len(todo), desc="synth", unit="clip", smoothing=0.05, file=sys.stderr)
    if n_workers <= 1 or len(todo) < 20:
        _init_worker(kitchen, music)
        results = map(_run_job, todo)
        pool = None
    else:
        import multiprocessing as mp

        pool = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn").Pool(
            n_workers, initializer=_init_worker, initargs=(kitchen, music))
        results = pool.imap_unordered(_run_job, todo, chunksize=8)
    try:
        for out, dur, err in results:
            bar.update(1)
            if err is None:
                durations[out] = dur
            else:
                errors.append((by_out[out], err))
    finally:
        bar.close()
        if pool is not None:
            pool.close()
            pool.join()
    return durations, errors


# --------------------------------------------------------------------------- manifests + stats

MANIFESTS = ("train", "valid", "eval_reserved", "eval_seed", "eval_seed_allvariants", "eval_lj002",
             "eval_librispeech_mini", "eval_fsdd_theo", "eval_speechocean")


def write_manifests(jobs: list[Job], durations: dict, out_dir: Path) -> dict[str, list[ManifestEntry]]:
    by_split: dict[str, list[ManifestEntry]] = defaultdict(list)
    for job in jobs:
        d = durations.get(job.out)
        if d is None:
            continue
        aug = A.AugmentSpec(**job.aug).describe() if job.aug else ""
        by_split[job.split].append(ManifestEntry(job.out, job.text, d, job.speaker, job.source, aug=aug))
    for split, entries in by_split.items():
        write_manifest(out_dir / f"{split}.jsonl", entries, training=(split == "train"))
    return by_split


REAL_SPEAKER_PREFIXES = ("librispeech/", "fsdd/", "speechocean762/", "alnum/", "wake-words/")


def _hours(entries) -> float:
    return round(sum(e.duration_s for e in entries) / 3600, 3)


def compute_stats(by_split: dict, build_s: float, extra: dict) -> dict:
    stats: dict = {"manifests": {}, "build_time_s": round(build_s, 1), **extra}
    for split, entries in sorted(by_split.items()):
        durs = [e.duration_s for e in entries]
        s = {"clips": len(entries), "hours": _hours(entries),
             "mean_duration_s": round(float(np.mean(durs)), 2) if durs else 0,
             "max_duration_s": round(float(np.max(durs)), 2) if durs else 0,
             "augmented_clips": sum(1 for e in entries if e.aug)}
        groups = {"by_source": lambda e: e.source, "by_engine": lambda e: e.speaker.split("/")[0],
                  "by_voice": lambda e: e.speaker.split("+")[0] if not e.speaker.startswith(REAL_SPEAKER_PREFIXES) else e.speaker.split("/")[0]}
        for gname, fn in groups.items():
            g = defaultdict(list)
            for e in entries:
                g[fn(e)].append(e)
            s[gname] = {k: {"clips": len(v), "hours": _hours(v)} for k, v in sorted(g.items())}
        s["distinct_speakers"] = len({e.speaker for e in entries})
        stats["manifests"][split] = s
    return stats


def format_stats(stats: dict) -> str:
    lines = [f"{'manifest':<24}{'clips':>8}{'hours':>9}"]
    for split, s in stats["manifests"].items():
        lines.append(f"{split:<24}{s['clips']:>8}{s['hours']:>9.2f}")
    tr = stats["manifests"].get("train")
    if tr:
        lines.append("\ntrain hours by source / voice:")
        for k, v in tr["by_source"].items():
            lines.append(f"  {k:<34}{v['clips']:>7}{v['hours']:>8.2f} h")
        lines.append("")
        for k, v in tr["by_voice"].items():
            lines.append(f"  {k:<34}{v['clips']:>7}{v['hours']:>8.2f} h")
    lines.append(f"\nbuild time: {stats['build_time_s']:.0f} s")
    return "\n".join(lines)


def build_corpus(cfg: CorpusConfig, out_dir: str | Path | None = None, jobs: int | None = None,
                 only_plan: bool = False, log=print) -> dict:
    """Plan, make, and write the whole corpus; return the stats (also in OUT/STATS.json)."""
    t0 = time.time()
    out = Path(out_dir) if out_dir else cfg.resolve(cfg.corpus.out_dir)
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    data = cfg.data_dir
    if not data.is_dir():
        raise AssistantError(f"data folder not found: {data} (set [corpus] data_dir)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        missing = S.warn_missing(cfg.voices.inventory())
    for w in caught:
        log(f"warning: {w.message}")
    voices = S.available_voices(wanted=cfg.voices.inventory())
    if not voices:
        raise AssistantError("no TTS engine installed: install espeak-ng (bash scripts/setup.sh --synth)")
    log("voices: " + "; ".join(f"{e}: {', '.join(v)}" for e, v in voices.items()))
    kitchen = data / cfg.music.kitchen_noise if cfg.music.kitchen_noise else None
    kitchen = str(kitchen) if kitchen and kitchen.exists() else None
    music_paths, music_method = A.render_music_bank(out / "_music", cfg.music.pieces, cfg.corpus.seed, cfg.music.seconds) \
        if cfg.music.pieces > 0 else ([], "none")
    log(f"background music: {len(music_paths)} pieces ({music_method}); kitchen noise: {'yes' if kitchen else 'missing'}")
    plan, text_counts = plan_corpus(cfg, out, voices, len(music_paths), kitchen is not None, log=log)
    for job in plan:  # belt and braces: the planner never does this, the writer refuses it too
        if job.split == "train" and S.is_reserved_speaker(job.speaker):
            raise AssistantError(f"planner put reserved voice {job.speaker} in training")
    if only_plan:
        return {"planned_clips": len(plan), "texts": text_counts}
    n_workers = jobs or cfg.corpus.jobs
    durations, errors = execute(plan, n_workers, kitchen, [str(p) for p in music_paths], log=log)
    by_split = write_manifests(plan, durations, out)
    err_summary = defaultdict(int)
    for job, err in errors:
        err_summary[f"{(job.voice or {}).get('engine', 'convert')}: {err.split(':')[0]}"] += 1
    stats = compute_stats(by_split, time.time() - t0, {
        **getattr(execute, "last_counts", {}),
        "seed": cfg.corpus.seed, "jobs": n_workers, "texts": text_counts, "missing_voices": missing,
        "voices": {e: list(v) for e, v in voices.items()}, "music": music_method,
        "errors": dict(err_summary), "error_examples": [f"{j.speaker} {j.text!r}: {e}" for j, e in errors[:10]],
        "seed_sentence_train_clips": sum(1 for e in by_split.get("train", []) if e.text == cfg.eval.seed_sentence),
    })
    # Keep the time of the last build that made every clip (a cached re-run takes seconds).
    previous = {}
    if (out / "STATS.json").exists():
        try:
            previous = json.loads((out / "STATS.json").read_text())
        except (OSError, json.JSONDecodeError):
            previous = {}
    if stats.get("clips_cached") == 0 and stats.get("clips_made"):
        stats["full_build"] = {"time_s": stats["build_time_s"], "jobs": n_workers, "clips": stats["clips_made"]}
    elif "full_build" in previous:
        stats["full_build"] = previous["full_build"]
    (out / "STATS.json").write_text(json.dumps(stats, indent=2))
    log(format_stats(stats))
    if errors:
        log(f"{len(errors)} clip(s) failed and were left out: {dict(err_summary)}")
    return stats
