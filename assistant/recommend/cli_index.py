"""`assistant index build [--catalog PATH ...] [--force]` and `assistant index info`.

build: loads the configured catalogs (plus --catalog paths), embeds every
song's document and writes the faiss index and its manifest to the cache
folder; an index whose manifest matches the catalog and model is reused
unless --force. Prints what was loaded (with skipped rows) and the build speed.
"""

from __future__ import annotations

import argparse
import json
import sys

from assistant.config import default_config_path, load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("build", "info"), help="build: (re)build the index if stale; info: show it")
    parser.add_argument("--catalog", action="append", default=[], metavar="PATH",
                        help="extra catalog: Million Song Dataset CSV, Spotify track CSV, artist-genre CSV, "
                             "JSONL or a music folder (repeatable)")
    parser.add_argument("--force", action="store_true", help="rebuild even when the cached index is fresh")
    parser.add_argument("--json", action="store_true", help="print the manifest as JSON")


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from assistant.recommend.catalog import load_catalog
    from assistant.recommend.embedder import make_embedder
    from assistant.recommend.index_store import cache_root, ensure_index

    config = load_config(args.config or default_config_path())
    catalog = load_catalog(config.recommend, args.catalog)
    print(catalog.summary(), file=sys.stderr)
    embedder = make_embedder(config.recommend.embed_model)
    index, manifest, built = ensure_index(catalog, embedder, config.recommend,
                                          force=args.force and args.action == "build", progress=True)
    if args.json:
        print(json.dumps({**asdict(manifest), "built_now": built, "cache_dir": str(cache_root(config.recommend))}))
        return 0
    state = "built" if built else "up to date (cached)"
    print(f"index {state}: {manifest.songs} songs, {manifest.kind}, {manifest.model} ({manifest.dimension}-d), "
          f"{manifest.songs_per_s:.0f} songs/s when built, in {cache_root(config.recommend)}")
    if manifest.recall_at_10 is not None:
        effort = "nprobe" if manifest.kind == "ivf" else "efSearch"
        print(f"{manifest.kind.upper()} recall@10 vs exact search: {manifest.recall_at_10:.3f} "
              f"({effort} {manifest.search_effort})")
    return 0
