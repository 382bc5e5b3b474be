"""The seed's architecture comparison, reproduced on our corpus with an equal budget.

    .venv/bin/python bench/asr_compare.py --config configs/train.toml --steps 600
    .venv/bin/python bench/asr_compare.py --subset fsdd --steps 1000 --batch-frames 1500 --threads 1

Trains the variants for the same number of optimizer steps on the same data
and batches, then reports validation CTC loss, CER and WER (greedy, offline
forward; for the streaming models that equals their streaming output):

    cnn-lstm           CNN front end + LSTM (no residual blocks), unidirectional, no lookahead
    cnn-bigru          CNN front end + bidirectional GRU (offline)
    cnn-resnet-bigru   CNN + residual blocks + bidirectional GRU (offline; the seed's model)
    ours-streaming     CNN + residual blocks + unidirectional GRU + 60 ms lookahead (the first shipped design)
    whisper-streaming  Whisper tiny.en's pretrained encoder, chunk-causal (320 ms chunks), CTC head
                       ([model] of --whisper-config, the shipped design)

`--subset fsdd` trains every variant on a small common set: the Free Spoken
Digit Dataset clips of corpus/train.jsonl from four speakers, validated on the
fifth (lucas); so a budget every model can afford is enough to leave CTC's
all-blank stage. The GRU family trains in fp32 here, like the Whisper family
(bf16 autocast is ~10x slower on CPUs without native bf16).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
from pathlib import Path

from assistant.training.train import load_experiment, train

WHISPER = "whisper-streaming"
FSDD_VALID_SPEAKER = "fsdd/lucas"
VARIANTS = {
    "cnn-lstm": dict(rnn_type="lstm", residual_blocks=0, bidirectional=False, lookahead_frames=0),
    "cnn-bigru": dict(rnn_type="gru", residual_blocks=0, bidirectional=True, lookahead_frames=0),
    "cnn-resnet-bigru": dict(rnn_type="gru", residual_blocks=2, bidirectional=True, lookahead_frames=0),
    "ours-streaming": dict(rnn_type="gru", residual_blocks=2, bidirectional=False, lookahead_frames=3),
    WHISPER: {},
}


def fsdd_subset(corpus_train: Path, out: Path) -> tuple[str, str]:
    """FSDD rows of corpus/train.jsonl: four speakers train, FSDD_VALID_SPEAKER validates (audio paths made absolute)."""
    import json

    out.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(line) for line in corpus_train.read_text().splitlines() if line.strip()]
    rows = [dict(r, audio=str((corpus_train.parent / r["audio"]).resolve())) for r in rows if r.get("source") == "fsdd"]
    if not rows:
        raise SystemExit(f"no FSDD clips in {corpus_train}: build the corpus first (make corpus)")
    for name, keep in (("train", lambda r: r["speaker"] != FSDD_VALID_SPEAKER), ("valid", lambda r: r["speaker"] == FSDD_VALID_SPEAKER)):
        (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows if keep(r)))
    return str(out / "train.jsonl"), str(out / "valid.jsonl")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/train.toml")
    ap.add_argument("--steps", type=int, default=600, help="optimizer steps per variant (the equal budget)")
    ap.add_argument("--epochs", type=int, default=3, help="epochs the one-cycle schedule spans (cut at --steps)")
    ap.add_argument("--batch-frames", type=int, default=0, help="padded frames per batch (0 = the config's)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads per run (0 = the config's)")
    ap.add_argument("--out", default="runs/compare")
    ap.add_argument("--only", nargs="*", choices=list(VARIANTS), help="run only these variants")
    ap.add_argument("--whisper-config", default="configs/train_whisper.toml",
                    help="[model] and learning rates of the whisper-streaming variant")
    ap.add_argument("--subset", choices=["config", "fsdd"], default="config",
                    help="the config's manifests, or the small common FSDD set (see above)")
    ap.add_argument("--corpus", default="corpus", help="where --subset fsdd finds train.jsonl")
    args = ap.parse_args()
    base = load_experiment(args.config)
    if args.subset == "fsdd":
        train_m, valid_m = fsdd_subset(Path(args.corpus) / "train.jsonl", Path(args.out) / "data")
        base = dataclasses.replace(base, train=dataclasses.replace(base.train, train_manifests=(train_m,), valid_manifest=valid_m,
                                                                   feature_cache_dir=str(Path(args.out) / "cache"), bf16=False))
    rows = []
    from assistant.asr.architectures import build_model
    from assistant.asr.network import count_parameters

    for name, changes in VARIANTS.items():
        if args.only and name not in args.only:
            continue
        out_dir = Path(args.out) / name
        tcfg = dataclasses.replace(base.train, out_dir=str(out_dir), export_path="", epochs=args.epochs, max_steps=args.steps,
                                   stop_after_epochs=0, init_checkpoint="", eval_every_steps=0,
                                   feature_cache_dir=base.train.feature_cache_dir or str(Path(base.train.out_dir) / "cache"),
                                   batch_frames=args.batch_frames or base.train.batch_frames,
                                   threads=args.threads or base.train.threads)
        if name == WHISPER:
            wexp = load_experiment(args.whisper_config)
            w = wexp.train
            tcfg = dataclasses.replace(tcfg, init_encoder=w.init_encoder, encoder_lr_scale=w.encoder_lr_scale, lr_max=w.lr_max,
                                       chunk_frames_choices=w.chunk_frames_choices, left_chunks_choices=w.left_chunks_choices,
                                       bf16=False)
            exp = dataclasses.replace(base, train=tcfg, model=wexp.model, specaugment=wexp.specaugment)
        else:
            exp = dataclasses.replace(base, train=tcfg, model=dataclasses.replace(base.model, **changes))
        if not (out_dir / "metrics.csv").is_file():
            train(exp)
        with (out_dir / "metrics.csv").open() as f:
            last = list(csv.DictReader(f))[-1]
        rows.append((name, count_parameters(build_model(exp.model)), last))
    frames = args.batch_frames or base.train.batch_frames
    data = "the FSDD subset (4 speakers train, lucas validates)" if args.subset == "fsdd" else "the same data"
    print(f"\nEqual budget: {args.steps} steps of {frames} padded frames each, {data}, same order and seed.\n")
    print("| model | parameters | steps | train time (s) | valid loss | valid CER | valid WER |")
    print("|---|---|---|---|---|---|---|")
    for name, params, r in rows:
        print(f"| {name} | {params / 1e6:.2f} M | {r['step']} | {r['elapsed_s']} | {float(r['valid_loss']):.3f} | "
              f"{float(r['valid_cer']):.3f} | {float(r['valid_wer']):.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
