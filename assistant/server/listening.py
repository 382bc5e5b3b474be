"""Which final transcripts are commands: listening modes `always` and `wake_phrase`. Pure logic.

`always`: every non-empty transcript is a command.

`wake_phrase`: a transcript counts only if it starts with the wake phrase,
matched on the recognizer's output with fuzzy tolerance (rapidfuzz ratio of
the phrase against the transcript's first words, spaces ignored, so "hey
music" survives "hay music", "hey musik" and "heymusic"). The command is what
follows. A transcript that is only the wake phrase arms the source: its next
transcript within `follow_up_s` is the command, without repeating the phrase.
"""

from __future__ import annotations

from dataclasses import dataclass

from rapidfuzz import fuzz

from assistant.asr.text import normalize_text
from assistant.config import ListenConfig


@dataclass(frozen=True)
class Decision:
    accepted: bool
    command: str  # what to parse; "" when not accepted, or when only the wake phrase was said


def split_wake_phrase(text: str, phrase: str, min_score: float) -> tuple[bool, str]:
    """(matched, rest) for `text` starting with `phrase` within `min_score` (0..100)."""
    words = normalize_text(text).split()
    phrase_words = normalize_text(phrase).split()
    target = "".join(phrase_words)
    if not words or not target:
        return False, ""
    best_score, best_k = -1.0, 0
    prefix = ""
    for k, word in enumerate(words[: len(phrase_words) + 2], start=1):
        prefix += word
        if len(prefix) > 2 * len(target):
            break
        score = fuzz.ratio(prefix, target)
        if score > best_score:
            best_score, best_k = score, k
    if best_score < min_score:
        return False, ""
    return True, " ".join(words[best_k:])


class ListenPolicy:
    """Decides per source; remembers which sources said the wake phrase alone, and when."""

    def __init__(self, cfg: ListenConfig):
        self.cfg = cfg
        self._armed_until: dict[str, float] = {}

    def decide(self, source: str, text: str, now_s: float) -> Decision:
        text = text.strip()
        if not text:
            return Decision(False, "")
        if self.cfg.mode == "always":
            return Decision(True, text)
        matched, rest = split_wake_phrase(text, self.cfg.wake_phrase, self.cfg.wake_min_score)
        if matched:
            if rest:
                self._armed_until.pop(source, None)
            else:  # (expired entries go: sources come and go with clients)
                self._armed_until = {s: t for s, t in self._armed_until.items() if t >= now_s}
                self._armed_until[source] = now_s + self.cfg.follow_up_s
            return Decision(True, rest)
        if self._armed_until.pop(source, -1.0) >= now_s:
            return Decision(True, text)
        return Decision(False, "")
