"""Word and character error rates from Levenshtein distance (rapidfuzz)."""

from __future__ import annotations

from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein


def word_errors(ref: str, hyp: str) -> tuple[int, int]:
    """(edit distance in words, reference word count)."""
    r, h = ref.split(), hyp.split()
    return Levenshtein.distance(r, h), len(r)


def char_errors(ref: str, hyp: str) -> tuple[int, int]:
    """(edit distance in characters, reference character count)."""
    return Levenshtein.distance(ref, hyp), len(ref)


def wer(ref: str, hyp: str) -> float:
    e, n = word_errors(ref, hyp)
    return e / max(n, 1)


def cer(ref: str, hyp: str) -> float:
    e, n = char_errors(ref, hyp)
    return e / max(n, 1)


@dataclass
class ErrorRates:
    """Corpus-level WER/CER: total edits over total reference length."""

    word_edits: int = 0
    words: int = 0
    char_edits: int = 0
    chars: int = 0
    utterances: int = 0
    exact: int = 0

    def add(self, ref: str, hyp: str) -> None:
        we, wn = word_errors(ref, hyp)
        ce, cn = char_errors(ref, hyp)
        self.word_edits += we
        self.words += wn
        self.char_edits += ce
        self.chars += cn
        self.utterances += 1
        self.exact += int(ref.split() == hyp.split())

    @property
    def wer(self) -> float:
        return self.word_edits / max(self.words, 1)

    @property
    def cer(self) -> float:
        return self.char_edits / max(self.chars, 1)

    def to_dict(self) -> dict:
        return {"wer": round(self.wer, 4), "cer": round(self.cer, 4), "utterances": self.utterances,
                "sentence_accuracy": round(self.exact / max(self.utterances, 1), 4)}
