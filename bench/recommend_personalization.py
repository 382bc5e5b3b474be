"""Personalization lift: simulated listeners with a hidden taste give 20 feedback events.

    .venv/bin/python bench/recommend_personalization.py [--listeners 40] [--seed 0] [--json OUT]

Each listener has a hidden taste: a genre and a mood. The songs of the default
catalog that have the genre (or one it covers) and fit the mood (mood fit of
their audio features in the catalog's top 40 %) are the relevant ones. The
listener talks to the assistant 20 times, alternating "recommend something"
and "play some GENRE", and reacts to the first song it has not heard yet:
liked when relevant, else skipped (one in three disliked). Then:

- personalized: precision@10 of "recommend something" for this listener
  (songs already rated are excluded by the recommender itself);
- non-personalized: the same request for a new listener (popular songs);
- genre-only: "play some GENRE" for a new listener, a stronger baseline that
  knows the genre but not the mood.

Lift = personalized / non-personalized precision. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

from assistant.config import Config, PreferencesConfig
from assistant.recommend.service import RecommendService

GENRES = ("pop", "hip hop", "rock", "latin", "r and b", "edm", "country", "metal", "soul", "indie")
MOODS = ("sad", "happy", "energetic", "calm", "party")
MOOD_TOP_SHARE = 0.4
MIN_RELEVANT = 25
EVENTS = 20
K = 10


def relevant_songs(service: RecommendService, genre: str, mood: str) -> set[str]:
    arrays = service.arrays
    rows = np.arange(len(service.catalog))
    genre_ok = arrays.genre_score(arrays.genre_matches(genre), rows) > 0
    fit = np.nan_to_num(arrays.mood_fit(mood, rows), nan=-1.0)
    threshold = np.quantile(fit[fit >= 0], 1 - MOOD_TOP_SHARE)
    return {service.catalog.songs[r].id for r in rows[genre_ok & (fit >= threshold)]}


def precision(service: RecommendService, text: str, user: str, relevant: set[str]) -> float:
    _, rec = service.handle_text(text, user=user, k=K)
    return sum(item.song.id in relevant for item in rec.items) / K


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listeners", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="personalization-"))
    service = RecommendService(Config(preferences=PreferencesConfig(db_path=str(tmp / "p.sqlite3"))),
                               progress=sys.stderr.isatty())
    rng = random.Random(args.seed)
    tastes = [(g, m) for g in GENRES for m in MOODS]
    tastes = [(g, m, rel) for g, m in tastes if len(rel := relevant_songs(service, g, m)) >= MIN_RELEVANT]
    rows = []
    for n in range(args.listeners):
        genre, mood, relevant = tastes[rng.randrange(len(tastes))]
        user = f"listener-{n}"
        events = liked = 0
        turn = 0
        while events < EVENTS and turn < 4 * EVENTS:
            text = "recommend something" if turn % 2 == 0 else f"play some {genre}"
            turn += 1
            _, rec = service.handle_text(text, user=user)
            heard = {e.song_id for e in service.store.events(user)}
            item = next((i for i in rec.items if i.song.id not in heard), None)
            if item is None:
                continue
            if item.song.id in relevant:
                kind = "liked"
                liked += 1
            else:
                kind = "disliked" if rng.random() < 1 / 3 else "skipped"
            service.feedback(user, item.song.id, kind)
            events += 1
        rows.append({
            "taste": f"{genre} + {mood}", "relevant": len(relevant), "likes": liked,
            "personalized": precision(service, "recommend something", user, relevant),
            "non_personalized": precision(service, "recommend something", f"fresh-{n}", relevant),
            "genre_only": precision(service, f"play some {genre}", f"fresh-genre-{n}", relevant),
        })
    summary = {k: round(statistics.mean(r[k] for r in rows), 3) for k in ("personalized", "non_personalized", "genre_only")}
    base = summary["non_personalized"]
    summary["lift"] = round(summary["personalized"] / base, 2) if base else None
    summary["lift_vs_genre_only"] = round(summary["personalized"] / summary["genre_only"], 2) if summary["genre_only"] else None
    summary["listeners"] = len(rows)
    summary["events_per_listener"] = EVENTS
    summary["mean_relevant_songs"] = round(statistics.mean(r["relevant"] for r in rows), 1)
    print(f"| listeners | events each | P@{K} non-personalized | P@{K} genre-only request | P@{K} personalized | lift |")
    print("|---|---|---|---|---|---|")
    print(f"| {summary['listeners']} | {EVENTS} | {summary['non_personalized']:.3f} | {summary['genre_only']:.3f} | "
          f"{summary['personalized']:.3f} | {summary['lift']}x (vs genre-only {summary['lift_vs_genre_only']}x) |")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "listeners": rows}, indent=2))
    service.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
