"""Training the learned parser: annotated data + catalog templates -> a model folder.

    from assistant.nlu.train import TrainOptions, train_model, template_examples
    model = train_model(examples, songs, Path("assistant/nlu/model"))

Examples come from `datasets.load_corpus` (public data, when a data folder is
given) and `template_examples` (the command templates of `templates.py`
filled with the catalog's names, moods, genres and years), so a model can be
trained from the catalog alone. Name features need a gazetteer at training
time too: the catalog's names plus a seeded half of the names in the
training data, so the tagger learns that a known name is strong evidence
but that unknown names are names too.

The intent classifier's temperature is fitted on out-of-fold predictions
(`TrainOptions.calibration_folds`). Training takes about a minute on one core.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from assistant.asr.text import normalize_text
from assistant.nlu import templates as T
from assistant.nlu.datasets import Example, _example, names_of
from assistant.nlu.features import Featurizer
from assistant.nlu.model import (COMMON_WORDS_FILE, FORMAT_VERSION, INTENTS_FILE, META_FILE, SLOTS_FILE, CrfOptions,
                                 IntentClassifier, NluModel, SlotTagger)
from assistant.recommend.matcher import spoken_forms

_SLOT = __import__("re").compile(r"\{(\w+)\}")
TEMPLATE_ITEMS = ("song", "track", "tune", "album", "single", "record")  # singular: the Snips convention
OTHER_MEDIA = frozenset({"play_radio", "play_podcasts", "play_audiobook"})
_PLAYISH = frozenset({"play", "hear", "listen", "put"})
NAME_TAGS = frozenset({"artist", "track", "album"})  # the kinds the parser looks up in the catalog
COMMON_MIN_COUNT = 20  # a word seen at least this often in the training sentences...
COMMON_MAX_NAME_SHARE = 0.05  # ...and inside a name at most this often is a common word


@dataclass(frozen=True)
class TrainOptions:
    seed: int = 0
    fills_per_template: int = 5  # filled sentences per template with slots (two for a fixed phrase)
    fills_per_nlu_template: int = 15  # the same for the negation/question templates (few, and not in any data set)
    known_name_share: float = 0.5  # share of training-data names put in the training gazetteer
    tagger_none_examples: int = 2000  # out-of-domain sentences (all "O") the tagger also learns from
    other_media_as_none: bool = False  # play_radio/podcasts/audiobook train the classifier as "none" (measured: worse)
    classifier_c: float = 4.0
    none_weight: float = 1.0  # sample weight of out-of-domain sentences in the classifier (they outnumber music 4:1)
    calibration_folds: int = 3
    rule_slots: bool = False  # the rule grammar's slot spans as tagger features
    crf: CrfOptions = field(default_factory=CrfOptions)


@dataclass
class CatalogVocabulary:
    """Normalized names of a catalog, for templates and name features."""

    artists: list[str]
    tracks: list[str]
    albums: list[str]
    genres: list[str]

    @classmethod
    def from_songs(cls, songs) -> "CatalogVocabulary":
        artists, tracks, albums, genres = set(), set(), set(), set()
        for s in songs:
            artists.update(f for a in {s.artist, *s.artists} for f in spoken_forms(a))
            tracks.update(spoken_forms(s.title))
            if s.album:
                albums.update(spoken_forms(s.album))
            genres.update(normalize_text(g) for g in s.genres)
        drop = {""}
        return cls(sorted(artists - drop), sorted(tracks - drop), sorted(albums - drop), sorted(genres - drop))

    def names(self) -> dict[str, set[str]]:
        return {"artist": set(self.artists), "track": set(self.tracks), "album": set(self.albums)}


def template_examples(vocab: CatalogVocabulary, options: TrainOptions = TrainOptions()) -> list[Example]:
    """The command templates filled with catalog names and lexicon words, tagged."""
    rng = random.Random(options.seed)
    short = lambda names: [n for n in names if len(n.split()) <= 6] or ["adele"]  # noqa: E731
    values = {
        "artist": short(vocab.artists), "track": short(vocab.tracks),
        "album": short(vocab.albums) if vocab.albums else short(vocab.tracks),
        "genre": sorted(set(vocab.genres) | set(T.GENRES)), "mood": list(T.MOODS), "playlist": list(T.PLAYLISTS),
        "year": list(T.YEARS), "sort": list(T.SORTS), "service": [s for s in T.SERVICES if s != "my library"],
        "music_item": list(TEMPLATE_ITEMS), "wake": list(T.WAKE_WORDS),
    }
    out = []
    for table, fills in ((T.TEMPLATES, options.fills_per_template), (T.NLU_TEMPLATES, options.fills_per_nlu_template)):
        for intent, templates in table.items():
            for template in templates:
                has_slots = bool({m.group(1) for m in _SLOT.finditer(template)} - {"wake"})
                for _ in range(fills if has_slots else 2):
                    chunks = []
                    pos = 0
                    for m in _SLOT.finditer(template):
                        chunks.append((template[pos:m.start()], None))
                        slot = m.group(1)
                        chunks.append((rng.choice(values[slot]), None if slot == "wake" else slot))
                        pos = m.end()
                    chunks.append((template[pos:], None))
                    ex = _example(chunks, intent, "templates", intent)
                    if ex.tokens:
                        out.append(ex)
    return out


def _training_names(vocab: CatalogVocabulary, examples: Sequence[Example], options: TrainOptions) -> dict[str, set[str]]:
    rng = random.Random(options.seed + 1)
    names = vocab.names()
    for kind, values in names_of([e for e in examples if e.source != "templates"]).items():
        for v in sorted(values):
            if rng.random() < options.known_name_share:
                names[kind].add(v)
    return names


def common_words(examples: Sequence[Example], min_count: int = COMMON_MIN_COUNT,
                 max_name_share: float = COMMON_MAX_NAME_SHARE) -> list[str]:
    """Words frequent in the training sentences and almost never part of a name ("next", "save",
    "favorite"): a run of them that the tagger left alone is not a misheard name."""
    seen: dict[str, int] = {}
    named: dict[str, int] = {}
    for e in examples:
        for w, t in zip(e.tokens, e.tags):
            seen[w] = seen.get(w, 0) + 1
            if t != "O" and t[2:] in NAME_TAGS:
                named[w] = named.get(w, 0) + 1
    return sorted(w for w, n in seen.items() if n >= min_count and named.get(w, 0) <= max_name_share * n)


def _fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    best_t, best_nll = 1.0, float("inf")
    for t in np.arange(0.4, 3.01, 0.05):
        z = logits / t
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        nll = -float(logp[np.arange(len(labels)), labels].mean())
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return round(best_t, 2)


def _cross_fitted_tags(xs, ys, folds: int, options: TrainOptions, scratch: Path) -> list[list[str]]:
    """Tags of each training sentence from a tagger that did not see it (the classifier's
    tag features must look like they will at run time, not like gold tags)."""
    tags: list[list[str]] = [[] for _ in xs]
    order = list(range(len(xs)))
    random.Random(options.seed + 2).shuffle(order)
    for k in range(folds):
        held = set(order[k::folds])
        path = scratch / f"fold{k}.crfsuite"
        SlotTagger.train([x for i, x in enumerate(xs) if i not in held], [y for i, y in enumerate(ys) if i not in held],
                         path, replace_iterations(options.crf, max(40, options.crf.max_iterations // 2)))
        tagger = SlotTagger(path)
        for i in held:
            tags[i] = tagger.tag(xs[i])[0]
        path.unlink()
    return tags


def replace_iterations(crf: CrfOptions, n: int) -> CrfOptions:
    return CrfOptions(crf.c1, crf.c2, n)


def train_model(examples: Sequence[Example], songs, out_dir: Path, options: TrainOptions = TrainOptions(),
                log=print) -> NluModel:
    """Train tagger + classifier on `examples` (plus catalog templates) and write `out_dir`."""
    start = time.monotonic()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab = CatalogVocabulary.from_songs(songs)
    data = [*examples, *template_examples(vocab, options)]
    maker = Featurizer(_training_names(vocab, data, options), vocab.genres, options.rule_slots)
    analyses = {id(e): maker.analyze(e.tokens) for e in data}
    rng = random.Random(options.seed + 3)
    music = [e for e in data if e.intent != "none"]
    # "play bbc radio four" is not music, but its words would teach the tagger that "play X" has no name.
    none = [e for e in data if e.intent == "none" and e.label not in OTHER_MEDIA
            and not _PLAYISH & set(e.tokens)]
    tag_data = music + rng.sample(none, min(len(none), options.tagger_none_examples))
    xs = [maker.tokens(analyses[id(e)]) for e in tag_data]
    ys = [list(e.tags) for e in tag_data]
    log(f"slot tagger: {len(tag_data)} sentences ({len(music)} music)")
    # Out-of-fold tags for the classifier's tag features; the final tagger sees everything.
    fitted = _cross_fitted_tags(xs, ys, 2, options, out_dir)
    tag_of = {id(e): t for e, t in zip(tag_data, fitted)}
    SlotTagger.train(xs, ys, out_dir / SLOTS_FILE, options.crf)
    log(f"slot tagger trained ({time.monotonic() - start:.0f} s)")
    intent_data = [e for e in data if e.intent is not None
                   and (options.other_media_as_none or e.label not in OTHER_MEDIA)]
    final_tagger = SlotTagger(out_dir / SLOTS_FILE)
    feats = []
    for e in intent_data:
        tags = tag_of.get(id(e))
        if tags is None:  # an out-of-domain sentence the tagger did not train on
            tags = final_tagger.tag(maker.tokens(analyses[id(e)]))[0]
        feats.append(maker.intent(analyses[id(e)], tags))
    labels = [e.intent for e in intent_data]
    log(f"intent classifier: {len(intent_data)} sentences")
    temperature = calibrate(feats, labels, options)
    classifier = IntentClassifier.fit(feats, labels, c=options.classifier_c, weights={"none": options.none_weight})
    classifier.temperature = temperature
    classifier.save(out_dir / INTENTS_FILE)
    (out_dir / COMMON_WORDS_FILE).write_text("\n".join(common_words(data)) + "\n", encoding="utf-8")
    counts: dict[str, int] = {}
    for e in data:
        counts[e.source] = counts.get(e.source, 0) + 1
    meta = {"format": FORMAT_VERSION, "temperature": temperature, "rule_slots": options.rule_slots, "sentences": counts,
            "tagger_sentences": len(tag_data), "classifier_sentences": len(intent_data),
            "intents": classifier.intents, "options": asdict(options),
            "train_seconds": round(time.monotonic() - start, 1)}
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")
    log(f"model written to {out_dir} ({meta['train_seconds']} s, temperature {temperature})")
    return NluModel.load(out_dir)


def calibrate(feats: list[list[str]], labels: list[str], options: TrainOptions) -> float:
    """Temperature that makes out-of-fold probabilities honest."""
    folds = options.calibration_folds
    if folds < 2:
        return 1.0
    order = list(range(len(feats)))
    random.Random(options.seed + 4).shuffle(order)
    all_logits, all_labels = [], []
    for k in range(folds):
        held = set(order[k::folds])
        clf = IntentClassifier.fit([f for i, f in enumerate(feats) if i not in held],
                                   [y for i, y in enumerate(labels) if i not in held], c=options.classifier_c,
                                   weights={"none": options.none_weight})
        for i in held:
            if labels[i] in clf.intents:
                all_logits.append(clf.logits(feats[i]))
                all_labels.append(clf.intents.index(labels[i]))
    return _fit_temperature(np.array(all_logits), np.array(all_labels))
