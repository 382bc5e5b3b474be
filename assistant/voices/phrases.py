"""Voice commands, matched before the intent parser: "remember my voice as Anna", "forget my voice".

    match_voice_command(text) -> VoiceCommand | None

Spoken forms come from the recognizer in lower case without punctuation;
typed ones may carry capitals and punctuation. A name is what follows "as"
(or "for"), at most MAX_NAME_WORDS words, title-cased.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_NAME_WORDS = 3
_VERBS_ENROL = r"(?:remember|learn|save|store|enrol|enroll|add|register)"
_VERBS_FORGET = r"(?:forget|delete|remove|erase|drop)"
_POLITE = r"(?:(?:hey music|please|can you|could you|would you)\s+)*"
_ENROL = (
    re.compile(rf"^{_POLITE}{_VERBS_ENROL}\s+my\s+voice\s+(?:as|for|under)\s+(?P<name>.+?)(?:\s+please)?$"),
    re.compile(rf"^{_POLITE}(?:my name is|this is|i am|i'm)\s+(?P<name>.+?)\s+{_VERBS_ENROL}\s+my\s+voice(?:\s+please)?$"),
)
_FORGET = (
    re.compile(rf"^{_POLITE}{_VERBS_FORGET}\s+my\s+voice(?:\s+please)?$"),
    re.compile(rf"^{_POLITE}{_VERBS_FORGET}\s+(?:the\s+)?voice\s+of\s+(?P<name>.+?)(?:\s+please)?$"),
    re.compile(rf"^{_POLITE}{_VERBS_FORGET}\s+(?P<name>.+?)'s\s+voice(?:\s+please)?$"),
)


@dataclass(frozen=True)
class VoiceCommand:
    action: str              # "enrol" or "forget"
    name: str | None         # None: "forget my voice" (whoever the voice is)


def _normalize(text: str) -> str:
    text = re.sub(r"[^\w\s']", " ", text.lower())
    return " ".join(text.split())


def _name(raw: str) -> str | None:
    words = raw.replace("'", " ").split()
    if not words or len(words) > MAX_NAME_WORDS:
        return None
    return " ".join(w.capitalize() for w in words)


def match_voice_command(text: str) -> VoiceCommand | None:
    norm = _normalize(text)
    for pattern in _ENROL:
        m = pattern.match(norm)
        if m and (name := _name(m.group("name"))):
            return VoiceCommand("enrol", name)
    for pattern in _FORGET:
        m = pattern.match(norm)
        if m:
            if "name" not in pattern.groupindex:
                return VoiceCommand("forget", None)
            if name := _name(m.group("name")):
                return VoiceCommand("forget", name)
    return None
