"""Names not in the catalog: reported as heard, not replaced by a similar catalog name.

    .venv/bin/python bench/nlu_unknown_names.py ../shared/data/catalogs/spotify-artist-genres.csv \
        [--split test|train] [--limit 400] [--write-fixture tests/fixtures/absent_artists.txt] [--json OUT]

Real artists from the Spotify artist-genre file (popularity >= 45, so names
people ask for) that the default catalog does not have: not its artists
(spaces and a leading "the" aside) and not a title or album of it spelled the
same (a name that is a catalog title, "Touch" or "Run", is in the catalog as a
title). Names are split in two halves by crc32 of the name: the even half
("train") chose MATCH_CONFIDENT_MIN in assistant/nlu/intent.py; the odd half
("test") is the reported figure and the fixture of tests/test_nlu_heard.py.

Each name is asked for three ways ("play songs by X", "play X", "put on some
X"). A request counts as "reported as heard" when the parser keeps the name
in a slot as heard, no confident catalog match stands for it (the match, if
any, has `confident: false`), and the ranker's first song says "no songs by
X in your library" (or "no song / album / playlist / genre ..." for the slot
the parser put X in).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
import zlib
from pathlib import Path

from assistant.asr.text import normalize_text
from assistant.config import Config, PreferencesConfig, RecommendConfig
from assistant.nlu.intent import NAME_SLOTS
from assistant.recommend.catalog import DEFAULT_CATALOG
from assistant.recommend.loaders import load_source

MIN_POPULARITY = 45
MAX_WORDS = 4
TEMPLATES = ("play songs by {}", "play {}", "put on some {}")


def absent_artists(path: Path, split: str) -> list[str]:
    """Normalized real artist names the default catalog lacks, of one half."""
    songs = load_source(DEFAULT_CATALOG).songs
    known: set[str] = set()
    for song in songs:
        for name in (song.artist, *song.artists, song.title, song.album or ""):
            form = normalize_text(name)
            known.update({form.replace(" ", ""), form.removeprefix("the ").replace(" ", "")})
    out = []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            try:
                popularity = float(row.get("popularity") or 0)
            except ValueError:
                continue
            name = normalize_text(row.get("artists") or "")
            if popularity < MIN_POPULARITY or not name or len(name) < 3 or len(name.split()) > MAX_WORDS:
                continue
            if not all(c.isalpha() or c in " '" for c in name):
                continue
            if name.replace(" ", "") in known or name.removeprefix("the ").replace(" ", "") in known:
                continue
            half = "train" if zlib.crc32(name.encode()) % 2 == 0 else "test"
            if half == split:
                out.append(name)
    return sorted(set(out))


def reported_as_heard(intent, rec, name: str) -> bool:
    """The name is a slot as heard, no confident catalog match stands for it, and the first song says so."""
    bare = name.removeprefix("the ")  # "the darkness" is heard as the name "darkness"
    slot = next((k for k, v in intent.slots.items() if isinstance(v, str) and v.removeprefix("the ") == bare), None)
    if slot is None:
        return False
    name = intent.slots[slot]
    match = intent.match(slot) if slot in NAME_SLOTS else None
    if match is not None and match.confident:
        return False
    first = rec.items[0].reasons if rec is not None and rec.items else ()
    return any(r.startswith("no ") and "in your library" in r and name in r for r in first)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("artists_csv", type=Path, help="../shared/data/catalogs/spotify-artist-genres.csv")
    ap.add_argument("--split", choices=("train", "test"), default="test")
    ap.add_argument("--limit", type=int, default=400, help="names sampled (seeded) from the half")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--write-fixture", type=Path, help="write the sampled names here, one a line")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    names = absent_artists(args.artists_csv, args.split)
    random.Random(args.seed).shuffle(names)
    names = sorted(names[: args.limit])
    if args.write_fixture:
        args.write_fixture.write_text("# Real artists absent from index/default_catalog.csv (bench/nlu_unknown_names.py"
                                      f" --split {args.split} --limit {args.limit}); names only\n"
                                      + "\n".join(names) + "\n", encoding="utf-8")
    from assistant.recommend.service import RecommendService

    tmp = Path(tempfile.mkdtemp(prefix="unknown-names-"))
    config = Config(recommend=RecommendConfig(), preferences=PreferencesConfig(db_path=str(tmp / "prefs.sqlite3")))
    service = RecommendService(config, progress=sys.stderr.isatty())
    ok = {t: 0 for t in TEMPLATES}
    misses: list[dict] = []
    for name in names:
        for template in TEMPLATES:
            intent, rec = service.handle_text(template.format(name), user="unknown-names")
            if reported_as_heard(intent, rec, name):
                ok[template] += 1
            elif len(misses) < 200:
                misses.append({"text": template.format(name), "intent": intent.to_dict(),
                               "first": rec.items[0].to_dict() if rec is not None and rec.items else None})
    total = sum(ok.values()) / (len(names) * len(TEMPLATES))
    print(f"{len(names)} absent artists ({args.split} half), {len(TEMPLATES)} phrasings each")
    print("| phrasing | reported as heard, not replaced |\n|---|---|")
    for t in TEMPLATES:
        print(f"| {t.format('X')} | {ok[t] / len(names):.3f} |")
    print(f"| all | **{total:.3f}** |")
    for m in misses[:15]:
        print(f"miss: {m['text']!r} -> slots {m['intent']['slots']} matches {m['intent'].get('matches')}")
    if args.json:
        args.json.write_text(json.dumps({"names": len(names), "split": args.split, "all": total,
                                         "by_phrasing": {t: ok[t] / len(names) for t in TEMPLATES},
                                         "misses": misses}, indent=1))
    service.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
