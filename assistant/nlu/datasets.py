"""Annotated utterances for training and evaluating the learned parser.

Every source becomes `Example`s: normalized tokens, one BIO tag per token over
our slot names (`intent.SLOT_NAMES`), our intent name (or None where the
source's label has no counterpart) and the source's own label.

- Snips 2017 (`snips-2017/train_<Intent>_full.json`): PlayMusic -> play, with
  its nine slots; AddToPlaylist for slots only (entity_name -> track); the
  five other intents -> none.
- HWU64 (`hwu64/<split>/<scenario>_<intent>.csv`) and SLURP
  (`slurp/devel.jsonl`): music, volume and stop intents mapped to ours
  (`INTENT_MAP`), play_radio / play_podcasts / play_audiobook -> none (the
  assistant plays music only), music_settings and audio_volume_mute left
  out (no counterpart), every other intent -> none. Slots: artist_name ->
  artist, song_name -> track, music_genre -> genre (year when it is a spoken
  year, mood when it is only a mood word), playlist_name -> playlist,
  music_album -> album, app_name -> service, date -> year when it is one.
- All sources: music-item words ("song", "album") and plain mood words that no
  annotation covers are tagged music_item / mood, the Snips convention, so the
  sources agree with each other.

Nothing here reads files at import time; loaders take paths.
"""

from __future__ import annotations

import csv
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from assistant.asr.text import normalize_text
from assistant.nlu import lexicon as L
from assistant.nlu.years import year_range

INTENT_MAP: dict[str, str] = {
    "play_music": "play", "music_query": "what_is_playing", "music_likeness": "like",
    "music_dislikeness": "dislike", "audio_volume_up": "volume_up", "audio_volume_down": "volume_down",
    "general_commandstop": "stop",
    "play_radio": "none", "play_podcasts": "none", "play_audiobook": "none",
}
# Labels with no counterpart among our intents: never trained on, never scored.
UNMAPPED: frozenset[str] = frozenset({"music_settings", "audio_volume_mute"})
# Labels the benchmark leaves out of scoring as ambiguous (the assistant answers "none" by design).
AMBIGUOUS: frozenset[str] = UNMAPPED | {"play_radio", "play_podcasts", "play_audiobook"}
HWU_SLURP_SLOTS: dict[str, str] = {
    "artist_name": "artist", "song_name": "track", "music_genre": "genre", "playlist_name": "playlist",
    "music_album": "album", "app_name": "service",
}
SNIPS_SLOTS: dict[str, str] = {s: s for s in (
    "artist", "album", "track", "playlist", "genre", "year", "sort", "service", "music_item")}
SNIPS_SLOTS["entity_name"] = "track"
SNIPS_MUSIC = ("PlayMusic", "AddToPlaylist")
SNIPS_OTHER = ("BookRestaurant", "GetWeather", "RateBook", "SearchCreativeWork", "SearchScreeningEvent")
# Plain mood words tagged `mood` where no annotation covers them (ambiguous ones such as "down",
# "blue", "run" or "party" are left alone).
WEAK_MOODS: frozenset[str] = frozenset({
    "sad", "happy", "melancholy", "melancholic", "depressing", "gloomy", "heartbroken", "cheerful", "joyful",
    "uplifting", "energetic", "upbeat", "relaxing", "calm", "calming", "chill", "mellow", "peaceful", "soothing",
    "romantic", "angry", "aggressive", "sleepy", "slow", "lonely", "somber", "tranquil", "motivational",
    "motivating", "danceable", "groovy", "funky", "emotional",
})
# Singular only: Snips tags "song" but leaves "songs" and "tunes" untagged.
WEAK_ITEMS: frozenset[str] = frozenset({
    "song", "track", "tune", "album", "single", "soundtrack", "ballad", "record",
})
_GENRES = frozenset(L.GENRES)
_SPAN = re.compile(r"\[\s*(\w+)\s*:\s*([^\]]*?)\s*\]")


@dataclass(frozen=True)
class Example:
    tokens: tuple[str, ...]
    tags: tuple[str, ...]  # BIO over SLOT_NAMES: "O", "B-artist", "I-artist", ...
    intent: str | None  # ours; None: use for slots only
    source: str  # "snips", "hwu64", "slurp", "templates"
    label: str = ""  # the source's own intent label
    gold: frozenset = frozenset()  # {(slot, value)} as the source annotated them, before our corrections

    @property
    def text(self) -> str:
        return " ".join(self.tokens)


def spans(tokens, tags) -> list[tuple[str, int, int]]:
    """(slot, start, end) of the BIO tags; a stray I- starts a span."""
    out: list[tuple[str, int, int]] = []
    kind, start = None, 0
    for i, tag in enumerate(list(tags) + ["O"]):
        if kind is not None and (tag == "O" or tag.startswith("B-") or tag[2:] != kind):
            out.append((kind, start, i))
            kind = None
        if tag != "O" and kind is None:
            kind, start = tag[2:], i
    return out


def slot_set(tokens, tags) -> set[tuple[str, str]]:
    """{(slot, normalized value)} of a tagged utterance."""
    return {(k, " ".join(tokens[a:b])) for k, a, b in spans(tokens, tags)}


def _map_value(kind: str | None, value: str) -> str | None:
    """A mapped slot, corrected to our conventions: spoken years are `year`, plain moods `mood`."""
    if kind in ("genre", "year", None) and value and year_range(value):
        return "year"
    if kind == "genre" and value in L.MOOD_WORDS and value not in _GENRES:
        return "mood"
    return kind


def _example(chunks: list[tuple[str, str | None]], intent: str | None, source: str, label: str,
             weak: bool = True, gold: set | None = None) -> Example:
    """(text, our slot or None) chunks -> tokens and BIO tags; with `weak`, our conventions
    (spoken years, plain moods) and weak mood/item labels are applied."""
    tokens: list[str] = []
    tags: list[str] = []
    found = set()
    for text, kind in chunks:
        words = normalize_text(text).split()
        if kind and words:
            found.add((kind, " ".join(words)))
        kind = _map_value(kind, " ".join(words)) if kind and weak else kind
        for j, w in enumerate(words):
            tokens.append(w)
            tags.append("O" if kind is None else f"{'B' if j == 0 else 'I'}-{kind}")
    for i, w in enumerate(tokens if weak else ()):
        if tags[i] == "O":
            if w in WEAK_MOODS:
                tags[i] = "B-mood"
            elif w in WEAK_ITEMS:
                tags[i] = "B-music_item"
    if intent == "none":  # outside music, no slots
        tags = ["O"] * len(tokens)
    return Example(tuple(tokens), tuple(tags), intent, source, label, frozenset(found if gold is None else gold))


def parse_bracketed(annotation: str, slot_map: dict[str, str]) -> list[tuple[str, str | None]]:
    """HWU64/SLURP "play [artist_name : adele] now" -> [("play ", None), ("adele", "artist"), (" now", None)]."""
    chunks: list[tuple[str, str | None]] = []
    pos = 0
    for m in _SPAN.finditer(annotation):
        chunks.append((annotation[pos:m.start()], None))
        kind = slot_map.get(m.group(1))
        if m.group(1) == "media_type":
            value = normalize_text(m.group(2))
            kind = "music_item" if value in WEAK_ITEMS else ("service" if value in L.SERVICES else None)
        elif m.group(1) == "date":
            kind = "year" if year_range(normalize_text(m.group(2))) else None
        chunks.append((m.group(2), kind))
        pos = m.end()
    chunks.append((annotation[pos:], None))
    return chunks


def _bracket_gold(annotation: str) -> set[tuple[str, str]]:
    """The benchmark's gold slots of an HWU64/SLURP annotation: the six mapped slot types, as annotated."""
    return {(HWU_SLURP_SLOTS[t], normalize_text(v)) for t, v in _SPAN.findall(annotation) if t in HWU_SLURP_SLOTS}


def _our_intent(label: str) -> str | None:
    if label in UNMAPPED:
        return None
    return INTENT_MAP.get(label, "none")


def load_hwu(folder: str | Path) -> list[Example]:
    """One HWU64 split folder (per-intent CSVs, `;`-separated, `answer_annotation`)."""
    out = []
    for path in sorted(Path(folder).glob("*.csv")):
        with path.open(encoding="utf-8", errors="replace", newline="") as fh:
            for r in csv.DictReader(fh, delimiter=";"):
                label = f"{r['scenario']}_{r['intent']}"
                intent = _our_intent(label)
                slot_map = HWU_SLURP_SLOTS if intent not in (None, "none") else {}
                out.append(_example(parse_bracketed(r["answer_annotation"], slot_map), intent, "hwu64", label,
                                    gold=_bracket_gold(r["answer_annotation"])))
    return out


def load_slurp(path: str | Path) -> list[Example]:
    """SLURP JSONL (`sentence_annotation`, `intent`); a few malformed labels without "_" are skipped."""
    out = []
    with Path(path).open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip():
                continue
            d = json.loads(line)
            label = d.get("intent", "")
            if "_" not in label:
                continue
            intent = _our_intent(label)
            slot_map = HWU_SLURP_SLOTS if intent not in (None, "none") else {}
            out.append(_example(parse_bracketed(d["sentence_annotation"], slot_map), intent, "slurp", label,
                                gold=_bracket_gold(d["sentence_annotation"])))
    return out


def _fix_mojibake(text: str) -> str:
    """The Snips files are Latin-1 with some UTF-8 inside ("mÃºsica"); undo that where it applies."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def load_snips(path: str | Path, label: str) -> list[Example]:
    """One Snips 2017 training file (`train_<Intent>_full.json`)."""
    data = json.loads(Path(path).read_text(encoding="latin-1"))[label]
    intent = {"PlayMusic": "play", "AddToPlaylist": None}.get(label, "none")
    out = []
    for ex in data:
        chunks = [(_fix_mojibake(c["text"]), SNIPS_SLOTS.get(c.get("entity", ""))) for c in ex["data"]]
        out.append(_example(chunks, intent, "snips", label, weak=False))  # its tags are the benchmark's gold
    return out


@dataclass(frozen=True)
class Corpus:
    """The public data the shipped model is trained on, by source."""

    snips_play: list[Example]
    snips_add: list[Example]
    snips_other: list[Example]  # a seeded sample; the rest (`snips_other_heldout`) is never trained on
    snips_other_heldout: list[Example]
    hwu_train: list[Example]
    slurp_devel: list[Example]

    def training(self) -> list[Example]:
        return [*self.snips_play, *self.snips_add, *self.snips_other, *self.hwu_train, *self.slurp_devel]


SNIPS_OTHER_PER_INTENT = 600  # non-music Snips utterances trained on per intent (the rest is held out)


def load_corpus(nlu_dir: str | Path, seed: int = 0) -> Corpus:
    """Snips 2017 training files, HWU64 train and SLURP devel from a folder laid out like ../shared/data/nlu."""
    root = Path(nlu_dir)
    needed = [root / "snips-2017", root / "hwu64" / "train", root / "slurp" / "devel.jsonl"]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        from assistant.errors import AssistantError

        raise AssistantError(f"NLU data folder {root}: missing {', '.join(missing)}; expected the layout of "
                             "../shared/data/nlu (snips-2017/, hwu64/train/, slurp/devel.jsonl)")
    snips = root / "snips-2017"
    rng = random.Random(seed)
    other, heldout = [], []
    for label in SNIPS_OTHER:
        rows = load_snips(snips / f"train_{label}_full.json", label)
        rng.shuffle(rows)
        other += rows[:SNIPS_OTHER_PER_INTENT]
        heldout += rows[SNIPS_OTHER_PER_INTENT:]
    return Corpus(
        snips_play=load_snips(snips / "train_PlayMusic_full.json", "PlayMusic"),
        snips_add=load_snips(snips / "train_AddToPlaylist_full.json", "AddToPlaylist"),
        snips_other=other, snips_other_heldout=heldout,
        hwu_train=load_hwu(root / "hwu64" / "train"),
        slurp_devel=load_slurp(root / "slurp" / "devel.jsonl"),
    )


def names_of(examples, kinds=("artist", "track", "album")) -> dict[str, set[str]]:
    """Slot values of some kinds found in annotated examples (a gazetteer of training names)."""
    out: dict[str, set[str]] = {k: set() for k in kinds}
    for ex in examples:
        for kind, value in slot_set(ex.tokens, ex.tags):
            if kind in out:
                out[kind].add(value)
    return out
