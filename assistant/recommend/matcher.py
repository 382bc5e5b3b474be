"""Fuzzy + phonetic name matching that survives speech recognition errors.

`NameIndex` holds one kind of name (artists, titles, albums, genres). A query
span is compared with every name twice: as text (rapidfuzz's normalized Indel
similarity, the seed's `fuzz.ratio`) and as a phonetic key (Metaphone of each
word, jellyfish), so "adel" finds "Adele" and "bionce" finds "Beyonce".
A name said split or joined differently ("one republic", "blackeyed peas")
is the name itself (its space-less form is compared too). The score of a
name is the better of the two; the phonetic one blends key
similarity with spelling similarity and is weighted down a little, because
different names share keys ("pizza" and "Psy" are both "PS").

Up to `exhaustive_max_names` names every name is scored (about 1 ms for 5,000
names). Above that, candidates are first blocked by shared character trigrams
of the text and the phonetic key, and only the best `block_candidates` are
scored, which keeps a million-name index at a few milliseconds per query.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict, defaultdict
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from assistant.asr.text import normalize_text

# Title suffixes that are not part of the name people say ("Song - Remastered 2011",
# "Song (feat. X)", "Song [Live]").
SEARCH_CACHE_SIZE = 2048  # remembered (span, limit, cutoff) look-ups
STOP_GRAM_SHARE = 0.05  # trigrams in more than this share of names are not used for blocking...
STOP_GRAM_MIN_COUNT = 1000  # ...unless they occur in fewer names than this
MAX_QUERY_CHARS = 120  # no name is longer; a longer span is not a name
MIN_PHONETIC_RATIO = 0.6  # phonetic hits need the shorter text to be this fraction of the longer
MIN_JOINED_CHARS = 4  # names compared without their spaces ("one republic" = "OneRepublic") are at least this long
_TITLE_SUFFIX = re.compile(r"\s*(?:\(.*?\)|\[.*?\]|\s-\s.*)\s*$")


@dataclass(frozen=True)
class MatcherOptions:
    """How names are matched."""

    min_score: float = 0.6  # hits below this similarity (0..1) are dropped
    phonetic_weight: float = 0.95  # a perfect phonetic-key match counts this much of a text match
    phonetic_share: float = 0.7  # a phonetic score blends key similarity (this share) with spelling similarity
    exhaustive_max_names: int = 50_000  # above this, trigram blocking picks candidates first
    block_candidates: int = 300  # names scored per query when blocking


@dataclass(frozen=True)
class NameHit:
    index: int  # position in the index's `names`
    name: str  # display spelling
    score: float  # 0..1
    how: str  # "exact", "fuzzy" or "phonetic"


def phonetic_key(text: str) -> str:
    """Metaphone of each word of normalized text, space-joined ("adele" -> "ATL")."""
    import jellyfish

    return " ".join(jellyfish.metaphone(w) or w for w in text.split())


def spoken_forms(name: str) -> list[str]:
    """Normalized forms a person may say for a name: whole, and without a
    trailing "(...)", "[...]" or " - ..." part."""
    forms = [normalize_text(name)]
    stripped = _TITLE_SUFFIX.sub("", name)
    if stripped and stripped != name:
        forms.append(normalize_text(stripped))
    if forms[0].startswith("the ") and len(forms[0]) > 6:
        forms.append(forms[0][4:])  # "the weeknd" is also said "weeknd"
    return [f for f in dict.fromkeys(forms) if f]


def joined_form(text: str) -> str:
    """Normalized text without spaces: names split or joined differently compare equal
    ("one republic" and "OneRepublic", "blackeyed peas" and "Black Eyed Peas")."""
    return text.replace(" ", "")


def _joinable(text: str) -> bool:
    """Whether a span may be compared without its spaces: long enough, or spelled letter by letter ("b t s")."""
    words = text.split()
    spelled = len(words) >= 2 and all(len(w) == 1 for w in words)
    return spelled or len(joined_form(text)) >= MIN_JOINED_CHARS


def _comparable(a: str, b: str) -> bool:
    """Lengths close enough for a phonetic-key match to mean something."""
    short, long_ = sorted((len(a), len(b)))
    return short >= MIN_PHONETIC_RATIO * long_


def _trigrams(text: str) -> set[str]:
    padded = f" {text} "
    return {padded[i:i + 3] for i in range(len(padded) - 2)}


class NameIndex:
    """Names of one kind, searchable by recognized (possibly misheard) text."""

    def __init__(self, names: Sequence[str], options: MatcherOptions = MatcherOptions()):
        self.options = options
        self.names: list[str] = list(names)
        forms: list[str] = []
        owners: list[int] = []
        for i, name in enumerate(self.names):
            for form in spoken_forms(name):
                forms.append(form)
                owners.append(i)
        self._forms = forms
        self._owners = np.asarray(owners, dtype=np.int64)
        self._keys = [phonetic_key(f) for f in forms]
        self._exact: dict[str, int] = {}
        self._joined: dict[str, int] = {}
        for form, owner in zip(forms, owners):
            self._exact.setdefault(form, owner)
            self._joined.setdefault(joined_form(form), owner)
        self._cache: OrderedDict[tuple, tuple[NameHit, ...]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._postings: dict[str, np.ndarray] | None = None
        if len(forms) > options.exhaustive_max_names:
            self._postings = self._build_postings()

    def __len__(self) -> int:
        return len(self.names)

    def _build_postings(self) -> dict[str, np.ndarray]:
        lists: dict[str, list[int]] = defaultdict(list)
        for i, (form, key) in enumerate(zip(self._forms, self._keys)):
            for gram in _trigrams(form) | {"#" + g for g in _trigrams(key)}:
                lists[gram].append(i)
        # Trigrams in a large share of all names (" th", "the") tell names apart poorly and cost the
        # most per query; they are left out of blocking (scoring still sees the whole text).
        common = max(STOP_GRAM_MIN_COUNT, int(STOP_GRAM_SHARE * len(self._forms)))
        return {g: np.asarray(ids, dtype=np.int32) for g, ids in lists.items() if len(ids) <= common}

    def _candidates(self, text: str, key: str) -> np.ndarray:
        grams = _trigrams(text) | {"#" + g for g in _trigrams(key)}
        arrays = [self._postings[g] for g in grams if g in self._postings]
        if not arrays:
            return np.empty(0, dtype=np.int64)
        counts = np.bincount(np.concatenate(arrays), minlength=len(self._forms))
        hit = np.flatnonzero(counts)
        n = min(self.options.block_candidates, len(hit))
        if n == 0:
            return np.empty(0, dtype=np.int64)
        return hit[np.argpartition(-counts[hit], n - 1)[:n]]

    def exact(self, text: str) -> NameHit | None:
        """The name a normalized span is exactly (spaces aside: "one republic" is "OneRepublic"), or None.
        A dictionary look-up, for scanning every span of an utterance cheaply."""
        text = " ".join(text.split())
        owner = self._exact.get(text)
        if owner is None and _joinable(text):
            owner = self._joined.get(joined_form(text))
        return None if owner is None else NameHit(owner, self.names[owner], 1.0, "exact")

    def clear_cache(self) -> None:
        with self._cache_lock:
            self._cache.clear()

    def search(self, text: str, limit: int = 5, min_score: float | None = None) -> list[NameHit]:
        """Best names for a normalized span, best first, at most one hit per name.

        Results are remembered (a request looks the same span up several times)."""
        cache_key = (text, limit, min_score)
        with self._cache_lock:
            hit = self._cache.get(cache_key)
            if hit is not None:
                self._cache.move_to_end(cache_key)
                return list(hit)
        hits = self._search(text, limit, min_score)
        with self._cache_lock:
            self._cache[cache_key] = tuple(hits)
            while len(self._cache) > SEARCH_CACHE_SIZE:
                self._cache.popitem(last=False)
        return hits

    def _search(self, text: str, limit: int, min_score: float | None) -> list[NameHit]:
        from rapidfuzz import fuzz, process

        text = " ".join(text.split())
        if not text or not self._forms or len(text) > MAX_QUERY_CHARS:
            return []
        cutoff = self.options.min_score if min_score is None else min_score
        exact = self._exact.get(text)
        if exact is None and _joinable(text):
            exact = self._joined.get(joined_form(text))  # split or joined differently: the same name
        key = phonetic_key(text)
        best: dict[int, tuple[float, str]] = {}
        if exact is not None:
            best[exact] = (1.0, "exact")
        if self._postings is None:
            forms, keys, owners = self._forms, self._keys, self._owners
        else:
            cand = self._candidates(text, key)
            forms = [self._forms[i] for i in cand]
            keys = [self._keys[i] for i in cand]
            owners = self._owners[cand]
        pool = max(limit * 4, 20)
        text_hits = process.extract(text, forms, scorer=fuzz.ratio, limit=pool, score_cutoff=cutoff * 100)
        key_cutoff = (cutoff / self.options.phonetic_weight - (1 - self.options.phonetic_share)) / self.options.phonetic_share
        key_hits = process.extract(key, keys, scorer=fuzz.ratio, limit=pool, score_cutoff=min(100.0, max(0.0, key_cutoff * 100)))
        for _, score, pos in text_hits:
            owner = int(owners[pos])
            if score / 100 > best.get(owner, (0.0, ""))[0]:
                best[owner] = (score / 100, "fuzzy")
        share = self.options.phonetic_share
        for _, score, pos in key_hits:
            if not _comparable(text, forms[pos]):
                continue  # "xxxxxxxx" and "kese" share the key "KS"; their lengths tell them apart
            owner = int(owners[pos])
            # Sounding alike counts most, spelling still a little: "pizza" is not "psy".
            value = self.options.phonetic_weight * (share * score + (1 - share) * fuzz.ratio(text, forms[pos])) / 100
            if value > best.get(owner, (0.0, ""))[0]:
                best[owner] = (value, "phonetic")
        ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))[:limit]
        return [NameHit(i, self.names[i], round(s, 4), how) for i, (s, how) in ranked if s >= cutoff]
