"""CTC decoding: greedy for partial transcripts, prefix beam search for finals.

The beam search is our own rather than pyctcdecode's, which we evaluated:
its hot words are split into single words and matched by one regular
expression over the whole hypothesis, so "someone like you" boosts every
"you" and the cost grows with the catalog; and its language model needs the
kenlm extension plus an ARPA file built by kenlm's `lmplz`, which cannot be
built here. This decoder scores whole words with `WordNgram` when a word ends,
penalizes partial words that start no known word, and boosts hypotheses that
follow a catalog name phrase word by word: the boost is provisional while a
phrase is incomplete and is kept only when the whole phrase was said.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from assistant.asr.lm import EOS, WordNgram
from assistant.asr.text import BLANK_ID, TextTransform

NEG_INF = -math.inf
SPACE_ID = 1


def greedy_ids(log_probs: np.ndarray, prev_id: int = BLANK_ID) -> tuple[list[int], int]:
    """Best path, repeats collapsed and blanks removed. `prev_id` carries the collapse across chunks."""
    ids = []
    for i in np.asarray(log_probs).argmax(axis=-1).tolist():
        if i != prev_id and i != BLANK_ID:
            ids.append(i)
        prev_id = i
    return ids, prev_id


def greedy_decode(log_probs: np.ndarray, text: TextTransform | None = None) -> str:
    """(T, classes) log-probs -> text."""
    ids, _ = greedy_ids(log_probs)
    return " ".join((text or TextTransform()).int_to_text(ids).split())


@dataclass(frozen=True)
class BeamOptions:
    beam_width: int = 12
    lm_weight: float = 0.5
    word_bonus: float = 2.0
    hotword_weight: float = 3.0
    unk_prefix_logp: float = -4.0  # for a partial word that starts no known word (times lm_weight)
    char_prune_logp: float = -10.0  # characters this far below a frame's best are not tried
    max_chars_per_frame: int = 8


class HotPhrases:
    """Catalog names as word sequences, for phrase-level boosting."""

    def __init__(self, phrases):
        self.prefixes: set[tuple[str, ...]] = set()
        self.complete: set[tuple[str, ...]] = set()
        for phrase in phrases:
            words = tuple(phrase.split())
            if not words:
                continue
            self.complete.add(words)
            for i in range(1, len(words) + 1):
                self.prefixes.add(words[:i])

    def advance(self, match: tuple[str, ...], word: str) -> tuple[str, ...]:
        """The longest phrase prefix the hypothesis is in after `word`."""
        extended = (*match, word)
        if extended in self.prefixes:
            return extended
        if (word,) in self.prefixes:
            return (word,)
        return ()


@dataclass
class _Beam:
    p_b: float
    p_nb: float
    words: tuple[str, ...]  # completed words
    partial: str  # current unfinished word
    lm: float  # sum of lm log-probs of completed words (+ unk prefix penalty applied separately)
    hot_match: tuple[str, ...]
    hot_committed: float
    hot_provisional: float

    @property
    def acoustic(self) -> float:
        return np.logaddexp(self.p_b, self.p_nb)


class BeamSearchDecoder:
    """Prefix beam search over (T, classes) CTC log-probs with an optional word n-gram and hot phrases."""

    def __init__(self, options: BeamOptions = BeamOptions(), lm: WordNgram | None = None,
                 hot_phrases: HotPhrases | None = None, text: TextTransform | None = None):
        self.opt = options
        self.lm = lm
        self.hot = hot_phrases
        self.text = text or TextTransform()
        self._chars = [self.text.index_map[i] for i in range(self.text.num_classes)]

    # --- scoring -------------------------------------------------------------------------
    def _word_logp(self, beam: _Beam, word: str) -> float:
        if self.lm is None:
            return 0.0
        return self.lm.logp(word, beam.words[-2:])

    def _partial_penalty(self, partial: str) -> float:
        if self.lm is None or not partial or partial in self.lm.prefixes:
            return 0.0
        return self.opt.unk_prefix_logp

    def _total(self, b: _Beam) -> float:
        o = self.opt
        return (b.acoustic + o.lm_weight * (b.lm + self._partial_penalty(b.partial))
                + o.word_bonus * len(b.words) + b.hot_committed + b.hot_provisional)

    def _complete_word(self, parent: _Beam, word: str) -> tuple:
        """(words, lm, hot_match, hot_committed, hot_provisional) after finishing `word`."""
        lm = parent.lm + self._word_logp(parent, word)
        words = (*parent.words, word)
        match, committed, provisional = (), parent.hot_committed, 0.0
        if self.hot is not None:
            match = self.hot.advance(parent.hot_match, word)
            if match and len(match) == len(parent.hot_match) + 1:
                provisional = parent.hot_provisional + self.opt.hotword_weight
            elif match:
                provisional = self.opt.hotword_weight
            if match in self.hot.complete:
                committed += provisional
                provisional = 0.0
        return words, lm, match, committed, provisional

    # --- search --------------------------------------------------------------------------
    def decode(self, log_probs: np.ndarray) -> str:
        return self.decode_nbest(log_probs, 1)[0]

    def decode_nbest(self, log_probs: np.ndarray, n: int) -> list[str]:
        """The `n` best distinct texts of the beam, best first (at least one, "" when nothing was heard)."""
        lp = np.asarray(log_probs, dtype=np.float64)
        o = self.opt
        beams: dict[tuple, _Beam] = {
            ((), ""): _Beam(0.0, NEG_INF, (), "", 0.0, (), 0.0, 0.0)}
        for t in range(lp.shape[0]):
            frame = lp[t]
            best = frame.max()
            cand = np.nonzero(frame >= best + o.char_prune_logp)[0]
            if len(cand) > o.max_chars_per_frame:
                cand = cand[np.argsort(frame[cand])[::-1][: o.max_chars_per_frame]]
            nxt: dict[tuple, _Beam] = {}

            def get(key, template: _Beam, **changes) -> _Beam:
                b = nxt.get(key)
                if b is None:
                    b = _Beam(NEG_INF, NEG_INF, template.words, template.partial, template.lm,
                              template.hot_match, template.hot_committed, template.hot_provisional)
                    for k, v in changes.items():
                        setattr(b, k, v)
                    nxt[key] = b
                return b

            for key, beam in beams.items():
                total = beam.acoustic
                last = beam.partial[-1] if beam.partial else (" " if beam.words else "")
                for c in cand.tolist():
                    p = frame[c]
                    if c == BLANK_ID:
                        b = get(key, beam)
                        b.p_b = np.logaddexp(b.p_b, total + p)
                        continue
                    ch = " " if c == SPACE_ID else self._chars[c]
                    if ch == " ":
                        if not beam.partial:  # leading, repeated or double space: the prefix stays
                            b = get(key, beam)
                            b.p_nb = np.logaddexp(b.p_nb, total + p)
                            continue
                        words, lm, match, committed, provisional = self._complete_word(beam, beam.partial)
                        nkey = (words, "")
                        b = get(nkey, beam, words=words, partial="", lm=lm, hot_match=match,
                                hot_committed=committed, hot_provisional=provisional)
                        b.p_nb = np.logaddexp(b.p_nb, total + p)
                        continue
                    if ch == last:
                        b = get(key, beam)  # repeated character collapses
                        b.p_nb = np.logaddexp(b.p_nb, beam.p_nb + p)
                        nkey = (beam.words, beam.partial + ch)
                        b = get(nkey, beam, partial=beam.partial + ch)
                        b.p_nb = np.logaddexp(b.p_nb, beam.p_b + p)
                    else:
                        nkey = (beam.words, beam.partial + ch)
                        b = get(nkey, beam, partial=beam.partial + ch)
                        b.p_nb = np.logaddexp(b.p_nb, total + p)
            ranked = sorted(nxt.items(), key=lambda kv: self._total(kv[1]), reverse=True)
            beams = dict(ranked[: o.beam_width])
        return self._finalize(beams, n)

    def _finalize(self, beams: dict[tuple, _Beam], n: int = 1) -> list[str]:
        best: dict[str, float] = {}
        for beam in beams.values():
            words, lm, committed = beam.words, beam.lm, beam.hot_committed
            if beam.partial:
                words, lm, _, committed, _ = self._complete_word(beam, beam.partial)
            if self.lm is not None:
                lm += self.lm.logp(EOS, words[-2:])
            score = beam.acoustic + self.opt.lm_weight * lm + self.opt.word_bonus * len(words) + committed
            text = " ".join(words)
            if score > best.get(text, NEG_INF):
                best[text] = score
        ranked = sorted(best, key=lambda t: -best[t])[:max(1, n)]
        return ranked or [""]
