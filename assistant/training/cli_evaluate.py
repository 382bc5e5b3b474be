"""`assistant evaluate --manifest FILE.jsonl [--decoder greedy|beam|two-pass|whisper] [--json]`."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", required=True, action="append", help='JSONL lines {"audio", "text"}; audio paths may be relative to the manifest; repeatable')
    parser.add_argument("--decoder", choices=("greedy", "beam", "two-pass", "whisper"), default="beam",
                        help="beam = catalog-biased beam search; two-pass = that beam, then the catalog-prompted Whisper "
                             "second pass and the choice between them, as the daemon decodes finals; whisper = Whisper alone")
    parser.add_argument("--model", help="checkpoint to use instead of [asr] model_path")
    parser.add_argument("--limit", type=int, default=0, help="evaluate only the first N clips")
    parser.add_argument("--json", action="store_true", help="one JSON object per manifest with the summary and every utterance")
    parser.add_argument("--quiet", action="store_true", help="summary only, no per-utterance lines")


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from assistant.asr.bias import catalog_phrases
    from assistant.asr.recognizer import Recognizer
    from assistant.config import default_config_path, load_config
    from assistant.training.evaluate import evaluate_manifest

    cfg = load_config(args.config or default_config_path())
    asr_cfg = replace(cfg.asr, model_path=args.model) if args.model else cfg.asr
    recognizer = Recognizer.load(asr_cfg)
    second = None
    if args.decoder in ("two-pass", "whisper"):
        from assistant.asr.second_pass_factory import load_second_pass

        second = load_second_pass(asr_cfg)
        second.set_rescore(cfg.rescore)
    if args.decoder in ("beam", "two-pass"):
        phrases = catalog_phrases(cfg)
        recognizer.set_bias(phrases)
        if second is not None:
            second.set_names(phrases)
    for manifest in args.manifest:
        report = evaluate_manifest(recognizer, manifest, args.decoder, asr_cfg.chunk_ms, args.limit, second)
        summary = report.summary()
        if args.json:
            print(json.dumps({**summary, "skipped_lines": report.skipped, "items": report.items}))
            continue
        if not args.quiet:
            for item in report.items:
                mark = "  " if item["wer"] == 0 else "! "
                print(f"{mark}ref: {item['ref']}\n{mark}hyp: {item['hyp']}")
        for s in report.skipped:
            print(f"skipped {s}")
        print(f"{manifest}: WER {summary['wer']:.2%}  CER {summary['cer']:.2%}  utterances {summary['utterances']}  "
              f"sentences exact {summary['sentence_accuracy']:.1%}  skipped {summary['skipped']}  "
              f"RTF {summary['rtf_median']}  final latency p50 {summary['final_latency_ms_p50']} ms")
    return 0
