"""Intent accuracy and slot F1 of the intent parser on public NLU data.

    .venv/bin/python bench/nlu_accuracy.py ../shared/data/nlu [--json OUT]

Three evaluations:

1. HWU64 test (fold 1) and SLURP devel, music/volume/stop intents, mapped to
   ours (play_music -> play, music_query -> what_is_playing, music_likeness ->
   like, music_dislikeness -> dislike, audio_volume_up/down -> volume_up/down,
   general_commandstop -> stop). Every other intent must come out "none"
   (false accepts are counted). Left out as ambiguous for our intent set:
   play_radio, play_podcasts, play_audiobook, music_settings (shuffle/repeat)
   and audio_volume_mute. The parser resolves names against the default
   catalog, as it does when deployed. "play" and "recommend" both produce a
   song list, so play_music -> recommend counts as correct; the strict figure
   is reported too. Slot F1 over artist, track, genre, playlist, album, service
   (HWU/SLURP artist_name, song_name, music_genre, playlist_name, music_album,
   app_name), exact match after normalization.

2. Snips 2017 PlayMusic training file, 5-fold cross-validation: the parser has
   no trained weights, so a fold's "training" is the gazetteer: artist, track
   and album names and genres of the other four folds (like Snips NLU's
   entity gazetteers). Slot F1 over all nine Snips slots; also grammar-only
   (no gazetteer). Negatives: 400 utterances from each of the five non-music
   Snips intents must be "none". Compared with Snips NLU's published
   per-slot precision/recall for PlayMusic trained on ~2000 queries
   (sonos/nlu-benchmark, 2017-06-custom-intent-engines, Snips_metrics_full.json),
   which used a held-out validation set, so the comparison is indicative.

Prints a Markdown table; --json writes every figure.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from assistant.asr.text import normalize_text
from assistant.nlu.gazetteer import Gazetteer
from assistant.nlu.parser import IntentParser

INTENT_MAP = {
    "play_music": "play", "music_query": "what_is_playing", "music_likeness": "like",
    "music_dislikeness": "dislike", "audio_volume_up": "volume_up", "audio_volume_down": "volume_down",
    "general_commandstop": "stop",
}
AMBIGUOUS = {"play_radio", "play_podcasts", "play_audiobook", "music_settings", "audio_volume_mute"}
SLOT_MAP = {"artist_name": "artist", "song_name": "track", "music_genre": "genre", "playlist_name": "playlist",
            "music_album": "album", "app_name": "service"}
HWU_SLURP_SLOTS = frozenset(SLOT_MAP.values())
SNIPS_SLOTS = frozenset({"artist", "album", "track", "playlist", "genre", "year", "sort", "service", "music_item"})
SNIPS_NEGATIVES = ("BookRestaurant", "GetWeather", "RateBook", "SearchCreativeWork", "SearchScreeningEvent")
NEGATIVES_PER_INTENT = 400
FOLDS = 5
# Snips NLU, PlayMusic, ~2000 training queries: slot -> (precision, recall, occurrences).
SNIPS_2017_PLAYMUSIC = {
    "album": (0.75, 0.6923, 8), "sort": (1.0, 0.7647, 17), "playlist": (0.625, 0.5556, 7),
    "service": (1.0, 0.9231, 38), "artist": (0.9167, 0.8730, 58), "track": (0.4286, 0.5, 10),
    "music_item": (0.9394, 1.0, 39), "year": (1.0, 1.0, 31), "genre": (0.4, 0.6667, 7),
}
_SPAN = re.compile(r"\[(\w+) : ([^\]]+)\]")


def _strip_annotation(text: str) -> str:
    return _SPAN.sub(lambda m: m.group(2), text)


def _gold_slots(annotation: str) -> set[tuple[str, str]]:
    return {(SLOT_MAP[t], normalize_text(v)) for t, v in _SPAN.findall(annotation) if t in SLOT_MAP}


def load_hwu(folder: Path) -> list[dict]:
    rows = []
    for path in sorted(folder.glob("*.csv")):
        with path.open(encoding="utf-8") as fh:
            for r in csv.DictReader(fh, delimiter=";"):
                label = f"{r['scenario']}_{r['intent']}"
                rows.append({"text": _strip_annotation(r["answer_annotation"]), "label": label,
                             "slots": _gold_slots(r["answer_annotation"])})
    return rows


def load_slurp(path: Path) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            if "_" not in d["intent"]:
                continue  # a few malformed labels ("music", "query")
            rows.append({"text": d["sentence"], "label": d["intent"], "slots": _gold_slots(d["sentence_annotation"])})
    return rows


def _fix_mojibake(text: str) -> str:
    """The Snips files are Latin-1 with some UTF-8 inside ("mÃºsica"); undo that where it applies."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def load_snips(path: Path, intent: str) -> list[dict]:
    data = json.loads(path.read_text(encoding="latin-1"))[intent]
    rows = []
    for ex in data:
        chunks = [{**c, "text": _fix_mojibake(c["text"])} for c in ex["data"]]
        text = "".join(chunk["text"] for chunk in chunks)
        slots = {(c["entity"], normalize_text(c["text"])) for c in chunks if "entity" in c}
        rows.append({"text": text, "label": intent, "slots": slots})
    return rows


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def predicted_slots(result, kinds: frozenset) -> set[tuple[str, str]]:
    return {(k, normalize_text(v)) for k, v in result.heard.items() if k in kinds}


def evaluate_mapped(parser: IntentParser, rows: list[dict]) -> dict:
    """Intent accuracy (in scope, strict and play~recommend), none rate on the rest, slot P/R/F1."""
    per_intent: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    strict_ok = ok = n_in = none_ok = n_out = 0
    tp = fp = fn = 0
    times = []
    confusion: Counter = Counter()
    for row in rows:
        if row["label"] in AMBIGUOUS:
            continue
        start = time.perf_counter()
        result = parser.parse(row["text"])
        times.append(time.perf_counter() - start)
        gold = INTENT_MAP.get(row["label"])
        if gold is None:
            n_out += 1
            none_ok += result.intent == "none"
            continue
        n_in += 1
        good = result.intent == gold or (gold == "play" and result.intent == "recommend")
        strict_ok += result.intent == gold
        ok += good
        per_intent[row["label"]][0] += good
        per_intent[row["label"]][1] += 1
        if not good:
            confusion[(row["label"], result.intent)] += 1
        pred = predicted_slots(result, HWU_SLURP_SLOTS)
        tp += len(pred & row["slots"])
        fp += len(pred - row["slots"])
        fn += len(row["slots"] - pred)
    p, r, f1 = prf(tp, fp, fn)
    return {
        "in_scope": n_in, "accuracy": ok / n_in, "accuracy_strict": strict_ok / n_in,
        "out_of_scope": n_out, "none_rate": none_ok / n_out if n_out else None,
        "overall_accuracy": (ok + none_ok) / (n_in + n_out),
        "per_intent": {k: round(v[0] / v[1], 3) for k, v in sorted(per_intent.items())},
        "per_intent_n": {k: v[1] for k, v in sorted(per_intent.items())},
        "slot_precision": p, "slot_recall": r, "slot_f1": f1, "slot_gold": tp + fn,
        "top_confusions": [f"{a}->{b}: {n}" for (a, b), n in confusion.most_common(6)],
        "parse_ms_p50": statistics.median(times) * 1000, "parse_ms_p95": sorted(times)[int(0.95 * len(times))] * 1000,
    }


def snips_cv(rows: list[dict], negatives: list[dict], use_gazetteer: bool, seed: int = 0) -> dict:
    rng = random.Random(seed)
    order = list(range(len(rows)))
    rng.shuffle(order)
    folds = [order[i::FOLDS] for i in range(FOLDS)]
    per_slot: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    intent_ok = n = 0
    for k in range(FOLDS):
        test = set(folds[k])
        gazetteer = None
        if use_gazetteer:
            names: dict[str, set[str]] = {"artist": set(), "track": set(), "album": set(), "genre": set()}
            for i in order:
                if i in test:
                    continue
                for kind, value in rows[i]["slots"]:
                    if kind in names:
                        names[kind].add(value)
            gazetteer = Gazetteer.from_names(names)
        parser = IntentParser(gazetteer)
        for i in folds[k]:
            row = rows[i]
            result = parser.parse(row["text"])
            n += 1
            intent_ok += result.intent in ("play", "recommend")
            pred = predicted_slots(result, SNIPS_SLOTS)
            for kind in SNIPS_SLOTS:
                g = {s for s in row["slots"] if s[0] == kind}
                q = {s for s in pred if s[0] == kind}
                per_slot[kind][0] += len(g & q)
                per_slot[kind][1] += len(q - g)
                per_slot[kind][2] += len(g - q)
    parser = IntentParser()
    none_ok = sum(parser.parse(r["text"]).intent == "none" for r in negatives)
    tp, fp, fn = (sum(v[j] for v in per_slot.values()) for j in range(3))
    p, r, f1 = prf(tp, fp, fn)
    return {"utterances": n, "play_accuracy": intent_ok / n, "negatives": len(negatives),
            "negatives_none_rate": none_ok / len(negatives), "slot_precision": p, "slot_recall": r, "slot_f1": f1,
            "per_slot_f1": {k: round(prf(*v)[2], 3) for k, v in sorted(per_slot.items())}}


def snips_2017_reference() -> dict:
    per_slot = {}
    tp = fp = fn = 0.0
    for slot, (p, r, count) in SNIPS_2017_PLAYMUSIC.items():
        per_slot[slot] = round(2 * p * r / (p + r), 3)
        found = r * count
        tp += found
        fn += count - found
        fp += found / p - found if p else 0.0
    return {"slot_f1_micro": prf(tp, fp, fn)[2], "per_slot_f1": per_slot}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("nlu_dir", type=Path, help="../shared/data/nlu")
    ap.add_argument("--json", type=Path, help="write all figures here")
    args = ap.parse_args(argv)
    if not (args.nlu_dir / "hwu64").is_dir():
        print(f"error: {args.nlu_dir} has no hwu64/ folder; expected ../shared/data/nlu", file=sys.stderr)
        return 2
    from assistant.recommend.catalog import DEFAULT_CATALOG
    from assistant.recommend.loaders import load_source

    catalog_parser = IntentParser(Gazetteer.from_songs(load_source(DEFAULT_CATALOG).songs))
    results = {
        "hwu64_test": evaluate_mapped(catalog_parser, load_hwu(args.nlu_dir / "hwu64" / "test")),
        "slurp_devel": evaluate_mapped(catalog_parser, load_slurp(args.nlu_dir / "slurp" / "devel.jsonl")),
    }
    snips_dir = args.nlu_dir / "snips-2017"
    play = load_snips(snips_dir / "train_PlayMusic_full.json", "PlayMusic")
    rng = random.Random(1)
    negatives = []
    for intent in SNIPS_NEGATIVES:
        rows = load_snips(snips_dir / f"train_{intent}_full.json", intent)
        negatives += rng.sample(rows, min(NEGATIVES_PER_INTENT, len(rows)))
    results["snips_playmusic_cv_gazetteer"] = snips_cv(play, negatives, use_gazetteer=True)
    results["snips_playmusic_cv_grammar_only"] = snips_cv(play, negatives, use_gazetteer=False)
    results["snips_nlu_2017_reference"] = snips_2017_reference()

    print("| data | in-scope utterances | intent accuracy (strict) | none on out-of-scope | slot F1 (P / R) | parse p50 / p95 |")
    print("|---|---|---|---|---|---|")
    for name in ("hwu64_test", "slurp_devel"):
        r = results[name]
        print(f"| {name} | {r['in_scope']} | {r['accuracy']:.3f} ({r['accuracy_strict']:.3f}) | "
              f"{r['none_rate']:.3f} of {r['out_of_scope']} | {r['slot_f1']:.3f} ({r['slot_precision']:.3f} / "
              f"{r['slot_recall']:.3f}) | {r['parse_ms_p50']:.2f} / {r['parse_ms_p95']:.2f} ms |")
    for name in ("snips_playmusic_cv_gazetteer", "snips_playmusic_cv_grammar_only"):
        r = results[name]
        print(f"| {name} | {r['utterances']} | {r['play_accuracy']:.3f} | {r['negatives_none_rate']:.3f} of "
              f"{r['negatives']} | {r['slot_f1']:.3f} ({r['slot_precision']:.3f} / {r['slot_recall']:.3f}) | |")
    ref = results["snips_nlu_2017_reference"]
    print(f"\nSnips NLU 2017 (PlayMusic, ~2000 training queries, held-out set): slot F1 {ref['slot_f1_micro']:.3f}")
    print("per slot, ours (CV, gazetteer) vs Snips 2017:")
    ours = results["snips_playmusic_cv_gazetteer"]["per_slot_f1"]
    for slot in sorted(ref["per_slot_f1"]):
        print(f"  {slot:11s} {ours.get(slot, 0):.3f} vs {ref['per_slot_f1'][slot]:.3f}")
    for name in ("hwu64_test", "slurp_devel"):
        print(f"{name} per intent: {results[name]['per_intent']}  n={results[name]['per_intent_n']}")
        print(f"{name} top confusions: {results[name]['top_confusions']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
