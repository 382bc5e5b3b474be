"""`assistant parse TEXT [--json]`: intent and slots of a command text.

The parser is catalog-aware: names are resolved against the configured catalog
(the default one in index/ unless configured otherwise). `--no-catalog` parses
with the grammar alone. No model is loaded; this takes well under a second.
"""

from __future__ import annotations

import argparse
import json

from assistant.config import default_config_path, load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", nargs="+", help="the command text, e.g. play something sad by adele")
    parser.add_argument("--json", action="store_true", help="print JSON: {intent, slots, confidence, ...}")
    parser.add_argument("--no-catalog", action="store_true", help="do not resolve names against the catalog")


def run(args: argparse.Namespace) -> int:
    from assistant.nlu.gazetteer import Gazetteer
    from assistant.nlu.parser import IntentParser

    gazetteer = None
    if not args.no_catalog:
        from assistant.recommend.catalog import load_catalog

        config = load_config(args.config or default_config_path())
        gazetteer = Gazetteer.from_songs(load_catalog(config.recommend).songs)
    result = IntentParser(gazetteer).parse(" ".join(args.text))
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        slots = ", ".join(f"{k}={v}" for k, v in result.slots.items()) or "no slots"
        print(f"{result.intent} ({result.confidence:.2f}): {slots}")
    return 0
