"""A small word n-gram for decoding: command sentences plus catalog names.

Interpolated absolute discounting (D = 0.75) over trigrams, bigrams and
unigrams, with sentence boundaries. Words never seen get `unk_logp`. Built in
memory from normalized sentences in well under a second for tens of thousands
of sentences, so the daemon builds it at start from the checkpoint's command
sentences and the current catalog's names.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

BOS = "<s>"
EOS = "</s>"
DISCOUNT = 0.75
# A word the n-gram never saw costs UNK_LOGP plus UNK_PER_CHAR_LOGP per letter, so
# joining two unknown words into one is never cheaper than keeping them apart.
UNK_LOGP = -5.0
UNK_PER_CHAR_LOGP = -1.0


class WordNgram:
    """Trigram LM; `logp(word, context)` with context = the previous two words."""

    def __init__(self, sentences: Iterable[str], order: int = 3, unk_logp: float = UNK_LOGP):
        if order not in (1, 2, 3):
            raise ValueError(f"order must be 1, 2 or 3, got {order}")
        self.order = order
        self.unk_logp = unk_logp
        uni: Counter[str] = Counter()
        bi: Counter[tuple[str, str]] = Counter()
        tri: Counter[tuple[str, str, str]] = Counter()
        for sentence in sentences:
            words = sentence.split()
            if not words:
                continue
            padded = [BOS, BOS, *words, EOS]
            uni.update(padded[2:])
            bi.update(zip(padded[1:], padded[2:]))
            tri.update(zip(padded, padded[1:], padded[2:]))
        self._uni_total = sum(uni.values())
        self._uni = uni
        self._bi = bi
        self._tri = tri
        self._bi_ctx: Counter[str] = Counter()
        self._bi_types: Counter[str] = Counter()
        for (v, _), c in bi.items():
            self._bi_ctx[v] += c
            self._bi_types[v] += 1
        self._tri_ctx: Counter[tuple[str, str]] = Counter()
        self._tri_types: Counter[tuple[str, str]] = Counter()
        for (u, v, _), c in tri.items():
            self._tri_ctx[(u, v)] += c
            self._tri_types[(u, v)] += 1
        self.vocabulary = frozenset(w for w in uni if w != EOS)
        prefixes: set[str] = set()
        for w in self.vocabulary:
            for i in range(1, len(w) + 1):
                prefixes.add(w[:i])
        self.prefixes = frozenset(prefixes)
        self._cache: dict[tuple[str, str, str], float] = {}

    def _p_uni(self, w: str) -> float:
        return self._uni.get(w, 0) / self._uni_total if self._uni_total else 0.0

    def _p_bi(self, w: str, v: str) -> float:
        n = self._bi_ctx.get(v, 0)
        if n == 0:
            return self._p_uni(w)
        c = self._bi.get((v, w), 0)
        return max(c - DISCOUNT, 0.0) / n + DISCOUNT * self._bi_types[v] / n * self._p_uni(w)

    def _p_tri(self, w: str, u: str, v: str) -> float:
        n = self._tri_ctx.get((u, v), 0)
        if n == 0:
            return self._p_bi(w, v)
        c = self._tri.get((u, v, w), 0)
        return max(c - DISCOUNT, 0.0) / n + DISCOUNT * self._tri_types[(u, v)] / n * self._p_bi(w, v)

    def logp(self, word: str, context: tuple[str, ...]) -> float:
        """Natural-log probability of `word` after `context` (older words first; BOS-padded)."""
        ctx = (BOS, BOS, *context)[-2:]
        key = (ctx[0], ctx[1], word)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        if word != EOS and word not in self.vocabulary:
            value = self.unk_logp + UNK_PER_CHAR_LOGP * len(word)
        else:
            if self.order == 3:
                p = self._p_tri(word, ctx[0], ctx[1])
            elif self.order == 2:
                p = self._p_bi(word, ctx[1])
            else:
                p = self._p_uni(word)
            value = math.log(p) if p > 0 else self.unk_logp
        self._cache[key] = value
        return value

    def sentence_logp(self, sentence: str) -> float:
        words = sentence.split()
        total, ctx = 0.0, ()
        for w in [*words, EOS]:
            total += self.logp(w, ctx)
            ctx = (*ctx, w)[-2:]
        return total
