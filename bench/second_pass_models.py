"""Second-pass models side by side on the same clips and machine (issue 20): accuracy, speed, memory.

    .venv/bin/python bench/second_pass_models.py accuracy [--per-set 40] [--engines NAME ...]   # -> runs/second_pass_models/accuracy.json
    .venv/bin/python bench/second_pass_models.py speed [--threads 1 2] [--clips 12] [--repeats 3] # -> runs/second_pass_models/speed.json
    .venv/bin/python bench/second_pass_models.py table                                           # Markdown for bench/RESULTS.md

accuracy: every clip goes once through the first pass (models/asr.pt, streaming in [asr] chunk_ms pieces,
catalog-biased beam final, as the daemon runs it), then through every engine: its text alone ("alone") and the
daemon's final ("final": the engine's hypothesis prompted with the names in the first pass's partial, the
choice rule with the first pass's vote, catalog rescoring as configured). The peer, stock Whisper tiny.en in
faster-whisper (CTranslate2 float32, the 30 s window, beam 5, no prompt), gives its text alone. Engines run one
after the other on each clip (their timings see the same load), at `--threads` (default 1).

Held-out sets only (never trained or tuned on): LJSpeech LJ002, LibriSpeech test-clean mini, the 20 held-out
speechocean762 speakers of configs/corpus_v2.toml (the corpus's seeded draw), FSDD speaker theo, and the
reserved-voice spoken commands of runs/spoken/heldout/manifest.jsonl (bench/spoken_e2e.py --dump; clean, and
kitchen noise at 10 dB) when that file exists. `--per-set` clips of each, a seeded sample.

speed: each engine in a fresh subprocess per thread count: load, warm up, then the second pass alone on the
first `--clips` clean held-out commands (2 to 3 s each; espeak-ng sentences when the manifest is missing),
`--repeats` times; median and p95 ms per command, and the process's RSS after loading and at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
OUT = REPO / "runs" / "second_pass_models"
COMMANDS_MANIFEST = REPO / "runs" / "spoken" / "heldout" / "manifest.jsonl"
SEED = 20
RATE_HZ = 16000
PEER = "faster-whisper tiny.en (30 s, beam 5)"

# name -> (model, precision, options). Variants of one (model, precision) share its weights. Every option that
# names the engine (beam, padding) is given here, so a change of the defaults does not change an engine.
GREEDY = {"beam_size": 1, "pad_ms": 1000}
ADAPTER = str(REPO / "models" / "second_pass_adapter.pt")  # our fine-tuned adapters (assistant/asr/adapter.py)
ENGINES: dict[str, tuple[str, str, dict]] = {
    "tiny.en int8": ("whisper-tiny.en", "int8", GREEDY),
    "tiny.en fp32": ("whisper-tiny.en", "fp32", GREEDY),
    "tiny.en bf16": ("whisper-tiny.en", "bf16", GREEDY),
    "tiny.en bf16 beam 2": ("whisper-tiny.en", "bf16", {**GREEDY, "beam_size": 2}),
    "tiny.en bf16 beam 3": ("whisper-tiny.en", "bf16", {**GREEDY, "beam_size": 3}),
    "tiny.en bf16 beam 4": ("whisper-tiny.en", "bf16", {**GREEDY, "beam_size": 4}),
    "tiny.en bf16 beam 4 adapted": ("whisper-tiny.en", "bf16", {**GREEDY, "beam_size": 4, "adapter": ADAPTER}),
    "tiny.en bf16 adapted": ("whisper-tiny.en", "bf16", {**GREEDY, "adapter": ADAPTER}),
    "tiny.en bf16 pad 2000": ("whisper-tiny.en", "bf16", {**GREEDY, "pad_ms": 2000}),
    "tiny.en bf16 pad 30000": ("whisper-tiny.en", "bf16", {**GREEDY, "pad_ms": 30000}),
    "base bf16": ("whisper-base", "bf16", GREEDY),
    "base bf16 beam 3": ("whisper-base", "bf16", {**GREEDY, "beam_size": 3}),
    "moonshine-base": ("moonshine-base", "fp32", {}),
    PEER: ("faster-whisper", "", {}),
}
SPEED_ENGINES = ("tiny.en int8", "tiny.en fp32", "tiny.en bf16", "tiny.en bf16 beam 2", "tiny.en bf16 beam 3",
                 "tiny.en bf16 beam 4", "base bf16", "moonshine-base", PEER)


# --------------------------------------------------------------------------- clips

@dataclasses.dataclass(frozen=True)
class Clip:
    set: str
    audio: str
    text: str
    name: str = ""  # the catalog name a command says (commands only)


def _sample(items: list, n: int, salt: int) -> list:
    if n <= 0 or len(items) <= n:
        return items
    idx = np.random.default_rng([SEED, salt]).choice(len(items), n, replace=False)
    return [items[i] for i in sorted(idx)]


def held_out_clips(per_set: int, commands: int, data: Path = DATA) -> list[Clip]:
    """Commands first (they matter most), then the short sets, LJ002's long clips last."""
    import csv

    from assistant.training.corpus import speechocean762_held_out

    clips: list[Clip] = command_clips(commands, "clean") + command_clips(commands // 2, "10")
    fsdd = sorted((data / "speech" / "fsdd" / "recordings").glob("*_theo_*.flac"))
    words = "zero one two three four five six seven eight nine".split()
    clips += [Clip("FSDD theo", str(p), words[int(p.name[0])]) for p in _sample(fsdd, per_set, 3)]
    so = data / "speech" / "speechocean762"
    if (so / "transcripts.tsv").is_file():
        import tomllib

        corpus = tomllib.loads((REPO / "configs" / "corpus_v2.toml").read_text(encoding="utf-8"))
        real, seed = corpus["real"], corpus["corpus"]["seed"]
        with open(so / "transcripts.tsv", encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        _, held = speechocean762_held_out([r["speaker"] for r in rows], real["speechocean762_valid_speakers"],
                                          real["speechocean762_eval_speakers"], seed)
        rows = [r for r in rows if r["speaker"] in held and r["text"].strip()]
        clips += [Clip("speechocean762 held-out", str(so / r["audio"]), r["text"]) for r in _sample(rows, per_set, 2)]
    ls = data / "speech" / "librispeech-test-clean-mini"
    for trans in sorted(ls.rglob("*.trans.txt")):
        for line in trans.read_text(encoding="utf-8").splitlines():
            utt, _, text = line.partition(" ")
            audio = trans.parent / f"{utt}.flac"
            if audio.is_file():
                clips.append(Clip("LibriSpeech mini", str(audio), text))
    lj = data / "speech" / "ljspeech-part1"
    if (lj / "metadata.csv").is_file():
        texts = {}
        with open(lj / "metadata.csv", encoding="utf-8") as f:
            for row in csv.reader(f, delimiter="|", quoting=csv.QUOTE_NONE):
                if row and row[0].startswith("LJ002-"):
                    texts[row[0]] = row[-1]
        files = sorted(p for p in (lj / "wavs").glob("LJ002-*.flac") if p.stem in texts)
        clips += [Clip("LJ002", str(p), texts[p.stem]) for p in _sample(files, per_set, 1)]
    return clips


def command_clips(n: int, snr: str) -> list[Clip]:
    if not COMMANDS_MANIFEST.is_file():
        return []
    rows = [json.loads(line) for line in COMMANDS_MANIFEST.read_text(encoding="utf-8").splitlines() if line.strip()]
    want = None if snr == "clean" else float(snr)
    rows = [r for r in rows if r.get("snr_db") == want]
    label = "commands, reserved voices" + ("" if snr == "clean" else f", kitchen {snr} dB")
    return [Clip(label, str(COMMANDS_MANIFEST.parent / r["audio"]), r["text"], r.get("expected", {}).get("name", ""))
            for r in _sample(rows, n, 4 if snr == "clean" else 5)]


# --------------------------------------------------------------------------- engines

class PeerWhisper:
    """Stock Whisper tiny.en in faster-whisper: the 30 s window, beam 5, no prompt, English, no timestamps."""

    def __init__(self, threads: int):
        from faster_whisper import WhisperModel

        from assistant.asr.ct2 import whisper_package_dir

        self.model = WhisperModel(str(whisper_package_dir()), device="cpu", compute_type="float32", cpu_threads=threads)

    def text(self, audio: np.ndarray) -> tuple[str, float]:
        start = time.perf_counter()
        segments, _ = self.model.transcribe(audio, language="en", beam_size=5, without_timestamps=True,
                                            condition_on_previous_text=False, vad_filter=False)
        text = " ".join(s.text.strip() for s in segments)
        return text, time.perf_counter() - start


def load_engines(names, threads: int, phrases=None, rescore=None) -> dict:
    from assistant.asr.second_pass import SecondPassOptions
    from assistant.asr.second_pass_factory import load_model

    loaded: dict[tuple[str, str], object] = {}
    out = {}
    for name in names:
        model, precision, changes = ENGINES[name]
        if model == "faster-whisper":
            out[name] = PeerWhisper(threads)
            continue
        changes = dict(changes)
        adapter = changes.pop("adapter", "")  # weights, not an option of a loaded model
        key = (model, precision, adapter)
        if key not in loaded:
            base = load_model(SecondPassOptions(model=model, precision=precision or "fp32", threads=threads, adapter=adapter))
            if phrases is not None:
                base.set_names(phrases)
            if rescore is not None:
                base.set_rescore(rescore)
            loaded[key] = base
        out[name] = loaded[key].with_options(**changes) if changes else loaded[key]
    return out


# --------------------------------------------------------------------------- accuracy

def run_accuracy(args) -> None:
    import torch

    from assistant.asr.bias import catalog_phrases
    from assistant.asr.recognizer import Recognizer
    from assistant.asr.text import normalize_text
    from assistant.audio.io import load_audio
    from assistant.config import load_config

    cfg = load_config(REPO / "config.toml")
    torch.set_num_threads(args.threads)
    rec = Recognizer.load(cfg.asr)
    torch.set_num_threads(args.threads)
    phrases = catalog_phrases(cfg)
    rec.set_bias(phrases)
    rescore = _rescore_options(cfg)
    engines = load_engines(args.engines, args.threads, phrases, rescore)
    clips = held_out_clips(args.per_set, args.commands, Path(args.data))
    if args.commands_only:
        clips = [c for c in clips if c.set.startswith("commands")]
    print(f"{len(clips)} clips: " + ", ".join(f"{s} {n}" for s, n in _counts(clips).items()), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    step = RATE_HZ * cfg.asr.chunk_ms // 1000
    meta = {"machine": _machine(), "threads": args.threads, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "engines": {n: list(ENGINES[n][:2]) + [ENGINES[n][2]] for n in args.engines}, "per_set": args.per_set, "commands": args.commands}
    for i, clip in enumerate(clips):
        audio = load_audio(clip.audio)
        sess, partial = rec.new_session(), ""
        for j in range(0, len(audio), step):
            partial = sess.accept(audio[j:j + step])
        ctc = sess.finish(beam=True)
        row = {**dataclasses.asdict(clip), "ref": normalize_text(clip.text), "ctc": ctc, "seconds": len(audio) / RATE_HZ,
               "engines": {}}
        for name, eng in engines.items():
            if isinstance(eng, PeerWhisper):
                text, secs = eng.text(audio)
                row["engines"][name] = {"alone": normalize_text(text), "final": normalize_text(text), "ms": secs * 1000}
                continue
            result = eng.hypothesis(audio, partial)
            choice = eng.decide(ctc, result, sess.log_likelihood)
            hyp = choice.whisper
            row["engines"][name] = {"alone": hyp.text if hyp else "", "final": choice.text, "source": choice.source,
                                    "reason": choice.reason, "ms": hyp.seconds * 1000 if hyp else 0.0,
                                    "avg_logprob": hyp.avg_logprob if hyp else None}
        rows.append(row)
        if (i + 1) % 10 == 0 or i + 1 == len(clips):
            out.write_text(json.dumps({**meta, "complete": i + 1 == len(clips), "clips": rows}, indent=1), encoding="utf-8")
            print(f"  {i + 1}/{len(clips)} clips", flush=True)
    print(accuracy_table(json.loads(out.read_text(encoding="utf-8"))))


def _rescore_options(cfg):
    """The daemon's catalog rescoring options ([rescore]), when this version has them."""
    return getattr(cfg, "rescore", None)


def _counts(clips) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in clips:
        out[c.set] = out.get(c.set, 0) + 1
    return out


def _machine() -> str:
    sys.path.insert(0, str(REPO / "bench"))
    from daemon_common import machine

    return f"{platform.machine()} {machine()}"


def _wer(pairs) -> float:
    from assistant.asr.metrics import ErrorRates

    rates = ErrorRates()
    for ref, hyp in pairs:
        rates.add(ref, hyp)
    return 100 * rates.wer


def _name_heard(name: str, text: str) -> bool:
    from assistant.asr.text import normalize_text

    n = normalize_text(name)
    return bool(n) and f" {n} " in f" {text} "


def accuracy_table(result: dict) -> str:
    rows = result["clips"]
    sets = list(dict.fromkeys(r["set"] for r in rows))
    engines = list(result["engines"])
    lines = [f"Machine: {result['machine']}; {result['threads']} thread(s); {result['date']}; "
             f"{len(rows)} clips{'' if result.get('complete') else ' (incomplete run)'}.", ""]
    head = "| engine | " + " | ".join(f"{s} ({sum(r['set'] == s for r in rows)})" for s in sets) + " | second pass ms p50 / p95 |"
    lines += ["Final WER (the daemon's final: first pass + engine + choice rule + rescoring); in brackets the engine's "
              "text alone. FSDD: exact %. Commands: WER / catalog name heard %.", "", head,
              "|" + "---|" * (head.count("|") - 1)]
    for e in engines:
        cells = []
        for s in sets:
            sub = [r for r in rows if r["set"] == s and e in r["engines"]]
            if not sub:
                cells.append("")
                continue
            final = _wer((r["ref"], r["engines"][e]["final"]) for r in sub)
            alone = _wer((r["ref"], r["engines"][e]["alone"]) for r in sub)
            if s.startswith("FSDD"):
                ex = 100 * sum(r["engines"][e]["final"] == r["ref"] for r in sub) / len(sub)
                exa = 100 * sum(r["engines"][e]["alone"] == r["ref"] for r in sub) / len(sub)
                cells.append(f"{ex:.0f} % exact ({exa:.0f})")
            elif s.startswith("commands"):
                heard = 100 * sum(_name_heard(r["name"], r["engines"][e]["final"]) for r in sub) / len(sub)
                cells.append(f"{final:.1f} % ({alone:.1f}) / {heard:.0f} %")
            else:
                cells.append(f"{final:.1f} % ({alone:.1f})")
        ms = [r["engines"][e]["ms"] for r in rows if e in r["engines"] and r["engines"][e]["ms"] > 0]
        lat = f"{statistics.median(ms):.0f} / {np.percentile(ms, 95):.0f}" if ms else ""
        lines.append(f"| {e} | " + " | ".join(cells) + f" | {lat} |")
    ctc = []
    for s in sets:
        sub = [r for r in rows if r["set"] == s]
        if s.startswith("FSDD"):
            ctc.append(f"{100 * sum(r['ctc'] == r['ref'] for r in sub) / len(sub):.0f} % exact")
        else:
            ctc.append(f"{_wer((r['ref'], r['ctc']) for r in sub):.1f} %")
    lines.append("| first pass alone (CTC beam) | " + " | ".join(ctc) + " | |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- speed

def speed_clips(n: int) -> list[np.ndarray]:
    from assistant.audio.io import load_audio

    clips = [c for c in command_clips(0, "clean")]
    clips = [c for c in clips if 2.0 <= len(load_audio(c.audio)) / RATE_HZ <= 3.2][:n]
    if clips:
        return [load_audio(c.audio) for c in clips]
    sys.path.insert(0, str(REPO / "tests"))
    import tempfile

    from conftest import espeak  # noqa: E402

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, text in enumerate(["play someone like you by adele", "play something sad", "more like this please"][:n]):
            out.append(load_audio(espeak(text, Path(tmp) / f"{i}.wav")))
    return out


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def speed_one(name: str, threads: int, n_clips: int, repeats: int) -> dict:
    import resource

    import torch

    torch.set_num_threads(threads)
    clips = speed_clips(n_clips)
    before = _rss_mb()
    t0 = time.perf_counter()
    eng = load_engines([name], threads)[name]
    load_s = time.perf_counter() - t0
    loaded = _rss_mb()
    run = (lambda a: eng.text(a)[1]) if isinstance(eng, PeerWhisper) else (lambda a: eng.transcribe(a).seconds)
    run(clips[0])  # warm-up
    ms = [1000 * run(a) for _ in range(repeats) for a in clips]
    return {"engine": name, "threads": threads, "clips": len(clips), "repeats": repeats,
            "audio_s": [round(len(a) / RATE_HZ, 2) for a in clips], "load_s": load_s,
            "ms_p50": statistics.median(ms), "ms_p95": float(np.percentile(ms, 95)), "ms": ms,
            "rss_before_mb": before, "rss_loaded_mb": loaded, "rss_end_mb": _rss_mb(),
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_speed(args) -> None:
    results = []
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for threads in args.threads_list:
        for name in args.engines:
            cmd = [sys.executable, __file__, "speed-one", name, "--threads", str(threads), "--clips", str(args.clips),
                   "--repeats", str(args.repeats)]
            p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=1800)
            if p.returncode != 0:
                print(f"{name} at {threads} thread(s) failed: {p.stderr.strip().splitlines()[-1:]}", flush=True)
                continue
            r = json.loads(p.stdout.strip().splitlines()[-1])
            results.append(r)
            print(f"{name}, {threads} thread(s): p50 {r['ms_p50']:.0f} ms, p95 {r['ms_p95']:.0f} ms, "
                  f"RSS {r['rss_end_mb']:.0f} MB", flush=True)
            out.write_text(json.dumps({"machine": _machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                       "load_average": os.getloadavg(), "results": results}, indent=1), encoding="utf-8")
    print(speed_table(json.loads(out.read_text(encoding="utf-8"))))


def speed_table(*results: dict) -> str:
    """One row per engine: per thread count the median over the runs of each run's p50 and p95."""
    rows = [r for result in results for r in result["results"]]
    engines = list(dict.fromkeys(r["engine"] for r in rows))
    threads = sorted({r["threads"] for r in rows})
    n = rows[0]["clips"] if rows else 0
    audio = rows[0]["audio_s"] if rows else []
    loads = ", ".join(f"{r['load_average'][0]:.1f}" for r in results)
    lines = [f"Machine: {results[0]['machine']}; {', '.join(r['date'] for r in results)}; load average at the end of each "
             f"run {loads}. The second pass alone on {n} held-out commands of {min(audio, default=0):.1f} to "
             f"{max(audio, default=0):.1f} s, {rows[0]['repeats'] if rows else 0} times each after a warm-up; a fresh "
             "process per row; the median over the runs (in brackets how many) of each run's p50 and p95.", ""]
    head = "| engine | " + " | ".join(f"{t} thread(s) p50 / p95 ms" for t in threads) + " | RSS loaded / end (MB) |"
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for e in engines:
        cells = []
        mine = [r for r in rows if r["engine"] == e]
        for t in threads:
            runs = [r for r in mine if r["threads"] == t]
            cells.append(f"{statistics.median(r['ms_p50'] for r in runs):.0f} / "
                         f"{statistics.median(r['ms_p95'] for r in runs):.0f} ({len(runs)})" if runs else "")
        rss = (f"{statistics.median(r['rss_loaded_mb'] for r in mine):.0f} / "
               f"{statistics.median(r['rss_end_mb'] for r in mine):.0f}")
        lines.append(f"| {e} | " + " | ".join(cells) + f" | {rss} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("accuracy")
    a.add_argument("--per-set", type=int, default=20)
    a.add_argument("--commands", type=int, default=30, help="clean held-out commands (and half as many at 10 dB)")
    a.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    a.add_argument("--commands-only", action="store_true", help="only the held-out commands")
    a.add_argument("--threads", type=int, default=1)
    a.add_argument("--data", default=str(DATA))
    a.add_argument("--out", default=str(OUT / "accuracy.json"))
    s = sub.add_parser("speed")
    s.add_argument("--threads", dest="threads_list", type=int, nargs="+", default=[1, 2])
    s.add_argument("--engines", nargs="+", default=list(SPEED_ENGINES), choices=list(ENGINES))
    s.add_argument("--clips", type=int, default=12)
    s.add_argument("--repeats", type=int, default=3)
    s.add_argument("--out", default=str(OUT / "speed.json"))
    one = sub.add_parser("speed-one")
    one.add_argument("engine", choices=list(ENGINES))
    one.add_argument("--threads", type=int, default=1)
    one.add_argument("--clips", type=int, default=12)
    one.add_argument("--repeats", type=int, default=3)
    t = sub.add_parser("table")
    t.add_argument("--accuracy", default=str(OUT / "accuracy.json"))
    t.add_argument("--speed", nargs="+", default=[str(OUT / "speed.json")], help="one or more speed runs")
    args = ap.parse_args(argv)
    if args.cmd == "accuracy":
        run_accuracy(args)
    elif args.cmd == "speed":
        run_speed(args)
    elif args.cmd == "speed-one":
        print(json.dumps(speed_one(args.engine, args.threads, args.clips, args.repeats)))
    else:
        if Path(args.accuracy).is_file():
            print(accuracy_table(json.loads(Path(args.accuracy).read_text(encoding="utf-8"))), end="\n\n")
        runs = [json.loads(Path(p).read_text(encoding="utf-8")) for p in args.speed if Path(p).is_file()]
        if runs:
            print(speed_table(*runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
