"""The seed's architecture comparison, reproduced on our corpus with an equal budget.

    .venv/bin/python bench/asr_compare.py --config configs/train.toml --steps 600

Trains four variants for the same number of optimizer steps on the same data
and batches, then reports validation CTC loss, CER and WER (greedy, offline
forward; for the streaming model that equals its streaming output):

    cnn-lstm           CNN front end + LSTM (no residual blocks), unidirectional, no lookahead
    cnn-bigru          CNN front end + bidirectional GRU (offline)
    cnn-resnet-bigru   CNN + residual blocks + bidirectional GRU (offline; the seed's model)
    ours-streaming     CNN + residual blocks + unidirectional GRU + 60 ms lookahead (shipped design)
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
from pathlib import Path

from assistant.training.train import load_experiment, train

VARIANTS = {
    "cnn-lstm": dict(rnn_type="lstm", residual_blocks=0, bidirectional=False, lookahead_frames=0),
    "cnn-bigru": dict(rnn_type="gru", residual_blocks=0, bidirectional=True, lookahead_frames=0),
    "cnn-resnet-bigru": dict(rnn_type="gru", residual_blocks=2, bidirectional=True, lookahead_frames=0),
    "ours-streaming": dict(rnn_type="gru", residual_blocks=2, bidirectional=False, lookahead_frames=3),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/train.toml")
    ap.add_argument("--steps", type=int, default=600, help="optimizer steps per variant (the equal budget)")
    ap.add_argument("--epochs", type=int, default=3, help="epochs the one-cycle schedule spans (cut at --steps)")
    ap.add_argument("--batch-frames", type=int, default=0, help="padded frames per batch (0 = the config's)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads per run (0 = the config's)")
    ap.add_argument("--out", default="runs/compare")
    ap.add_argument("--only", nargs="*", choices=list(VARIANTS), help="run only these variants")
    args = ap.parse_args()
    base = load_experiment(args.config)
    rows = []
    for name, changes in VARIANTS.items():
        if args.only and name not in args.only:
            continue
        out_dir = Path(args.out) / name
        tcfg = dataclasses.replace(base.train, out_dir=str(out_dir), export_path="", epochs=args.epochs, max_steps=args.steps,
                                   stop_after_epochs=0, init_checkpoint="",
                                   feature_cache_dir=base.train.feature_cache_dir or str(Path(base.train.out_dir) / "cache"),
                                   batch_frames=args.batch_frames or base.train.batch_frames,
                                   threads=args.threads or base.train.threads)
        mcfg = dataclasses.replace(base.model, **changes)
        exp = dataclasses.replace(base, train=tcfg, model=mcfg)
        if not (out_dir / "metrics.csv").is_file():
            train(exp)
        with (out_dir / "metrics.csv").open() as f:
            last = list(csv.DictReader(f))[-1]
        from assistant.asr.network import StreamingCTC, count_parameters

        rows.append((name, count_parameters(StreamingCTC(mcfg)), last))
    frames = args.batch_frames or base.train.batch_frames
    print(f"\nEqual budget: {args.steps} steps of {frames} padded frames each, same data, order and seed.\n")
    print("| model | parameters | steps | train time (s) | valid loss | valid CER | valid WER |")
    print("|---|---|---|---|---|---|---|")
    for name, params, r in rows:
        print(f"| {name} | {params / 1e6:.2f} M | {r['step']} | {r['elapsed_s']} | {float(r['valid_loss']):.3f} | "
              f"{float(r['valid_cer']):.3f} | {float(r['valid_wer']):.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
