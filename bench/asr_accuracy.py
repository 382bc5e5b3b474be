"""Accuracy of the shipped recognizer on every evaluation set: greedy, catalog-biased beam, Whisper alone, two-pass.

    .venv/bin/python bench/asr_accuracy.py [--corpus corpus] [--model models/asr.pt] [--decoders greedy beam whisper two-pass]

Evaluation sets (built by `assistant synth`; never trained or tuned on): reserved voices
speaking held-out commands, the seed sentence by each reserved voice, LJ002,
LibriSpeech test-clean mini, FSDD speaker theo (digit accuracy = sentence
accuracy), and with --corpus corpus/v2 speechocean762's held-out speakers.
Decoders: the CTC first pass greedy and with the catalog-biased beam; the
Whisper second pass alone (unprompted, no choice rule); two-pass = the beam,
then Whisper prompted with the catalog names the beam heard and the choice
rule, as the daemon's finals (`[asr] final_pass = "whisper"`). Final latency is
the time from the last audio piece to the final text on this machine, one
thread, with no hangover to hide it (the daemon starts the second pass at the
pause). Prints Markdown tables for bench/RESULTS.md and models/MODEL_CARD.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from pathlib import Path

from assistant.asr.bias import catalog_phrases
from assistant.asr.recognizer import Recognizer
from assistant.config import load_config
from assistant.training.evaluate import DECODERS, EVAL_SETS, evaluate_manifest

EXTRA_SETS = (("eval_speechocean", "speechocean762 held-out speakers (real, non-native)"),)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default="corpus")
    ap.add_argument("--model", default="models/asr.pt")
    ap.add_argument("--decoders", nargs="+", choices=DECODERS, default=list(DECODERS))
    ap.add_argument("--limit", type=int, default=0, help="clips per set (0 = all)")
    ap.add_argument("--sets", nargs="+", help="only these evaluation sets (file stems, e.g. eval_speechocean)")
    ap.add_argument("--json", help="also write every utterance's ref/hyp here")
    args = ap.parse_args()
    cfg = load_config()
    asr = dataclasses.replace(cfg.asr, model_path=args.model)
    rec = Recognizer.load(asr)
    phrases = catalog_phrases(cfg)
    rec.set_bias(phrases)
    second = None
    if {"whisper", "two-pass"} & set(args.decoders):
        from assistant.asr.second_pass import SecondPassOptions, WhisperSecondPass

        second = WhisperSecondPass.load(SecondPassOptions.from_config(asr))
        second.set_names(phrases)
    o = second.options if second else None
    t = rec.loaded.training
    trained = f"{t.get('steps', '?')} steps, {t.get('train_hours', '?')} h of training audio" if t else "no training record"
    print(f"First pass: {args.model} ({trained}, file modified {time.strftime('%Y-%m-%d %H:%M', time.localtime(Path(rec.loaded.path).stat().st_mtime))}); "
          f"{platform.machine()}, {asr.threads} thread(s), load average {os.getloadavg()[0]:.1f}; {time.strftime('%Y-%m-%d')}")
    if o:
        print(f"Second pass: Whisper tiny.en ({second.path.name}), {'int8' if o.int8 else 'fp32'}, beam {o.beam_size}, "
              f"pad {o.pad_ms} ms, {o.prompt_names} prompt names, rule {dataclasses.asdict(o.rule)}")
    print()
    head = "| set | clips | " + " | ".join(f"{d} WER" for d in args.decoders) + " | " + \
        " | ".join(f"{d} exact" for d in args.decoders) + " | " + \
        " | ".join(f"{d} final latency p50 / p95 (ms)" for d in args.decoders) + " | two-pass: whisper / ctc / dropped |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    dump = {}
    for name, title in EVAL_SETS + EXTRA_SETS:
        if args.sets and name not in args.sets:
            continue
        manifest = Path(args.corpus) / f"{name}.jsonl"
        if not manifest.is_file():
            if (name, title) in EVAL_SETS:
                print(f"| {title} | missing {manifest} |")
            continue
        reports = {d: evaluate_manifest(rec, manifest, d, asr.chunk_ms, args.limit, second) for d in args.decoders}
        summaries = {d: r.summary() for d, r in reports.items()}
        dump[name] = {d: r.items for d, r in reports.items()}
        n = next(iter(summaries.values()))["utterances"]
        sources = ""
        if "two-pass" in reports:
            count = lambda s: sum(i.get("final_pass") == s for i in reports["two-pass"].items)  # noqa: E731
            sources = f"{count('whisper')} / {count('ctc')} / {count('dropped')}"
        print(f"| {title} | {n} | " + " | ".join(f"{summaries[d]['wer']:.1%}" for d in args.decoders) + " | "
              + " | ".join(f"{summaries[d]['sentence_accuracy']:.1%}" for d in args.decoders) + " | "
              + " | ".join(f"{summaries[d]['final_latency_ms_p50']:.0f} / {summaries[d]['final_latency_ms_p95']:.0f}"
                           for d in args.decoders) + f" | {sources} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(dump, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
