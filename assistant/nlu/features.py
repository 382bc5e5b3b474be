"""Features of the learned parser: phrase look-ups, CRF token features, intent features.

Text is normalized (`normalize_text`) and split on spaces. Two phrase indexes
mark spans of the token list:

- the lexicon (`lexicon_index`): mood, genre, service, sort and music-item
  phrases and spoken years, plus the catalog's genres;
- the names (`names_index`): artist, track and album names of the catalog
  (exact normalized forms), so the tagger knows a span is a name it has never
  seen in training.

Both answer in O(tokens x longest phrase) dictionary look-ups; a parse never
runs fuzzy matching for features (fuzzy matching resolves the spans the tagger
found, in `parser.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from assistant.nlu import lexicon as L
from assistant.nlu.intent import IntentResult
from assistant.nlu.years import find_years

MAX_PHRASE_WORDS = 6
CUE_WORDS = frozenset({"by", "from", "of", "on", "off", "in", "called", "named", "titled", "to", "and", "with",
                       "the", "my", "some", "a", "an", "but", "not", "no", "except", "without", "than"})
NEGATION_WORDS = frozenset({"not", "no", "don't", "dont", "never", "without", "except", "but", "nothing",
                            "instead", "other", "hate", "skip"})


class PhraseIndex:
    """Normalized phrases -> labels; `mark(tokens)` gives per-token BIO marks of every match."""

    def __init__(self, phrases: Mapping[str, Iterable[str]] | None = None, max_words: int = MAX_PHRASE_WORDS):
        self.max_words = max_words
        self._table: dict[tuple[str, ...], frozenset[str]] = {}
        for phrase, labels in (phrases or {}).items():
            self.add(phrase, labels)

    def add(self, phrase: str, labels: Iterable[str]) -> None:
        key = tuple(phrase.split())
        if not key or len(key) > self.max_words:
            return
        self._table[key] = self._table.get(key, frozenset()) | frozenset(labels)

    def __len__(self) -> int:
        return len(self._table)

    def matches(self, tokens) -> list[tuple[str, int, int]]:
        """(label, start, end) for every phrase found in the token list."""
        out = []
        n = len(tokens)
        table = self._table
        for i in range(n):
            for j in range(i + 1, min(n, i + self.max_words) + 1):
                labels = table.get(tuple(tokens[i:j]))
                if labels:
                    out.extend((label, i, j) for label in labels)
        return out

    def mark(self, tokens, prefix: str) -> list[list[str]]:
        """Per token, feature strings "prefix:B-label" / "prefix:I-label" (and ":long" for 2+ words)."""
        marks: list[list[str]] = [[] for _ in tokens]
        for label, i, j in self.matches(tokens):
            size = "1" if j - i == 1 else "n"
            marks[i].append(f"{prefix}:B-{label}:{size}")
            for k in range(i + 1, j):
                marks[k].append(f"{prefix}:I-{label}")
        return marks


def lexicon_index(extra_genres: Iterable[str] = ()) -> PhraseIndex:
    """Mood, genre, service, sort, music-item and filler phrases (years are found separately)."""
    table: dict[str, set[str]] = {}

    def put(words, label):
        for w in words:
            if w:
                table.setdefault(w, set()).add(label)

    put(L.MOOD_WORDS, "mood")
    put(L.GENRES, "genre")
    put(extra_genres, "genre")
    put(L.SERVICES, "service")
    put(L.SORTS_POPULAR + L.SORTS_RECENT + L.SORTS_OLD, "sort")
    put(L.MUSIC_ITEMS, "music_item")
    put(L.NON_MUSIC_OBJECTS, "nonmusic")
    return PhraseIndex(table)


def names_index(names: Mapping[str, Iterable[str]]) -> PhraseIndex:
    """kind -> normalized names (artist, track, album) as one phrase index."""
    index = PhraseIndex()
    for kind, values in names.items():
        for value in values:
            index.add(value, (kind,))
    return index


def year_marks(tokens) -> list[list[str]]:
    marks: list[list[str]] = [[] for _ in tokens]
    text = " ".join(tokens)
    if not any(w in _YEAR_HINTS for w in tokens):
        return marks
    starts = {}
    pos = 0
    for i, w in enumerate(tokens):
        starts[pos] = i
        pos += len(w) + 1
    for m in find_years(text):
        i = starts.get(m.start())
        if i is None:
            continue
        j = i + len(m.group(0).split())
        marks[i].append("year:B")
        for k in range(i + 1, j):
            marks[k].append("year:I")
    return marks


_YEAR_HINTS = frozenset({"nineteen", "eighteen", "twenty", "thousand", *L.DECADES, *(d.split()[-1] for d in L.DECADES)})


def _shape(w: str) -> str:
    if "'" in w:
        return "apos"
    if len(w) <= 2:
        return "short"
    return "long" if len(w) >= 8 else "mid"


def token_features(tokens, lex: list[list[str]], gaz: list[list[str]], years: list[list[str]],
                   rule: list[list[str]] | None = None) -> list[list[str]]:
    """CRF features per token: the word and its neighbours, affixes, lexicon, name, year and rule-slot marks."""
    n = len(tokens)
    out = []
    for i, w in enumerate(tokens):
        f = ["bias", f"w={w}", f"p3={w[:3]}", f"s3={w[-3:]}", f"s2={w[-2:]}", f"shape={_shape(w)}"]
        for d in (-2, -1, 1, 2):
            j = i + d
            if 0 <= j < n:
                f.append(f"w{d:+d}={tokens[j]}")
            else:
                f.append(f"w{d:+d}=<{'s' if j < 0 else '/s'}>")
        if i > 0:
            f.append(f"bi-={tokens[i - 1]}|{w}")
        if i + 1 < n:
            f.append(f"bi+={w}|{tokens[i + 1]}")
        if w in CUE_WORDS:
            f.append("cue")
        if i > 0 and tokens[i - 1] in NEGATION_WORDS:
            f.append("after-neg")
        f.extend(lex[i])
        f.extend(gaz[i])
        f.extend(years[i])
        if rule is not None:
            f.extend(rule[i])
        for d in (-1, 1):  # neighbours' marks, coarse
            j = i + d
            if 0 <= j < n:
                f.extend(f"{d:+d}{m.split(':')[0]}:{m.split(':')[1][:1]}" for m in lex[j] + gaz[j])
        out.append(f)
    return out


def intent_features(tokens, rule_intent: str, gaz_kinds: Iterable[str], lex_kinds: Iterable[str]) -> list[str]:
    """Sparse features of a whole utterance for the intent classifier."""
    words = ["<s>", *tokens, "</s>"]
    f = [f"u={w}" for w in tokens]
    f += [f"b={a}|{b}" for a, b in zip(words, words[1:])]
    for w in tokens:
        padded = f"#{w}#"
        f += [f"c={padded[i:i + 3]}" for i in range(len(padded) - 2)]
    f.append(f"rule={rule_intent}")
    f += [f"gaz={k}" for k in gaz_kinds]
    f += [f"lex={k}" for k in lex_kinds]
    f.append(f"len={min(len(tokens), 12) // 3}")
    return f


def rule_marks(tokens, result: IntentResult) -> list[list[str]]:
    """Per token, "rule:B-kind" / "rule:I-kind" for the slots the rule grammar cut out."""
    marks: list[list[str]] = [[] for _ in tokens]
    for kind, value in result.heard.items():
        words = value.split()
        at = next((i for i in range(len(tokens) - len(words) + 1) if list(tokens[i:i + len(words)]) == words), None)
        if words and at is not None:
            marks[at].append(f"rule:B-{kind}")
            for k in range(at + 1, at + len(words)):
                marks[k].append(f"rule:I-{kind}")
    return marks


@dataclass
class Analysis:
    """What the feature functions need of one utterance, computed once."""

    tokens: list[str]
    lex: list[list[str]]
    gaz: list[list[str]]
    years: list[list[str]]
    rule: IntentResult  # the rule grammar's parse without catalog look-ups


class Featurizer:
    """Token and intent features for one set of names; shared by training and parsing, so both
    see the same features. `rule_slots`: the rule grammar's slot spans are tagger features too."""

    def __init__(self, names: Mapping[str, Iterable[str]], genres: Iterable[str] = (), rule_slots: bool = False):
        from assistant.nlu.rules import RuleParser  # rules -> gazetteer -> recommend: loaded when used

        self.lexicon = lexicon_index(genres)
        self.names = names_index(names)
        self.rules = RuleParser(None)
        self.rule_slots = rule_slots

    def analyze(self, tokens, rule: IntentResult | None = None) -> Analysis:
        tokens = list(tokens)
        return Analysis(tokens, self.lexicon.mark(tokens, "lex"), self.names.mark(tokens, "gaz"), year_marks(tokens),
                        rule if rule is not None else self.rules.parse(" ".join(tokens)))

    def tokens(self, a: Analysis) -> list[list[str]]:
        return token_features(a.tokens, a.lex, a.gaz, a.years, rule_marks(a.tokens, a.rule) if self.rule_slots else None)

    def intent(self, a: Analysis, tags) -> list[str]:
        gaz_kinds = {m.split(":")[1][2:] + (":n" if m.endswith(":n") else "") for marks in a.gaz for m in marks
                     if m.startswith("gaz:B-")}
        lex_kinds = {m.split(":")[1][2:] for marks in a.lex for m in marks if m.startswith("lex:B-")}
        if any(a.years):
            lex_kinds.add("year")
        lex_kinds.update(f"tag={t[2:]}" for t in tags if t.startswith("B-"))
        return intent_features(a.tokens, a.rule.intent, gaz_kinds, lex_kinds)
