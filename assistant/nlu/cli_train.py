"""`assistant nlu train [--data DIR] [--out DIR]`: rebuild the learned intent parser.

Trains the CRF slot tagger and the intent classifier from the public NLU data
(`--data`, laid out like ../shared/data/nlu: Snips 2017 training files, HWU64
train, SLURP devel) plus the command templates filled with the configured
catalog's names, and writes a model folder (default: the shipped one,
assistant/nlu/model). `--templates-only` trains from the catalog templates
alone (no data folder needed; weaker on phrasings the templates lack).
About a minute on one core. Point `[nlu] model` at another `--out` folder to
use it without replacing the shipped model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from assistant.config import REPO_ROOT, default_config_path, load_config
from assistant.errors import AssistantError

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "nlu"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="nlu_command", metavar="ACTION")
    train = sub.add_parser("train", help="train the slot tagger and intent classifier, write a model folder")
    train.add_argument("--data", type=Path, default=None, help=f"NLU data folder (default: {DEFAULT_DATA})")
    train.add_argument("--out", type=Path, default=None, help="model folder to write (default: the shipped model)")
    train.add_argument("--templates-only", action="store_true", help="train from catalog templates alone")
    train.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "nlu_command", None) != "train":
        raise AssistantError("assistant nlu: expected an action: train")
    from assistant.nlu.datasets import load_corpus
    from assistant.nlu.model import SHIPPED_MODEL_DIR
    from assistant.nlu.train import TrainOptions, train_model
    from assistant.recommend.catalog import load_catalog

    config = load_config(args.config or default_config_path())
    examples = []
    if not args.templates_only:
        data = args.data or DEFAULT_DATA
        if not data.is_dir():
            raise AssistantError(f"NLU data folder {data} does not exist; pass --data DIR (laid out like "
                                 "../shared/data/nlu) or --templates-only")
        examples = load_corpus(data, seed=args.seed).training()
    songs = load_catalog(config.recommend).songs
    out = args.out or SHIPPED_MODEL_DIR
    train_model(examples, songs, out, TrainOptions(seed=args.seed))
    return 0
