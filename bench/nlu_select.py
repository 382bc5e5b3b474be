"""Model selection and error analysis for the learned parser, on TRAINING data only.

    .venv/bin/python bench/nlu_select.py ../shared/data/nlu [--folds 5] [--variant JSON ...] [--errors OUT]

HWU64 test is the reported test set and is never looked at here. Each fold
k trains a model without fold k of HWU64 train (all its intents) and without
fold k of SLURP devel, then parses both held-out parts with the default
catalog, as `bench/nlu_accuracy.py` does: intent accuracy on the music,
volume and stop intents, `none` on the others, slot F1 (exact) overall and
per slot type, the top confusions. Snips is left out (its target is met and
its CV is in nlu_accuracy.py). The held-out splits of SLURP devel and Snips
PlayMusic (`nlu_accuracy.heldout_split`) are left out entirely: neither
trained on nor scored here, so no choice made here reads them.

`--variant '{"classifier_c": 2.0, "crf": {"c1": 0.1}}'` overrides
TrainOptions (several variants are trained on the same folds, so they are
compared on the same held-out utterances). `--errors OUT` writes the wrong
in-scope utterances of the first variant (gold vs predicted intent and slots)
as JSON lines.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nlu_accuracy import HWU_SLURP_SLOTS, Tally, folds_of, heldout_split, predicted  # noqa: E402

from assistant.nlu import datasets as D  # noqa: E402
from assistant.nlu.gazetteer import Gazetteer  # noqa: E402
from assistant.nlu.model import COMMON_WORDS_FILE, NluModel  # noqa: E402
from assistant.nlu.parser import IntentParser  # noqa: E402
from assistant.nlu.train import CatalogVocabulary, TrainOptions, common_words, template_examples, train_model  # noqa: E402


def options_of(override: dict) -> TrainOptions:
    override = dict(override)
    crf = override.pop("crf", None)
    base = TrainOptions(calibration_folds=0)
    if crf:
        base = dataclasses.replace(base, crf=dataclasses.replace(base.crf, **crf))
    return dataclasses.replace(base, **override)


def _key(override: dict) -> str:
    import hashlib

    return hashlib.sha1(json.dumps(override, sort_keys=True).encode()).hexdigest()[:10]


def score(parser: IntentParser, rows, tally: Tally, per_slot: dict, errors: list | None, where: str) -> None:
    for ex in rows:
        if ex.label in D.AMBIGUOUS or ex.intent is None:
            continue
        result = parser.parse(ex.text)
        tally.add(ex, result, set(ex.gold), HWU_SLURP_SLOTS)
        if ex.intent == "none":
            continue
        kinds = HWU_SLURP_SLOTS
        pred = predicted(result, kinds)
        gold = {g for g in ex.gold if g[0] in kinds}
        for kind in kinds:
            p = {s for s in pred if s[0] == kind}
            g = {s for s in gold if s[0] == kind}
            per_slot[kind][0] += len(p & g)
            per_slot[kind][1] += len(p - g)
            per_slot[kind][2] += len(g - p)
        good = result.intent == ex.intent or (ex.intent == "play" and result.intent == "recommend")
        if errors is not None and (not good or pred != gold):
            errors.append({"set": where, "label": ex.label, "text": ex.text, "gold_intent": ex.intent,
                           "intent": result.intent, "gold": sorted(gold), "pred": sorted(pred),
                           "tags": " ".join(f"{t}/{g}" for t, g in zip(ex.tokens, ex.tags) if g != "O")})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("nlu_dir", type=Path)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--only", type=int, default=0, help="run only the first N folds (quick comparisons)")
    ap.add_argument("--variant", action="append", default=[], help="TrainOptions overrides as JSON")
    ap.add_argument("--parser", action="append", default=[], help="IntentParser keyword arguments as JSON "
                    "(each is scored with every variant's models; no retraining)")
    ap.add_argument("--errors", type=Path)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--models", type=Path, help="keep fold models here and reuse those already there "
                    "(evaluation-side changes need no retraining)")
    args = ap.parse_args(argv)
    from assistant.recommend.catalog import DEFAULT_CATALOG
    from assistant.recommend.loaders import load_source

    songs = load_source(DEFAULT_CATALOG).songs
    catalog = Gazetteer.from_songs(songs)
    corpus = D.load_corpus(args.nlu_dir)
    variants = [json.loads(v) for v in args.variant] or [{}]
    parsers = [json.loads(v) for v in args.parser] or [{}]
    hwu_folds = folds_of(len(corpus.hwu_train), args.folds, seed=11)
    slurp_folds = folds_of(len(corpus.slurp_devel), args.folds)
    snips_out, slurp_out = heldout_split(corpus)
    tallies = defaultdict(Tally)
    per_slot = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))
    errors: list = []
    n = args.only or args.folds
    with tempfile.TemporaryDirectory() as tmp:
        root = args.models or Path(tmp)
        for k in range(n):
            drop_h, drop_s = set(hwu_folds[k]), set(slurp_folds[k]) - slurp_out
            train = [*[e for i, e in enumerate(corpus.snips_play) if i not in snips_out], *corpus.snips_add,
                     *corpus.snips_other, *[e for i, e in enumerate(corpus.hwu_train) if i not in drop_h],
                     *[e for i, e in enumerate(corpus.slurp_devel) if i not in drop_s | slurp_out]]
            for v, override in enumerate(variants):
                t0 = time.monotonic()
                folder = root / f"f{k}of{args.folds}-{_key(override)}"
                if (folder / "meta.json").is_file():
                    if not (folder / COMMON_WORDS_FILE).is_file():  # a model from before the file existed
                        data = [*train, *template_examples(CatalogVocabulary.from_songs(songs), options_of(override))]
                        (folder / COMMON_WORDS_FILE).write_text("\n".join(common_words(data)) + "\n")
                    model = NluModel.load(folder)
                else:
                    model = train_model(train, songs, folder, options_of(override), log=lambda *a: None)
                for p, kwargs in enumerate(parsers):
                    parser = IntentParser(catalog, model=model, **kwargs)
                    for where, rows in (("hwu_train", [corpus.hwu_train[i] for i in sorted(drop_h)]),
                                        ("slurp", [corpus.slurp_devel[i] for i in sorted(drop_s)])):
                        score(parser, rows, tallies[(v, p, where)], per_slot[(v, p, where)],
                              errors if v == 0 and p == 0 else None, where)
                print(f"fold {k + 1}/{n} variant {v} ({time.monotonic() - t0:.0f} s)", file=sys.stderr, flush=True)
    out = {}
    for (v, p, where), tally in sorted(tallies.items()):
        s = tally.summary()
        slots = {kind: round(2 * tp / (2 * tp + fp + fn), 3) if tp + fp + fn else None
                 for kind, (tp, fp, fn) in sorted(per_slot[(v, p, where)].items())}
        slots_n = {kind: tp + fn for kind, (tp, fp, fn) in sorted(per_slot[(v, p, where)].items())}
        out[f"{v}/{p}/{where}"] = {**s, "per_slot_f1": slots, "per_slot_gold": slots_n, "variant": variants[v],
                                   "parser": parsers[p]}
        print(f"variant {v} {json.dumps(variants[v])} parser {json.dumps(parsers[p])} {where}: "
              f"intent {s['accuracy']:.3f} of {s['in_scope']}, "
              f"none {s['none_rate']:.3f} of {s['out_of_scope']}, slot F1 {s['slot_f1']:.3f} "
              f"(P {s['slot_precision']:.2f} R {s['slot_recall']:.2f}, {s['slot_gold']} gold)")
        print(f"    per slot F1 {slots} gold {slots_n}")
        print(f"    per intent {s['per_intent']}")
        print(f"    confusions {s['top_confusions']}")
    if args.errors:
        args.errors.write_text("".join(json.dumps(e) + "\n" for e in errors))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
