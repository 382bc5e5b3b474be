"""`assistant train --config FILE [--resume]`."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", dest="train_config", required=True, metavar="FILE", help="training config TOML (see configs/)")
    parser.add_argument("--resume", action="store_true", help="continue from out_dir/train_state.pt when present")


def run(args: argparse.Namespace) -> int:
    from assistant.training.train import load_experiment, train

    best = train(load_experiment(args.train_config), resume=args.resume)
    print(f"best checkpoint: {best}")
    return 0
