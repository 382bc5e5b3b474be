"""`assistant recommend TEXT [--user ID] [--k N] [--json]`: ranked, explained songs for a command.

Loads the catalog, the embedding model and the index (built on first use, with
a progress bar), parses the text, applies feedback side effects (see
assistant.recommend.service) and prints the list.
"""

from __future__ import annotations

import argparse
import json
import sys

from assistant.config import default_config_path, load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", nargs="+", help='the command, e.g. "hello suggest me a sad song"')
    parser.add_argument("--user", default=None, help="user id for the taste profile (default: [preferences] default_user)")
    parser.add_argument("--k", type=int, default=None, help="how many songs (default: [recommend] k)")
    parser.add_argument("--now-playing", default=None, metavar="SONG_ID", help='song id "more like this" / "skip" refer to')
    parser.add_argument("--catalog", action="append", default=[], metavar="PATH",
                        help="an extra catalog file or music folder (repeatable)")
    parser.add_argument("--json", action="store_true", help="print JSON: {intent, slots, ..., items: [...]}")


def run(args: argparse.Namespace) -> int:
    from assistant.recommend.service import RecommendService

    config = load_config(args.config or default_config_path())
    with RecommendService(config, extra_catalogs=args.catalog, progress=sys.stderr.isatty()) as service:
        intent, rec = service.handle_text(" ".join(args.text), user=args.user, now_playing=args.now_playing, k=args.k)
        answer = service.answer(intent, args.now_playing)
    if args.json:
        out = rec.to_dict() if rec is not None else {**intent.to_dict(), "items": []}
        if answer is not None:
            out["answer"] = answer.to_dict()
        print(json.dumps(out, ensure_ascii=False))
        return 0
    slots = ", ".join(f"{k}={v}" for k, v in intent.slots.items()) or "no slots"
    excluded = f"; not {', '.join(f'{k}={v}' for k, v in intent.exclude.items())}" if intent.exclude else ""
    print(f"{intent.intent} ({intent.confidence:.2f}): {slots}{excluded}")
    if answer is not None:
        print(f"answer: {answer.text}")
        return 0
    if rec is None:
        print("(a player command: no songs to suggest)")
        return 0
    if rec.note:
        print(f"note: {rec.note}")
    for n, item in enumerate(rec.items, 1):
        print(f"{n:2d}. {item.song.title} - {item.song.artist}  [{item.score:.2f}]  {'; '.join(item.reasons)}")
        print(f"    id {item.song.id}")
    return 0
