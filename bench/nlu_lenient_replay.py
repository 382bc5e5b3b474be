"""Replay the daemon's final transcripts of spoken validation commands through the parser and ranker.

    .venv/bin/python bench/nlu_lenient_replay.py runs/spoken_e2e/results-train90-*.json [--show none]

Each record of a bench/spoken_e2e.py results file (TRAINING voices only: the
held-out voices' files are refused, they are the headline test) has the
command's expected song or artist and the final text the daemon sent. The
final goes through the recommender in this process (parser + ranker, as the
daemon runs them; bench/rescore_tune.py's Judge) and is scored as
bench/spoken_e2e.py scores it: the named song (artist, "like" name) first.
Prints the hits per noise level and the misses by kind for the code as it is
now; `--show KIND` lists the transcripts of one miss kind ("none" for "not
understood as music") for error analysis.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

SHOW = {"none": "not understood as music", "misheard": "name misheard",
        "wrong": "wrong item despite the name heard", "norecs": "no recommendations"}


def rows_of(path: Path) -> list[dict]:
    """The records of one results file as Judge rows (kind, expected names, final text, noise level)."""
    records = json.loads(path.read_text())["records"]
    return [{"kind": r["kind"], "snr": r["snr"], "text": r.get("transcript") or "",
             "expected": {"name": r["name"], "title": r["expected_title"], "artist": r["expected_artist"],
                          "catalog_title": r["catalog_title"], "catalog_artist": r["catalog_artist"]},
             "id": f"{path.stem}:{r['id']}"} for r in records]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path, nargs="+", help="bench/spoken_e2e.py results of training voices")
    ap.add_argument("--show", choices=sorted(SHOW), action="append", default=[], help="list the misses of a kind")
    ap.add_argument("--json", type=Path, help="write the per-record outcome here")
    args = ap.parse_args(argv)
    for path in args.results:
        if "heldout" in path.name:
            print(f"error: {path} holds held-out voices' transcripts; expected results of training voices "
                  "(results-train*.json)", file=sys.stderr)
            return 2
    from rescore_tune import Judge
    from spoken_score import score

    judge = Judge()
    rows = [row for path in args.results for row in rows_of(path)]
    tally: dict = defaultdict(lambda: [0, 0])
    misses: Counter = Counter()
    out = []
    for row in rows:
        intent, items = judge.answer(row["text"])
        e = row["expected"]
        command = {"kind": row["kind"], "name": e["name"], "expected_title": e["title"], "expected_artist": e["artist"],
                   "catalog_title": e["catalog_title"], "catalog_artist": e["catalog_artist"]}
        outcome = score(command, row["text"] or None, intent, items)
        tally[row["snr"]][0] += outcome.hit
        tally[row["snr"]][1] += 1
        misses[outcome.miss] += not outcome.hit
        out.append({"id": row["id"], "snr": row["snr"], "text": row["text"], "hit": outcome.hit, "miss": outcome.miss,
                    "heard": outcome.heard, "intent": intent})
        if not outcome.hit and outcome.miss in {SHOW[k] for k in args.show}:
            first = items[0] if items else None
            print(f"  [{outcome.miss}] {row['text']!r} -> {intent and intent['name']} {intent and intent['slots']} "
                  f"| wanted {e['title'] or e['artist']!r} by {e['artist']!r} | first "
                  f"{first and (first.get('title'), first.get('artist'))}")
    total = sum(h for h, _ in tally.values()), sum(n for _, n in tally.values())
    print(f"named song first: {total[0]} / {total[1]} = {total[0] / max(total[1], 1):.3f}; by noise level: "
          + ", ".join(f"{k} {h}/{n}" for k, (h, n) in sorted(tally.items())))
    print("misses: " + ", ".join(f"{k} {n}" for k, n in misses.most_common() if n))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
