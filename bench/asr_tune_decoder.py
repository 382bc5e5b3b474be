"""Grid search of the final beam search's weights on the validation manifest (never on evaluation sets).

    .venv/bin/python bench/asr_tune_decoder.py [--manifest corpus/valid.jsonl] [--limit 200]

The network runs once per clip (streaming path); each (lm_weight, word_bonus, hotword_weight) setting then
decodes the stored log-probabilities with the catalog bias the daemon uses. Prints WER per setting, best
first; copy the best into config.toml's [asr] section.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import time

import numpy as np

from assistant.asr.metrics import ErrorRates


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", default="corpus/valid.jsonl")
    ap.add_argument("--model", default="models/asr.pt")
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--lm-weight", type=float, nargs="+", default=[0.3, 0.5, 0.8, 1.2])
    ap.add_argument("--word-bonus", type=float, nargs="+", default=[0.5, 1.0, 2.0, 3.0])
    ap.add_argument("--hotword-weight", type=float, nargs="+", default=[1.5, 3.0])
    args = ap.parse_args()

    from assistant.errors import AssistantError
    from assistant.training.manifest import check_training_manifest
    try:  # tuning is never done on evaluation data
        check_training_manifest(args.manifest)
    except AssistantError as exc:
        raise SystemExit(f"error: {exc}") from None

    from assistant.asr.bias import catalog_phrases
    from assistant.asr.checkpoint import load_model
    from assistant.asr.recognizer import Recognizer
    from assistant.audio.io import load_audio
    from assistant.config import load_config, resolve_path
    from assistant.training.manifest import read_training_manifest

    cfg = load_config()
    loaded = load_model(resolve_path(args.model))
    phrases = catalog_phrases(cfg)
    rec = Recognizer(loaded, cfg.asr)
    entries, _ = read_training_manifest(args.manifest)
    clips = []
    for e in entries[: args.limit or None]:
        sess = rec.new_session()
        sess.accept(load_audio(e.audio))
        greedy = sess.finish(beam=False)
        clips.append((e.text, greedy, np.concatenate(sess.log_probs, axis=0)))
    base = ErrorRates()
    for ref, hyp, _ in clips:
        base.add(ref, hyp)
    print(f"{len(clips)} clips of {args.manifest}; greedy WER {base.wer:.1%}")
    rows = []
    for lm_w, bonus, hot in itertools.product(args.lm_weight, args.word_bonus, args.hotword_weight):
        r = Recognizer(loaded, dataclasses.replace(cfg.asr, lm_weight=lm_w, word_bonus=bonus, hotword_weight=hot))
        r.set_bias(phrases)
        rates, start = ErrorRates(), time.perf_counter()
        for ref, _, lp in clips:
            rates.add(ref, r.decoder.decode(lp))
        rows.append((rates.wer, rates.cer, lm_w, bonus, hot, (time.perf_counter() - start) / len(clips) * 1000))
        print(f"lm_weight {lm_w} word_bonus {bonus} hotword_weight {hot}: WER {rates.wer:.1%} CER {rates.cer:.1%}", flush=True)
    print("\n| lm_weight | word_bonus | hotword_weight | WER | CER | ms per clip |\n|---|---|---|---|---|---|")
    for w, c, lm_w, bonus, hot, ms in sorted(rows)[:8]:
        print(f"| {lm_w} | {bonus} | {hot} | {w:.1%} | {c:.1%} | {ms:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
