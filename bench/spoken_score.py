"""Scoring of the spoken benchmark: was the named song (artist, "like" name) answered, and if not, why.

Pure functions over a command (bench/spoken_commands.py) and what the daemon
sent for it: the final transcripts, the intent and the recommendations.

A miss has one kind, the first that applies:
- `no final`: the daemon sent no accepted final for the clip (nothing heard, or timed out)
- `not understood as music`: the intent was `none`
- `no recommendations`: a song or artist request got no (or an empty) recommendations event
- `name misheard`: the expected name's words are not in the final transcript
- `wrong item despite the name heard`: the name was in the transcript, the answer was another
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from rapidfuzz import fuzz

MISS_KINDS = ("no final", "not understood as music", "no recommendations", "name misheard",
              "wrong item despite the name heard")
NAME_MATCH_MIN = 90.0  # rapidfuzz ratio (0-100) of two normalized names that counts as the same name
SLOT_NAMES = ("artist", "track", "album")


def norm(name: str) -> str:
    """The recognizer's normal form (lower case, ASCII, digits as words) of a name without
    " - Radio Edit" suffixes or bracketed parts."""
    from assistant.asr.text import normalize_text

    from spoken_commands import spoken_title

    return normalize_text(spoken_title(name))


def same_name(a: str, b: str) -> bool:
    """Normalized fuzzy equality; spaces do not count ("one republic" = "OneRepublic")."""
    x, y = norm(a).replace(" ", ""), norm(b).replace(" ", "")
    if not x or not y:
        return False
    return x == y or fuzz.ratio(x, y) >= NAME_MATCH_MIN


def artist_matches(credit: str, artist: str) -> bool:
    """True when `artist` is the whole credit or one of its credited artists."""
    from spoken_commands import credited_artists

    return same_name(credit, artist) or any(same_name(a, artist) for a in credited_artists(credit))


def name_heard(name: str, transcript: str) -> bool:
    """The name's words, in order, are in the transcript (spaces between them do not count)."""
    n = norm(name).replace(" ", "")
    return bool(n) and n in norm(transcript).replace(" ", "")


def matched_names(matches: dict | None) -> list[str]:
    """The catalog names the parser is sure the name slots mean (the intent event's `matches`, protocol v1 since
    slots hold names as heard): a "like X" request whose X was heard a little wrong but matched surely counts."""
    out: list[str] = []
    for key in SLOT_NAMES:
        m = (matches or {}).get(key)
        if isinstance(m, dict) and m.get("confident") and isinstance(m.get("name"), str):
            out.append(m["name"])
    return out


def slot_values(slots: dict | None) -> list[str]:
    """Every string value of the name slots (a value may be a string or a list of strings)."""
    out: list[str] = []
    for key in SLOT_NAMES:
        value = (slots or {}).get(key)
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, list):
            out.extend(v for v in value if isinstance(v, str))
    return out


@dataclass(frozen=True)
class Outcome:
    hit: bool
    miss: str            # "" for a hit, else one of MISS_KINDS
    heard: bool          # the expected name(s) are in the final transcript


def score(command: dict, transcript: str | None, intent: dict | None, items: list[dict] | None) -> Outcome:
    """Score one command (`Command.to_dict()`) given the final transcript (None: no accepted
    final), the intent event (None: none came) and the recommended items (None: no event)."""
    kind = command["kind"]
    names = [command["expected_artist"]] if kind == "artist" else [command["name"]]
    if kind == "song_by_artist":
        names.append(command["expected_artist"])
    heard = transcript is not None and all(name_heard(n, transcript) for n in names)
    if kind == "like":
        hit = intent is not None and any(same_name(v, command["name"]) for v in
                                         slot_values(intent.get("slots")) + matched_names(intent.get("matches")))
    else:
        first = items[0] if items else None
        hit = first is not None and _first_is_expected(command, first)
    if hit:
        return Outcome(True, "", heard)
    if transcript is None:
        miss = "no final"
    elif intent is None or intent.get("name") == "none":
        miss = "not understood as music"
    elif kind != "like" and not items:
        miss = "no recommendations"
    elif not heard:
        miss = "name misheard"
    else:
        miss = "wrong item despite the name heard"
    return Outcome(False, miss, heard)


def _first_is_expected(command: dict, item: dict) -> bool:
    title, artist = str(item.get("title") or ""), str(item.get("artist") or "")
    if command["kind"] == "artist":
        return artist_matches(artist, command["expected_artist"])
    return same_name(title, command["expected_title"]) and artist_matches(artist, command["expected_artist"])


# --------------------------------------------------------------------------- tables

def summarize(records: list[dict]) -> dict:
    """Hit counts per noise level, per voice x noise level, per kind x noise level, and misses by kind.
    Each record has `voice`, `snr`, `kind`, `hit`, `miss`."""
    def tally(key) -> dict:
        acc: dict = defaultdict(lambda: [0, 0])
        for r in records:
            k = key(r)
            acc[k][0] += bool(r["hit"])
            acc[k][1] += 1
        return {k: {"hits": h, "n": n, "rate": h / n if n else 0.0} for k, (h, n) in acc.items()}

    misses: dict = defaultdict(Counter)
    for r in records:
        if not r["hit"]:
            misses[r["snr"]][r["miss"]] += 1
    return {
        "by_snr": tally(lambda r: r["snr"]),
        "by_voice_snr": {f"{v}|{s}": x for (v, s), x in tally(lambda r: (r["voice"], r["snr"])).items()},
        "by_kind_snr": {f"{k}|{s}": x for (k, s), x in tally(lambda r: (r["kind"], r["snr"])).items()},
        "misses": {s: {k: c[k] for k in MISS_KINDS if c[k]} for s, c in misses.items()},
        "total": tally(lambda r: "all")["all"] if records else {"hits": 0, "n": 0, "rate": 0.0},
    }


def pct(x: dict) -> str:
    return f"{100 * x['rate']:.0f} % ({x['hits']}/{x['n']})" if x["n"] else "-"


def markdown_tables(summary: dict, voices: list[str], snrs: list[str], kinds: list[str]) -> str:
    """Per noise level, voice x noise level, kind x noise level, misses by kind."""
    head = "| | " + " | ".join(snrs) + " |\n|---|" + "---|" * len(snrs) + "\n"
    rows = ["| **all voices** | " + " | ".join(pct(summary["by_snr"].get(s, {"n": 0})) for s in snrs) + " |"]
    rows += [f"| {v} | " + " | ".join(pct(summary["by_voice_snr"].get(f"{v}|{s}", {"n": 0})) for s in snrs) + " |"
             for v in voices]
    rows += [f"| kind: {k} | " + " | ".join(pct(summary["by_kind_snr"].get(f"{k}|{s}", {"n": 0})) for s in snrs) + " |"
             for k in kinds]
    miss = "| miss kind | " + " | ".join(snrs) + " |\n|---|" + "---|" * len(snrs) + "\n" + "\n".join(
        f"| {m} | " + " | ".join(str(summary["misses"].get(s, {}).get(m, 0)) for s in snrs) + " |" for m in MISS_KINDS)
    return head + "\n".join(rows) + "\n\n" + miss + "\n"

