"""Top-5 hit rate of title/artist requests under simulated recognition errors.

    .venv/bin/python bench/recommend_robustness.py [--songs 300] [--seed 0] [--json OUT]

Requests are built from songs of the default catalog: "play TITLE by ARTIST"
(half), "play TITLE" (a quarter) and "play ARTIST" (a quarter). The names in
them (not the command words) are corrupted the way a recognizer would:

- CER 10/20/30 %: each character is, with that probability, substituted by a
  random letter (50 %), deleted (25 %) or followed by an inserted letter (25 %);
- sound-alike: 1 to 3 spelling-to-sound rewrites per name ("you" -> "yu",
  "ph" -> "f", "ck" -> "k", "ee" -> "ea", "the" -> "da", doubled letters
  collapsed, ...), which keep the sound and change the spelling.

A hit is the requested song among the first 5 results (for "play ARTIST":
any song of that artist). Methods:

- ours: the whole pipeline, `RecommendService.handle_text` (intent parser with
  fuzzy + phonetic catalog matching, then the ranker);
- fuzzy only (the seed's fallback): rapidfuzz ratio of the request (without
  "play") against each song's "title", "artist" and "title by artist", best of the three;
- embedding only (the seed's first choice): the request embedded with
  all-MiniLM-L6-v2 and searched in the faiss index of song documents.

Prints a Markdown table; --json writes the figures and a few examples.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import string
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from assistant.asr.text import normalize_text
from assistant.config import Config, PreferencesConfig, RecommendConfig
from assistant.recommend.matcher import spoken_forms
from assistant.recommend.service import RecommendService

TOP_K = 5
CONDITIONS = (("clean", 0.0), ("cer10", 0.10), ("cer20", 0.20), ("cer30", 0.30), ("sound-alike", None))
LETTERS = string.ascii_lowercase
# (pattern, replacement): spellings that sound the same or nearly so.
SOUND_ALIKE = (
    (r"\byou\b", "yu"), (r"\byour\b", "yor"), (r"\bthe\b", "da"), (r"\bto\b", "two"), (r"\bfor\b", "four"),
    (r"\bare\b", "r"), (r"\bi\b", "eye"), (r"\bme\b", "mi"), (r"\bmy\b", "mai"), (r"ph", "f"), (r"ck", "k"),
    (r"ee", "ea"), (r"ea", "ee"), (r"ou", "ow"), (r"oo", "u"), (r"igh", "i"), (r"tion\b", "shun"), (r"c(?=[aou])", "k"),
    (r"s\b", "z"), (r"y\b", "ie"), (r"er\b", "a"), (r"th", "t"), (r"wh", "w"), (r"qu", "kw"), (r"x", "ks"),
    (r"([a-z])\1", r"\1"), (r"e\b", ""), (r"ai", "ay"), (r"ie\b", "y"), (r"ing\b", "in"),
)


def corrupt_cer(text: str, rate: float, rng: random.Random) -> str:
    out = []
    for ch in text:
        if ch != " " and rng.random() < rate:
            r = rng.random()
            if r < 0.5:
                out.append(rng.choice(LETTERS))
            elif r < 0.75:
                continue
            else:
                out.append(ch + rng.choice(LETTERS))
        else:
            out.append(ch)
    return " ".join("".join(out).split())


def corrupt_sound(text: str, rng: random.Random) -> str:
    rules = [(p, r) for p, r in SOUND_ALIKE if re.search(p, text)]
    rng.shuffle(rules)
    for pattern, repl in rules[: rng.randint(1, 3)]:
        text = re.sub(pattern, repl, text, count=1)
    return " ".join(text.split()) or text


def build_requests(service: RecommendService, n: int, rng: random.Random) -> list[dict]:
    songs = [s for s in service.catalog.songs if len(spoken_forms(s.title)[-1]) >= 2]
    picks = rng.sample(songs, n)
    out = []
    for i, song in enumerate(picks):
        title = spoken_forms(song.title)[-1]  # "Someone Like You - Live" is asked for as "someone like you"
        artist = normalize_text(song.artists[0])
        kind = "title+artist" if i % 4 < 2 else ("title" if i % 4 == 2 else "artist")
        out.append({"song": song.id, "artist_key": artist, "kind": kind, "title": title, "artist": artist})
    return out


def request_text(req: dict, title: str, artist: str) -> str:
    if req["kind"] == "title+artist":
        return f"play {title} by {artist}"
    return f"play {title}" if req["kind"] == "title" else f"play {artist}"


def is_hit(req: dict, song_ids: list[str], service: RecommendService) -> bool:
    if req["kind"] == "artist":
        return any(normalize_text(service.catalog.get(s).artists[0]) == req["artist_key"] for s in song_ids[:TOP_K])
    return req["song"] in song_ids[:TOP_K]


class FuzzyOnly:
    """The seed's fuzzy fallback: best rapidfuzz ratio of the request against title, artist, "title by artist"."""

    def __init__(self, service: RecommendService):
        self.ids = [s.id for s in service.catalog.songs]
        self.fields = [[normalize_text(s.title), normalize_text(s.artist), normalize_text(f"{s.title} by {s.artist}")]
                       for s in service.catalog.songs]

    def top(self, query: str) -> list[str]:
        from rapidfuzz import fuzz, process

        best = np.zeros(len(self.ids))
        for j in range(3):
            scores = process.cdist([query], [f[j] for f in self.fields], scorer=fuzz.ratio)[0]
            best = np.maximum(best, scores)
        order = np.argsort(-best, kind="stable")[:TOP_K]
        return [self.ids[i] for i in order]


class EmbeddingOnly:
    """The seed's first choice: embed the request, nearest song documents."""

    def __init__(self, service: RecommendService):
        self.service = service

    def top(self, query: str) -> list[str]:
        vector = self.service.embedder.encode([query])[0]
        _, rows = self.service.index.search(vector, TOP_K)
        return [self.service.catalog.songs[r].id for r in rows[0] if r >= 0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--songs", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="robustness-"))
    config = Config(recommend=RecommendConfig(), preferences=PreferencesConfig(db_path=str(tmp / "prefs.sqlite3")))
    service = RecommendService(config, progress=sys.stderr.isatty())
    rng = random.Random(args.seed)
    requests = build_requests(service, args.songs, rng)
    fuzzy, embed = FuzzyOnly(service), EmbeddingOnly(service)
    results: dict = {"songs": args.songs, "catalog": len(service.catalog), "conditions": {}, "examples": {}}
    for name, rate in CONDITIONS:
        crng = random.Random(f"{args.seed}-{name}")
        hits = {"ours": 0, "fuzzy_only": 0, "embedding_only": 0}
        by_kind: dict[str, list[int]] = {}
        measured_cer = []
        times = []
        examples = []
        for i, req in enumerate(requests):
            if rate is None:
                title, artist = corrupt_sound(req["title"], crng), corrupt_sound(req["artist"], crng)
            else:
                title, artist = corrupt_cer(req["title"], rate, crng), corrupt_cer(req["artist"], rate, crng)
            from rapidfuzz.distance import Levenshtein

            for clean, noisy in ((req["title"], title), (req["artist"], artist)):
                measured_cer.append(Levenshtein.distance(clean, noisy) / max(1, len(clean)))
            text = request_text(req, title, artist)
            start = time.perf_counter()
            _, rec = service.handle_text(text, user=f"robust-{name}-{i}")
            times.append(time.perf_counter() - start)
            ours = [item.song.id for item in rec.items] if rec else []
            query = text[len("play "):]
            got = {"ours": is_hit(req, ours, service), "fuzzy_only": is_hit(req, fuzzy.top(query), service),
                   "embedding_only": is_hit(req, embed.top(query), service)}
            for method, ok in got.items():
                hits[method] += ok
            by_kind.setdefault(req["kind"], [0, 0])
            by_kind[req["kind"]][0] += got["ours"]
            by_kind[req["kind"]][1] += 1
            if len(examples) < 4:
                examples.append({"heard": text, "wanted": service.catalog.get(req["song"]).title,
                                 "ours_top": [service.catalog.get(s).title for s in ours[:3]], "hit": got["ours"]})
        results["conditions"][name] = {
            **{m: round(h / len(requests), 3) for m, h in hits.items()},
            "measured_cer": round(float(np.mean(measured_cer)), 3),
            "ours_by_kind": {k: round(v[0] / v[1], 3) for k, v in by_kind.items()},
            "ours_ms_p50": round(float(np.median(times)) * 1000, 2),
        }
        results["examples"][name] = examples
    print(f"Top-{TOP_K} hit rate, {args.songs} requests over the default catalog ({len(service.catalog)} songs)\n")
    print("| condition | measured CER of names | ours | fuzzy only | embedding only | ours: title+artist / title / artist |")
    print("|---|---|---|---|---|---|")
    for name, r in results["conditions"].items():
        k = r["ours_by_kind"]
        print(f"| {name} | {r['measured_cer']:.2f} | {r['ours']:.3f} | {r['fuzzy_only']:.3f} | {r['embedding_only']:.3f} | "
              f"{k.get('title+artist', 0):.2f} / {k.get('title', 0):.2f} / {k.get('artist', 0):.2f} |")
    for name, ex in results["examples"].items():
        print(f"{name}: " + "; ".join(f"{e['heard']!r} -> {e['ours_top'][:1]} ({'hit' if e['hit'] else 'miss'})" for e in ex[:2]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    service.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
