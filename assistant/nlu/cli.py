"""`assistant parse TEXT [--json] [--explain]`: intent and slots of a command text.

The parser is catalog-aware: names are resolved against the configured catalog
(the default one in index/ unless configured otherwise). `--no-catalog` parses
without it. The learned model ([nlu] model, or the shipped one) loads in well
under a second; `--rules` uses the rule grammar alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from assistant.config import default_config_path, load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", nargs="+", help="the command text, e.g. play something sad by adele")
    parser.add_argument("--json", action="store_true", help="print JSON: {intent, slots, confidence, ...}")
    parser.add_argument("--no-catalog", action="store_true", help="do not resolve names against the catalog")
    parser.add_argument("--rules", action="store_true", help="the rule grammar alone (no learned model)")
    parser.add_argument("--explain", action="store_true", help="also print tokens, slot tags and intent probabilities")


def run(args: argparse.Namespace) -> int:
    from assistant.nlu.gazetteer import Gazetteer
    from assistant.nlu.parser import make_parser

    config = load_config(args.config or default_config_path())
    if args.rules:
        config = dataclasses.replace(config, nlu=dataclasses.replace(config.nlu, learned=False))
    gazetteer = None
    if not args.no_catalog:
        from assistant.recommend.catalog import load_catalog

        gazetteer = Gazetteer.from_songs(load_catalog(config.recommend).songs)
    parser = make_parser(config, gazetteer)
    text = " ".join(args.text)
    result = parser.parse(text)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        matches = result.matches

        def shown(kind, value) -> str:  # "artist=adel (matched: Adele 0.92)", "artist=nora quill (not in catalog)"
            m = matches.get(kind)
            if kind not in ("artist", "track", "album"):
                return f"{kind}={value}"
            if m is None or not m["confident"]:
                return f"{kind}={value} (not in the catalog)"
            return f"{kind}={value}" if m["score"] >= 1.0 else f"{kind}={value} (matched: {m['name']} {m['score']:.2f})"

        slots = ", ".join(shown(k, v) for k, v in result.slots.items()) or "no slots"
        extra = "".join(f"; {k}: {v}" for k, v in (("exclude", result.exclude), ("question", result.question),
                                                    ("query", result.query), ("note", result.note)) if v)
        print(f"{result.intent} ({result.confidence:.2f}): {slots}{extra}")
    if args.explain:
        print(json.dumps(parser.analyze(text), ensure_ascii=False))
    return 0
