"""`assistant synth --config configs/corpus.toml [--out DIR] [--jobs N]`: build the speech corpus."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", dest="corpus_config", metavar="FILE", default="configs/corpus.toml",
                        help="corpus config (default: configs/corpus.toml)")
    parser.add_argument("--out", metavar="DIR", help="output folder (default: [corpus] out_dir, i.e. corpus/)")
    parser.add_argument("--data", metavar="DIR", help="data folder (default: [corpus] data_dir, i.e. ../shared/data)")
    parser.add_argument("--jobs", type=int, metavar="N", help="worker processes (default: [corpus] jobs = 2)")
    parser.add_argument("--plan-only", action="store_true", help="plan the clips and print text counts, make nothing")


def run(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from assistant.errors import AssistantError
    from assistant.training.corpus import build_corpus, load_config

    path = Path(args.corpus_config)
    cfg = load_config(path)
    if args.data:
        cfg = dataclasses.replace(cfg, corpus=dataclasses.replace(cfg.corpus, data_dir=str(Path(args.data).resolve())))
    if args.jobs is not None and not 1 <= args.jobs <= 64:
        raise AssistantError(f"--jobs: expected 1 to 64, got {args.jobs}")
    stats = build_corpus(cfg, out_dir=args.out, jobs=args.jobs, only_plan=args.plan_only)
    if args.plan_only:
        print(stats)
    return 0
