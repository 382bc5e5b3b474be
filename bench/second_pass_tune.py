"""Tune the Whisper second pass on the VALIDATION set only: padding, prompt, beam, and the choice rule.

    .venv/bin/python bench/second_pass_tune.py --manifest corpus/valid.jsonl [--limit 300] [--cache /tmp/sp.json]

For every clip: the first pass's greedy partial and catalog-biased beam final (models/asr.pt unless
--model), then Whisper variants that differ in one option each from the configured ones (prompt names
from the partial, as the daemon has them at the pause): the silence appended before the encoder (0 =
the utterance's real length, 30000 = Whisper's own 30 s window), no catalog prompt, prompt names from
the beam final instead, a beam of 3. Prints each variant's WER as Whisper alone (its raw text, no rule) and its time per clip,
then a grid over the choice rule (ChoiceRule fields) on the configured variant, best first.
Evaluation sets are never tuned on: pass a validation manifest.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import platform
import statistics
import time
from pathlib import Path

from assistant.asr.metrics import ErrorRates


# Variants decoded on every clip, and the costlier ones decoded on the first --subset clips only.
def variants(base) -> tuple[dict[str, dict], dict[str, dict]]:
    every = {"configured": {}, "no prompt": {"prompt_names": 0}, "prompt from the beam final": {}}
    some = {f"pad {pad} ms": {"pad_ms": pad} for pad in (0, 500, 30000) if pad != base.pad_ms}
    if base.beam_size == 1:
        some["beam 3"] = {"beam_size": 3}
    return every, some


def run_clips(args, done: list[dict] = (), save=None) -> dict:
    import torch

    from assistant.asr.bias import catalog_phrases
    from assistant.asr.recognizer import Recognizer
    from assistant.asr.second_pass import SecondPassOptions, WhisperSecondPass
    from assistant.audio.io import load_audio
    from assistant.config import load_config
    from assistant.training.manifest import read_training_manifest

    cfg = load_config()
    asr = dataclasses.replace(cfg.asr, model_path=args.model) if args.model else cfg.asr
    rec = Recognizer.load(asr)
    torch.set_num_threads(asr.threads)
    phrases = catalog_phrases(cfg)
    rec.set_bias(phrases)
    base = WhisperSecondPass.load(SecondPassOptions.from_config(asr))
    base.set_names(phrases)
    every, some = variants(base.options)
    specs = {**every, **some}

    def describe(clips, complete: bool) -> dict:
        return {"manifest": str(args.manifest), "model": str(rec.loaded.path), "machine": platform.machine(),
                "threads": asr.threads, "variants": specs, "clips": clips, "complete": complete}
    passes = {name: base.with_options(**changes) for name, changes in specs.items()}
    entries, _ = read_training_manifest(args.manifest)
    clips = list(done)
    seen = {c["audio"] for c in clips}
    for e in entries[: args.limit or None]:
        if str(e.audio) in seen:
            continue
        audio = load_audio(e.audio)
        sess, partial = rec.new_session(), ""
        step = 16000 * asr.chunk_ms // 1000
        for i in range(0, len(audio), step):
            partial = sess.accept(audio[i:i + step])
        ctc = sess.finish(beam=True)
        row = {"audio": str(e.audio), "ref": e.text, "ctc": ctc, "partial": partial, "seconds": len(audio) / 16000,
               "whisper": {}}
        for name, sp in passes.items():
            if name in some and len(clips) >= args.subset:
                continue
            names = sp.prompt_names(ctc if name == "prompt from the beam final" else partial)
            h = sp.transcribe(audio, names)
            row["whisper"][name] = {**dataclasses.asdict(h), "prompt": list(h.prompt)}
        row["scores"] = first_pass_scores(sess, row)
        clips.append(row)
        if len(clips) % 10 == 0:
            print(f"  {len(clips)} clips", flush=True)
            if save is not None:
                save(describe(clips, complete=False))
    return describe(clips, complete=True)


def first_pass_scores(sess, row: dict) -> dict[str, float]:
    """The finished first-pass session's CTC log-likelihood per frame of the texts the rule compares."""
    from assistant.asr.text import normalize_text

    texts = {normalize_text(row["ctc"])} | {normalize_text(w["text"]) for w in row["whisper"].values()}
    return {t: sess.log_likelihood(t) for t in texts}


def add_scores(clips: list[dict], model: str | None) -> None:
    """Scores for clips cached before they were recorded (the first pass again: cheap)."""
    import dataclasses as dc

    from assistant.asr.recognizer import Recognizer
    from assistant.audio.io import load_audio
    from assistant.config import load_config

    asr = load_config().asr
    rec = Recognizer.load(dc.replace(asr, model_path=model) if model else asr)
    step = 16000 * asr.chunk_ms // 1000
    for c in clips:
        if "scores" in c:
            continue
        audio, sess = load_audio(c["audio"]), rec.new_session()
        for i in range(0, len(audio), step):
            sess.accept(audio[i:i + step])
        sess.finish(beam=False)
        c["scores"] = first_pass_scores(sess, c)


def rule_grid():
    from assistant.asr.second_pass import ChoiceRule

    for ns_alone, drop, floor, margin in itertools.product((0.8, 0.9, 0.95, 1.01), (-0.8, -1.0, -1.2, -1.5, -2.0, -99.0),
                                                           (None, -1.5, -1.8, -2.0, -2.5, -99.0),
                                                           (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)):
        fallback = dict(ctc_fallback=False) if floor is None else dict(ctc_fallback=True, fallback_min_logprob=floor)
        if floor is not None and floor > drop:
            continue
        yield ChoiceRule(no_speech_alone=ns_alone, drop_logprob=drop, prefer_ctc_names=False, acoustic_margin=margin,
                         **fallback)
        for similarity in () if margin else (0.5, 0.7, 0.85):
            yield ChoiceRule(no_speech_alone=ns_alone, drop_logprob=drop, prefer_ctc_names=True,
                             names_min_similarity=similarity, **fallback)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", required=True, help="a VALIDATION manifest (corpus/valid.jsonl)")
    ap.add_argument("--model", help="first-pass checkpoint (default [asr] model_path)")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--subset", type=int, default=150, help="clips that also get the costlier variants (padding, beam)")
    ap.add_argument("--cache", help="JSON file: written after decoding, read instead of decoding when it exists")
    args = ap.parse_args()
    from assistant.errors import AssistantError
    from assistant.training.manifest import check_training_manifest
    try:  # also when decoding is read from the cache: no evaluation data tunes the rule
        check_training_manifest(args.manifest)
    except AssistantError as exc:
        raise SystemExit(f"error: {exc}") from None
    cached = json.loads(Path(args.cache).read_text()) if args.cache and Path(args.cache).is_file() else None
    if cached is not None and cached.get("complete", True):
        data = cached
    else:  # decode (resuming a partial cache: it is written every 10 clips)
        t0 = time.perf_counter()
        save = (lambda d: Path(args.cache).write_text(json.dumps(d))) if args.cache else None
        data = run_clips(args, cached["clips"] if cached else [], save)
        print(f"decoded {len(data['clips'])} clips in {time.perf_counter() - t0:.0f} s")
        if save:
            save(data)

    from assistant.asr.second_pass import CatalogNames, ChoiceRule, WhisperHypothesis, choose
    from assistant.asr.bias import catalog_phrases
    from assistant.config import load_config

    clips = data["clips"]
    if any("scores" not in c for c in clips):
        add_scores(clips, args.model)
        if args.cache:
            Path(args.cache).write_text(json.dumps(data))
    print(f"\n{data['manifest']}: {len(clips)} clips, first pass {data['model']}, {data['machine']}, {data['threads']} thread(s)\n")
    ctc = ErrorRates()
    for c in clips:
        ctc.add(c["ref"], c["ctc"])
    print("| final | WER | sentences exact | Whisper time per clip p50 / p95 (ms) |")
    print("|---|---|---|---|")
    print(f"| CTC beam (first pass) | {ctc.wer:.1%} | {ctc.exact / max(ctc.utterances, 1):.1%} | |")
    for name in data["variants"]:
        r = ErrorRates()
        times = []
        subset = [c for c in clips if name in c["whisper"]]
        if not subset:
            continue
        for c in subset:
            w = c["whisper"][name]
            r.add(c["ref"], w["text"])
            times.append(w["seconds"] * 1000)
        q = statistics.quantiles(times, n=20) if len(times) >= 2 else times * 19
        if len(subset) < len(clips):  # the same clips with the configured options, for comparison
            ref = ErrorRates()
            for c in subset:
                ref.add(c["ref"], c["whisper"]["configured"]["text"])
            name = f"{name} (first {len(subset)} clips; configured: {ref.wer:.1%})"
        print(f"| Whisper alone, {name} | {r.wer:.1%} | {r.exact / max(r.utterances, 1):.1%} | "
              f"{statistics.median(times):.0f} / {q[18]:.0f} |")

    names = CatalogNames(catalog_phrases(load_config()))
    results = []
    for rule in rule_grid():
        r = ErrorRates()
        sources: dict[str, int] = {}
        for c in clips:
            h = WhisperHypothesis(**{**c["whisper"]["configured"], "prompt": tuple(c["whisper"]["configured"]["prompt"])})
            choice = choose(c["ctc"], h, rule, names, c["scores"].get)
            r.add(c["ref"], choice.text)
            sources[choice.source] = sources.get(choice.source, 0) + 1
        results.append((r.wer, rule, sources, r.exact / max(r.utterances, 1)))
    results.sort(key=lambda x: x[0])
    default = ChoiceRule()
    print("\nchoice rule grid on the configured variant (best 15, then the default):\n")
    print("| WER | exact | no_speech_alone | drop_logprob | CTC fallback | acoustic_margin | prefer_ctc_names (similarity) | whisper / ctc / dropped |")
    print("|---|---|---|---|---|---|---|---|")
    best_per_margin = {}
    for x in results:
        best_per_margin.setdefault(x[1].acoustic_margin, x)
    for wer, rule, sources, exact in results[:25] + [x for x in results if x[1] == default] + \
            sorted(best_per_margin.values(), key=lambda x: x[1].acoustic_margin):
        names_rule = f"{rule.names_min_similarity}" if rule.prefer_ctc_names else "no"
        fb = f"above {rule.fallback_min_logprob}" if rule.ctc_fallback else "no"
        print(f"| {wer:.2%} | {exact:.1%} | {rule.no_speech_alone} | {rule.drop_logprob} | {fb} | {rule.acoustic_margin} | "
              f"{names_rule} | {sources.get('whisper', 0)} / {sources.get('ctc', 0)} / {sources.get('dropped', 0)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
