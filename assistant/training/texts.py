"""Sentences for the speech corpus: music commands and general sentences, with held-out splits.

Sources (all read from a data directory laid out like ../shared/data):
- nlu/snips-2017: PlayMusic and AddToPlaylist training files;
- nlu/slurp/devel.jsonl and nlu/hwu64/train: music, volume and stop intents
  (other intents feed the general pool: short everyday requests);
- catalogs/top-hits-2000-2019.csv: titles, artists and genres that fill the
  command templates of `assistant.nlu.templates`;
- speech/ljspeech-part1/metadata.csv: LJSpeech transcripts for general
  sentences, every chapter except LJ002 (LJ002 audio is an evaluation set).

Every sentence is normalized with `assistant.asr.text.normalize_text`.
Held-out command sentences (valid and evaluation) never occur in the
training sentences, compared as normalized strings (`make_text_sets`
guarantees it and `check_disjoint` verifies it).
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from assistant.asr.text import normalize_text
from assistant.nlu import templates as T

CATALOG_CSV = "catalogs/top-hits-2000-2019.csv"  # under the data directory: names for the command templates
_PAREN = re.compile(r"\s*[\(\[][^)\]]*[\)\]]")
_SLOT = re.compile(r"\{(\w+)\}")


# --------------------------------------------------------------------------- catalog names

def clean_title(title: str) -> str:
    """Song title as people say it: no "(feat. X)", "- Remastered 2011", "[Live]"."""
    s = _PAREN.sub("", title)
    s = re.split(r"\s+-\s+|\s+feat\.|\s+ft\.", s)[0]
    return s.strip(" '\"")


@dataclass
class CatalogNames:
    artists: list[str] = field(default_factory=list)
    tracks: list[str] = field(default_factory=list)
    genres: list[str] = field(default_factory=list)
    albums: list[str] = field(default_factory=list)


def load_catalog_names(csv_path: str | Path, max_words: int = 6) -> CatalogNames:
    """Normalized, deduplicated artist/title/genre names from a Spotify-style CSV (artist, song, genre)."""
    artists, tracks, genres = set(), set(), set()
    with open(csv_path, newline="", encoding="utf-8", errors="replace") as f:
        for row in csv.DictReader(f):
            a = normalize_text(row.get("artist", ""))
            t = normalize_text(clean_title(row.get("song", "")))
            if a and len(a.split()) <= max_words:
                artists.add(a)
            if t and len(t.split()) <= max_words:
                tracks.add(t)
            for g in (row.get("genre") or "").replace("/", ",").split(","):
                g = normalize_text(g)
                if g and g != "set()":
                    genres.add(g)
    genres |= {normalize_text(g) for g in T.GENRES}
    return CatalogNames(sorted(artists), sorted(tracks), sorted(genres), [])


# --------------------------------------------------------------------------- NLU data sets

def _swap_wake(text: str, rng: np.random.Generator) -> str:
    """Replace other assistants' names ("olly", "siri") with one of our wake words (or nothing)."""
    words = text
    for name in T.FOREIGN_WAKE_NAMES:
        if re.search(rf"\b{name}\b", words):
            wake = T.WAKE_WORDS[int(rng.integers(0, len(T.WAKE_WORDS)))]
            words = re.sub(rf"\b{name}\b", wake, words)
    return " ".join(words.split())


def read_snips(snips_dir: str | Path, intents: tuple[str, ...] = T.SNIPS_MUSIC_INTENTS) -> list[str]:
    out = []
    for intent in intents:
        path = Path(snips_dir) / f"train_{intent}_full.json"
        if not path.exists():
            continue
        data = json.loads(path.read_bytes().decode("utf-8", errors="replace"))
        for example in data.get(intent, []):
            out.append("".join(chunk.get("text", "") for chunk in example.get("data", [])))
    return out


def read_slurp(path: str | Path) -> tuple[list[str], list[str]]:
    """(music/volume/stop sentences, other sentences) from a SLURP JSONL split."""
    music, other = [], []
    path = Path(path)
    if not path.exists():
        return music, other
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            row = json.loads(line)
            (music if row.get("intent") in T.SLURP_MUSIC_INTENTS else other).append(row.get("sentence", ""))
    return music, other


def read_hwu64(folder: str | Path) -> tuple[list[str], list[str]]:
    """(music/volume/stop sentences, other sentences) from an HWU64 split folder of per-intent CSVs."""
    music, other = [], []
    folder = Path(folder)
    if not folder.is_dir():
        return music, other
    for path in sorted(folder.glob("*.csv")):
        with open(path, newline="", encoding="utf-8", errors="replace") as f:
            rows = [r.get("answer_from_anno", "") for r in csv.DictReader(f, delimiter=";")]
        (music if path.stem in T.HWU64_MUSIC_FILES else other).extend(rows)
    return music, other


def read_ljspeech_texts(metadata: str | Path, exclude_prefixes: tuple[str, ...] = ("LJ002",)) -> list[tuple[str, str]]:
    """[(clip id, normalized text)] from LJSpeech metadata.csv (3rd column), minus `exclude_prefixes`."""
    out = []
    path = Path(metadata)
    if not path.exists():
        return out
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.rstrip("\n").split("|")
            if len(parts) < 2 or parts[0].startswith(exclude_prefixes):
                continue
            out.append((parts[0], normalize_text(parts[-1])))
    return out


# --------------------------------------------------------------------------- templates

def slot_values(names: CatalogNames) -> dict[str, list[str]]:
    return {
        "artist": names.artists or ["adele", "queen", "the beatles"],
        "track": names.tracks or ["hello", "yesterday", "bohemian rhapsody"],
        "album": (names.albums or names.tracks) or ["twenty one"],
        "genre": names.genres or list(T.GENRES),
        "mood": list(T.MOODS),
        "playlist": list(T.PLAYLISTS),
        "year": list(T.YEARS),
        "sort": list(T.SORTS),
        "service": list(T.SERVICES),
        "music_item": list(T.MUSIC_ITEMS),
        "wake": list(T.WAKE_WORDS),
    }


DEFAULT_INTENT_WEIGHTS = {
    "play": 0.26, "recommend": 0.2, "similar": 0.09, "next": 0.05, "previous": 0.03, "pause": 0.04,
    "resume": 0.03, "stop": 0.04, "like": 0.06, "dislike": 0.04, "volume_up": 0.05,
    "volume_down": 0.05, "what_is_playing": 0.06,
}


def fill_template(template: str, values: dict[str, list[str]], rng: np.random.Generator) -> str:
    text = _SLOT.sub(lambda m: values[m.group(1)][int(rng.integers(0, len(values[m.group(1)])))], template)
    return normalize_text(text)


def sample_template_sentences(n: int, names: CatalogNames, rng: np.random.Generator,
                              intent_weights: dict[str, float] | None = None) -> list[str]:
    """`n` filled templates (intents drawn by weight; duplicates possible for slot-less commands)."""
    weights = intent_weights or DEFAULT_INTENT_WEIGHTS
    intents = [i for i in sorted(weights) if i in T.TEMPLATES]
    p = np.array([weights[i] for i in intents], dtype=float)
    p /= p.sum()
    values = slot_values(names)
    out = []
    for _ in range(n):
        intent = intents[int(rng.choice(len(intents), p=p))]
        temps = T.TEMPLATES[intent]
        out.append(fill_template(temps[int(rng.integers(0, len(temps)))], values, rng))
    return [s for s in out if s]


# --------------------------------------------------------------------------- splits

@dataclass
class TextConfig:
    """configs/corpus.toml [texts]."""

    train_command_sentences: int = 9000
    dataset_fraction: float = 0.35  # share of training commands taken from Snips/SLURP/HWU64 (rest: templates)
    valid_command_sentences: int = 300
    eval_command_sentences: int = 250
    general_sentences: int = 1500
    general_lj_fraction: float = 0.5  # rest: non-music SLURP/HWU64 requests
    valid_general_sentences: int = 100
    general_min_words: int = 3
    general_max_words: int = 18
    command_max_words: int = 14
    seed_in_training: int = 6  # clips of the seed example spoken by training voices (0 = none)


@dataclass
class TextSets:
    train_commands: list[str]
    valid_commands: list[str]
    eval_commands: list[str]
    train_general: list[str]
    valid_general: list[str]
    counts: dict[str, int] = field(default_factory=dict)


def _dedup(items) -> list[str]:
    seen, out = set(), []
    for s in items:
        if s and s not in seen:
            seen.add(s)
            out.append(s)
    return out


def make_text_sets(data_dir: str | Path, cfg: TextConfig, seed: int) -> TextSets:
    """Build training/valid/eval sentence lists (normalized) from `data_dir`; deterministic in `seed`."""
    data = Path(data_dir)
    rng = np.random.default_rng([seed, 1])
    names = load_catalog_names(data / CATALOG_CSV) \
        if (data / "catalogs/top-hits-2000-2019.csv").exists() else CatalogNames()
    slurp_music, slurp_other = read_slurp(data / "nlu/slurp/devel.jsonl")
    hwu_music, hwu_other = read_hwu64(data / "nlu/hwu64/train")
    snips = read_snips(data / "nlu/snips-2017")

    def norm(items):
        return [s for s in (normalize_text(_swap_wake(normalize_text(x), rng)) for x in items)
                if s and len(s.split()) <= cfg.command_max_words]

    dataset_cmds = _dedup(norm(snips) + norm(slurp_music) + norm(hwu_music))
    seed_sentence = normalize_text(T.SEED_EXAMPLE)

    # Held-out pool: new template fills (mostly), dataset sentences, and slot-less commands with a wake word.
    n_held = cfg.valid_command_sentences + cfg.eval_command_sentences
    held: list[str] = []
    held_set: set[str] = {seed_sentence}
    fixed = [t for temps in T.TEMPLATES.values() for t in temps if _SLOT.findall(t) == ["wake"]]
    values = slot_values(names)
    order = rng.permutation(len(dataset_cmds))
    di = 0
    guard = 0
    while len(held) < n_held and guard < 100 * n_held:
        guard += 1
        r = rng.random()
        if r < 0.25 and di < len(order):
            s = dataset_cmds[order[di]]
            di += 1
        elif r < 0.4:
            wake = [w for w in T.WAKE_WORDS if w]
            s = normalize_text(fixed[int(rng.integers(0, len(fixed)))].replace(
                "{wake}", wake[int(rng.integers(0, len(wake)))]))
        else:
            s = sample_template_sentences(1, names, rng)[0]
            if len(s.split()) < 4:  # slot-less fills come from the branch above
                continue
        if s and s not in held_set:
            held_set.add(s)
            held.append(s)
    held_set.discard(seed_sentence)
    valid_cmds = held[: cfg.valid_command_sentences]
    eval_cmds = held[cfg.valid_command_sentences:]

    # Training commands: dataset sentences not held out + template fills not held out.
    n_ds = int(round(cfg.train_command_sentences * cfg.dataset_fraction))
    ds_pool = [s for s in dataset_cmds if s not in held_set]
    ds_take = [ds_pool[i] for i in rng.permutation(len(ds_pool))[:n_ds]]
    train_cmds = list(ds_take)
    while len(train_cmds) < cfg.train_command_sentences:
        need = cfg.train_command_sentences - len(train_cmds)
        train_cmds += [s for s in sample_template_sentences(need, names, rng) if s not in held_set]
    train_cmds += [seed_sentence] * cfg.seed_in_training

    # General sentences: LJSpeech (not LJ002) + non-music requests.
    lj = [t for _, t in read_ljspeech_texts(data / "speech/ljspeech-part1/metadata.csv")
          if cfg.general_min_words <= len(t.split()) <= cfg.general_max_words]
    other = [s for s in _dedup(norm(slurp_other) + norm(hwu_other)) if len(s.split()) >= 2]
    other = [s for s in other if s not in held_set]
    lj = _dedup(lj)
    lj = [lj[i] for i in rng.permutation(len(lj))]
    other = [other[i] for i in rng.permutation(len(other))]
    n_gen = cfg.general_sentences + cfg.valid_general_sentences
    n_lj = int(round(n_gen * cfg.general_lj_fraction))
    general = lj[:n_lj] + other[: n_gen - min(n_lj, len(lj))]
    general = [general[i] for i in rng.permutation(len(general))]
    valid_general = general[: cfg.valid_general_sentences]
    vg = set(valid_general)
    train_general = [s for s in general[cfg.valid_general_sentences:] if s not in vg and s not in held_set]

    sets = TextSets(train_cmds, valid_cmds, eval_cmds, train_general, valid_general)
    sets.counts = {
        "dataset_command_sentences": len(dataset_cmds), "catalog_artists": len(names.artists),
        "catalog_tracks": len(names.tracks), "catalog_genres": len(names.genres),
        "ljspeech_sentences_available": len(lj), "other_requests_available": len(other),
        "train_commands": len(train_cmds), "train_commands_distinct": len(set(train_cmds)),
        "valid_commands": len(valid_cmds), "eval_commands": len(eval_cmds),
        "train_general": len(train_general), "valid_general": len(valid_general),
    }
    check_disjoint(sets)
    missing = seed_words_missing(train_cmds + train_general)
    if missing:  # make sure every word of the seed example occurs in other training sentences
        train_cmds += [normalize_text(f"{w} please") for w in missing]
    seed_words = seed_sentence.split()
    sets.counts["seed_word_train_sentences"] = {
        w: sum(1 for s in train_cmds + train_general if s != seed_sentence and w in s.split()) for w in seed_words}
    return sets


def check_disjoint(sets: TextSets) -> None:
    """Raise if a held-out sentence (valid/eval) occurs in the training sentences."""
    train = set(sets.train_commands) | set(sets.train_general)
    for name, items in (("valid_commands", sets.valid_commands), ("eval_commands", sets.eval_commands),
                        ("valid_general", sets.valid_general)):
        leaked = sorted(set(items) & train)
        if leaked:
            raise ValueError(f"{len(leaked)} {name} sentences also in training, e.g. {leaked[0]!r}")


def seed_words_missing(train_sentences: list[str], seed_text: str = T.SEED_EXAMPLE) -> list[str]:
    """Words of the seed example that no training sentence other than the seed itself contains."""
    seed = normalize_text(seed_text)
    vocab = {w for s in train_sentences if s != seed for w in s.split()}
    return [w for w in seed.split() if w not in vocab]
