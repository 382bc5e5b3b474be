"""Accuracy of the shipped recognizer on every evaluation set, greedy and catalog-biased beam.

    .venv/bin/python bench/asr_accuracy.py [--corpus corpus] [--model models/asr.pt]

Evaluation sets (built by `assistant synth`; never trained on): reserved voices
speaking held-out commands, the seed sentence by each reserved voice, LJ002,
LibriSpeech test-clean mini, FSDD speaker theo (digit accuracy = sentence
accuracy). Prints a Markdown table for models/MODEL_CARD.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from assistant.asr.bias import catalog_phrases
from assistant.asr.recognizer import Recognizer
from assistant.config import load_config
from assistant.training.evaluate import EVAL_SETS, evaluate_manifest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default="corpus")
    ap.add_argument("--model", default="models/asr.pt")
    ap.add_argument("--json", help="also write every utterance's ref/hyp here")
    args = ap.parse_args()
    cfg = load_config()
    rec = Recognizer.load(dataclasses.replace(cfg.asr, model_path=args.model))
    rec.set_bias(catalog_phrases(cfg))
    print("| set | clips | greedy WER | greedy CER | beam WER | beam CER | beam sentences exact | RTF | final latency p50 (ms) |")
    print("|---|---|---|---|---|---|---|---|---|")
    dump = {}
    for name, title in EVAL_SETS:
        manifest = Path(args.corpus) / f"{name}.jsonl"
        if not manifest.is_file():
            print(f"| {title} | missing {manifest} | | | | | | | |")
            continue
        g = evaluate_manifest(rec, manifest, "greedy").summary()
        b_report = evaluate_manifest(rec, manifest, "beam")
        b = b_report.summary()
        dump[name] = b_report.items
        print(f"| {title} | {b['utterances']} | {g['wer']:.1%} | {g['cer']:.1%} | {b['wer']:.1%} | {b['cer']:.1%} | "
              f"{b['sentence_accuracy']:.1%} | {b['rtf_median']} | {b['final_latency_ms_p50']} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(dump, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
