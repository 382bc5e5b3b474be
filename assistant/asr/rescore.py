"""Catalog names chosen by what the audio supports: rescoring of the final at the pause.

The final transcript names songs and artists the recognizer may mishear ("one republic", "blackeyed
peas", a four-syllable artist written as three unrelated words). At the pause, after the choice
between the two passes:

1. candidates: spans of the chosen text (1 to `max_span_words` words, not only command words) are
   looked up in the catalog's `NameIndex` (fuzzy + phonetic); names heard in spans of the other
   pass's text are placed at the span of the chosen text they are most like. Each (span, name) with
   a match of at least `min_match` is one candidate sentence: the chosen text with that span
   replaced by the name;
2. each candidate is scored by the audio twice, against the same sentence with the span as heard:
   the second pass's decoder, teacher-forced (total log probability of the sentence's tokens, in
   the casing Whisper writes: its own raw text with the name in catalog spelling), and the first
   pass's CTC posteriors (forced-alignment log-likelihood, over all frames);
3. gain = whisper_weight * d_whisper + ctc_weight * d_ctc; a candidate whose gain exceeds `margin`
   replaces its span (the best first, then others that do not overlap it). A name that the audio
   does not clearly support is never swapped in: what was heard is kept.

All of it is cheap next to the second pass itself: one batched decoder call over at most
`max_candidates` x 2 short sentences, and one CTC loss per sentence.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from assistant.asr.text import normalize_text
from assistant.config import RescoreConfig

CTC_FRAME_S = 0.02  # the first pass's output frame (the CTC log-likelihood is reported per frame)
MAX_HYPOTHESIS_WORDS = 60  # a longer text is not rescored (no command is that long; bounds the work)
# The decoder's gain of a name over what was written was at most 76 nats on the validation clips (99th percentile
# 27): a candidate the first pass rates so low that even this much could not lift it over the margin is not
# given to the decoder.
MAX_WHISPER_GAIN = 60.0
_EDGE_PUNCT = re.compile(r"^([^\w]*)(.*?)([^\w]*)$", re.S)


# `[rescore]` in config.toml, validated there (assistant.config.RescoreConfig): the options of this module.
RescoreOptions = RescoreConfig


@dataclass(frozen=True)
class NameChoice:
    """A catalog name put into the final in place of what was heard."""

    name: str        # catalog (display) spelling
    heard: str       # the words it replaced
    match: float     # how well the heard words match the name as text (0..1)
    gain: float      # combined acoustic gain of the swap (nats; above the margin)
    whisper: float   # the decoder's part
    ctc: float       # the first pass's part (0 when it did not vote)

    def to_dict(self) -> dict:
        return {"name": self.name, "heard": self.heard, "match": round(self.match, 3), "score": round(self.gain, 2)}


@dataclass(frozen=True)
class Candidate:
    start: int       # span [start, end) in the chosen text's normalized words
    end: int
    name: str        # display spelling
    spoken: str      # the name normalized (what replaces the span)
    match: float


@dataclass(frozen=True)
class ScoredCandidate:
    candidate: Candidate
    whisper: float
    ctc: float
    gain: float


# --------------------------------------------------------------------------- the decoder's score

class WhisperTextScorer:
    """Teacher-forced log probability of texts under one utterance's encoder output.

    `score(texts)` -> the total log probability of each text's tokens and the end of text, after
    `prompt` (the same start sequence the decoding used). The prompt runs once (its keys and values
    are shared by every text), the texts in one batched call, and the 52 k-word output projection
    only where a text token is predicted."""

    def __init__(self, decoder, enc: torch.Tensor, tokenizer, prompt: Sequence[int]):
        self.decoder, self.enc, self.tokenizer, self.prompt = decoder, enc, tokenizer, list(prompt)
        self._prefix = None  # (cross keys, the prompt's cache, the prompt's last hidden state)

    def prepare(self) -> None:
        """Cross-attention keys and the prompt's pass, ahead of the first `score`/`gains` (they need the same)."""
        if self.prompt:
            with torch.inference_mode():
                self._start()

    def _start(self):
        if self._prefix is None:
            cross = self.decoder.cross_keys(self.enc)
            hidden, cache = self.decoder.hidden(torch.tensor([self.prompt], dtype=torch.long), cross)
            self._prefix = (cross, cache, hidden[0, -1:])
        return self._prefix

    def score(self, texts: Sequence[str]) -> list[float]:
        """The total log probability of each text (its tokens and the end of text)."""
        seqs = self._encode(texts)
        return self._sums(seqs, [0] * len(seqs))

    def gains(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """score(a) - score(b) for each (a, b); the tokens the two share at the start cancel, so only the
        ones after it are projected onto the vocabulary."""
        if not pairs:
            return []
        texts = list(dict.fromkeys(t for pair in pairs for t in pair))
        seqs = dict(zip(texts, self._encode(texts)))
        start = {t: len(seqs[t]) for t in texts}  # the first token each text must be scored from
        shared = []
        for a, b in pairs:
            sa, sb = seqs[a], seqs[b]
            n = 0
            while n < min(len(sa), len(sb)) and sa[n] == sb[n]:
                n += 1
            shared.append(n)
            start[a], start[b] = min(start[a], n), min(start[b], n)
        order = list(seqs)
        partial = dict(zip(order, self._sums([seqs[t] for t in order], [start[t] for t in order], keep_terms=True)))
        out = []
        for (a, b), n in zip(pairs, shared):
            out.append(float(sum(partial[a][n - start[a]:]) - sum(partial[b][n - start[b]:])))
        return out

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        tok = self.tokenizer
        limit = max(1, self.decoder.dims.max_positions - len(self.prompt))
        return [tok.encode(" " + t.strip())[:limit - 1] + [tok.eot] for t in texts]

    def _sums(self, seqs: list[list[int]], starts: list[int], keep_terms: bool = False) -> list:
        """Per sequence the sum of the log probabilities of its tokens from `starts[i]` on (or the terms)."""
        if not seqs:
            return []
        if self.decoder.dims.max_positions - len(self.prompt) <= 1 or not self.prompt:
            return [[float("-inf")] if keep_terms else float("-inf") for _ in seqs]
        n, width = len(seqs), max(len(s) for s in seqs)
        with torch.inference_mode():
            cross, cache, last = self._start()
            hidden = None
            if width > 1:  # the texts' tokens but the last, after the shared prompt
                rows = torch.tensor([s[:-1] + [self.tokenizer.eot] * (width - len(s)) for s in seqs], dtype=torch.long)
                hidden, _ = self.decoder.hidden(rows, [(k.expand(n, -1, -1, -1), v.expand(n, -1, -1, -1)) for k, v in cross],
                                                [(k.expand(n, -1, -1, -1), v.expand(n, -1, -1, -1)) for k, v in cache])
            states, targets = [], []
            for i, (s, a) in enumerate(zip(seqs, starts)):
                every = torch.cat([last, hidden[i, :len(s) - 1]]) if len(s) > 1 else last  # state j predicts token j
                states.append(every[a:])
                targets.extend(s[a:])
            out: list = []
            if targets:
                lp = self.decoder.logits(torch.cat(states)).float().log_softmax(-1)
                picked = lp.gather(-1, torch.tensor(targets, dtype=torch.long)[:, None])[:, 0].tolist()
            at = 0
            for s, a in zip(seqs, starts):
                terms = picked[at:at + len(s) - a] if targets else []
                at += len(s) - a
                out.append(terms if keep_terms else float(sum(terms)))
        return out


# --------------------------------------------------------------------------- text handling

def _raw_word_owners(raw_words: Sequence[str]) -> list[int]:
    """For each normalized word of " ".join(raw_words), the index of the raw word it comes from."""
    owners: list[int] = []
    for i, w in enumerate(raw_words):
        owners.extend([i] * len(normalize_text(w).split()))
    return owners


def render(raw: str | None, words: Sequence[str], start: int, end: int, replacement: str | None) -> str:
    """A sentence in the casing the decoder writes: `raw` (Whisper's own text, whose normalized words are
    `words`) with the raw words behind normalized span [start, end) replaced by `replacement` (kept
    punctuation around it); without `raw` (a first-pass text), the normalized words sentence-cased, the
    span title-cased when there is no replacement (so that casing alone never favours a swap)."""
    if raw is not None:
        raw_words = raw.split()
        owners = _raw_word_owners(raw_words)
        if len(owners) == len(words) and start < end <= len(owners):
            a, b = owners[start], owners[end - 1]
            if replacement is None:
                return raw
            lead = _EDGE_PUNCT.match(raw_words[a]).group(1)
            trail = _EDGE_PUNCT.match(raw_words[b]).group(3)
            return " ".join(raw_words[:a] + [lead + replacement + trail] + raw_words[b + 1:])
    span = replacement if replacement is not None else " ".join(w.capitalize() for w in words[start:end])
    out = " ".join(list(words[:start]) + [span] + list(words[end:]))
    return out[:1].upper() + out[1:]


def _similar(a: str, b: str) -> float:
    from rapidfuzz import fuzz

    return fuzz.ratio(a, b) / 100.0


# --------------------------------------------------------------------------- candidates

def prepare(names, hyp, heard: str, options: RescoreOptions) -> None:
    """Work of the rescoring that needs only what is known at the pause, done before the endpoint: the catalog
    look-ups of the spans of the second pass's text and of the first pass's partial `heard` (NameIndex remembers
    them) and the decoder's pass over the prompt."""
    if names is None or not len(names):
        return
    for text in (hyp.text, heard):
        words = normalize_text(text).split()
        if len(words) > MAX_HYPOTHESIS_WORDS:
            continue
        for _, _, span in _spans(words, names.stop, options.max_span_words):
            names.index.search(span, limit=options.names_per_span, min_score=options.min_match)
    if isinstance(hyp.scorer, WhisperTextScorer):
        hyp.scorer.prepare()


def _spans(words: Sequence[str], stop, max_span_words: int):
    """(start, end, text) of the word spans that may be names: 1 to `max_span_words` words, longest first,
    not only command words, at least 3 letters."""
    for n in range(min(max_span_words, len(words)), 0, -1):
        for i in range(len(words) - n + 1):
            span = words[i:i + n]
            if all(w in stop for w in span) or len("".join(span)) < 3:
                continue
            yield i, i + n, " ".join(span)


def candidates(names, chosen: str, other: str | Sequence[str], options: RescoreOptions) -> list[Candidate]:
    """(span, name) candidates for the chosen text, best matches first. `names` is a
    second_pass.CatalogNames (its NameIndex and command words); `other` the other hypotheses (the other
    pass's text, the first pass's next-best beams)."""
    words = normalize_text(chosen).split()
    if not words or len(words) > MAX_HYPOTHESIS_WORDS or names is None or not len(names):
        return []
    stop = names.stop
    found: dict[tuple[int, int, str], Candidate] = {}

    def add(start: int, end: int, name: str, match: float) -> None:
        spoken = normalize_text(name)
        if not spoken or " ".join(words[start:end]) == spoken:
            return  # already what the text says
        key = (start, end, name)
        if key not in found or found[key].match < match:
            found[key] = Candidate(start, end, name, spoken, match)

    def spans(ws: Sequence[str]):
        return _spans(ws, stop, options.max_span_words)

    for i, j, span in spans(words):
        for hit in names.index.search(span, limit=options.names_per_span, min_score=options.min_match):
            add(i, j, hit.name, hit.score)
    # names the other hypotheses heard, placed where the chosen text is most like them
    said = set(words)
    looked_up: set[str] = set()
    for text in ([other] if isinstance(other, str) else other):
        other_words = normalize_text(text).split()
        if not other_words or len(other_words) > MAX_HYPOTHESIS_WORDS or other_words == words:
            continue
        for _, _, span in spans(other_words):
            if span in looked_up:
                continue
            looked_up.add(span)
            if all(w in said for w in span.split()):
                continue  # nothing the chosen text does not say already: its own look-ups cover it
            for hit in names.index.search(span, limit=options.names_per_span, min_score=options.min_match):
                spoken = normalize_text(hit.name)
                size = len(spoken.split())
                best = (0.0, 0, 0)
                for n in range(max(1, size - 1), min(len(words), size + 1) + 1):
                    for i in range(len(words) - n + 1):
                        s = _similar(" ".join(words[i:i + n]), spoken)
                        if s > best[0]:
                            best = (s, i, i + n)
                if best[0] >= options.min_match:
                    add(best[1], best[2], hit.name, min(hit.score, best[0]))
    ranked = sorted(found.values(), key=lambda c: (-c.match, c.start, c.end - c.start, c.name))
    return ranked[:options.max_lookups]


# --------------------------------------------------------------------------- the choice

def ctc_gains(cands: Sequence[Candidate], words: Sequence[str], ctc_score: Callable[[str], float] | None,
              audio_s: float) -> list[float]:
    """The first pass's log-likelihood gain (nats over all frames) of each candidate's name over the words it
    replaces, both without their spaces: a first pass that runs a name's words together ("blakidpese")
    still votes on its letters."""
    if ctc_score is None or audio_s <= 0:
        return [0.0] * len(cands)
    frames = audio_s / CTC_FRAME_S
    cache: dict[str, float] = {}

    def score(text: str) -> float:
        if text not in cache:
            cache[text] = ctc_score(text)
        return cache[text]

    out = []
    for c in cands:
        base = score(" ".join(list(words[:c.start]) + ["".join(words[c.start:c.end])] + list(words[c.end:])))
        cand = score(" ".join(list(words[:c.start]) + [c.spoken.replace(" ", "")] + list(words[c.end:])))
        if math.isfinite(base) and math.isfinite(cand):
            out.append((cand - base) * frames)
        else:
            out.append(-1e6 if math.isfinite(base) else 0.0)  # a candidate the frames cannot align to at all
    return out


def for_the_decoder(cands: Sequence[Candidate], d_ctc: Sequence[float], options: RescoreOptions,
                    decoder: bool = True) -> list[int]:
    """Which candidates (indices, in order) go on: with a decoder, none the first pass rates too low for any
    plausible decoder gain, and at most `max_candidates`, the first pass's favourites (its gain + 10 x the match)."""
    keep = list(range(len(cands)))
    if decoder and options.whisper_weight > 0:
        keep = [i for i in keep if options.ctc_weight * d_ctc[i] + options.whisper_weight * MAX_WHISPER_GAIN > options.margin]
    if len(keep) > options.max_candidates:
        keep = sorted(sorted(keep, key=lambda i: -(d_ctc[i] + 10 * cands[i].match))[:options.max_candidates])
    return keep


def score_candidates(cands: Sequence[Candidate], chosen: str, raw: str | None,
                     whisper: WhisperTextScorer | Callable | None, ctc_score: Callable[[str], float] | None,
                     audio_s: float, options: RescoreOptions) -> list[ScoredCandidate]:
    """The acoustic gain of each candidate over the chosen text with the same span as heard: the first pass
    scores every candidate; the decoder the `max_candidates` it likes best (by the combined gain so far)."""
    words = normalize_text(chosen).split()
    if not cands:
        return []
    d_ctc = ctc_gains(cands, words, ctc_score if options.ctc_weight > 0 else None, audio_s)
    keep = for_the_decoder(cands, d_ctc, options, whisper is not None)
    cands, d_ctc = [cands[i] for i in keep], [d_ctc[i] for i in keep]
    if not cands:
        return []
    d_whisper = [0.0] * len(cands)
    if whisper is not None and options.whisper_weight > 0:
        pairs = [(render(raw, words, c.start, c.end, c.name), render(raw, words, c.start, c.end, None)) for c in cands]
        if hasattr(whisper, "gains"):
            d_whisper = whisper.gains(pairs)
        else:  # a plain function of texts -> total scores
            scores = whisper([t for pair in pairs for t in pair])
            d_whisper = [scores[2 * i] - scores[2 * i + 1] for i in range(len(cands))]
    out = []
    for c, w, k in zip(cands, d_whisper, d_ctc):
        out.append(ScoredCandidate(c, w, k, options.whisper_weight * w + options.ctc_weight * k))
    return out


def apply_swaps(chosen: str, scored: Sequence[ScoredCandidate], options: RescoreOptions) -> tuple[str, tuple[NameChoice, ...]]:
    """The chosen text with every non-overlapping swap whose gain exceeds the margin, best first."""
    words = normalize_text(chosen).split()
    taken = [False] * len(words)
    picks: list[ScoredCandidate] = []
    for s in sorted(scored, key=lambda s: -s.gain):
        c = s.candidate
        if s.gain <= options.margin or any(taken[c.start:c.end]):
            continue
        taken[c.start:c.end] = [True] * (c.end - c.start)
        picks.append(s)
    if not picks:
        return " ".join(words), ()
    out, i = [], 0
    choices = []
    for s in sorted(picks, key=lambda s: s.candidate.start):
        c = s.candidate
        out.extend(words[i:c.start])
        out.append(c.spoken)
        i = c.end
        choices.append(NameChoice(c.name, " ".join(words[c.start:c.end]), c.match, s.gain, s.whisper, s.ctc))
    out.extend(words[i:])
    return " ".join(out), tuple(choices)


def rescore(names, chosen: str, other: str | Sequence[str], raw: str | None, whisper, ctc_score, audio_s: float,
            options: RescoreOptions) -> tuple[str, tuple[NameChoice, ...]]:
    """The final text with catalog names the audio supports, and the names that were put in."""
    if not options.enabled or not chosen:
        return chosen, ()
    cands = candidates(names, chosen, other, options)
    if not cands:
        return chosen, ()
    return apply_swaps(chosen, score_candidates(cands, chosen, raw, whisper, ctc_score, audio_s, options), options)
