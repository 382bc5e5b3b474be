"""Tune the catalog rescoring of finals ([rescore]) on spoken commands by TRAINING voices only.

    .venv/bin/python bench/spoken_e2e.py --voices train --dump runs/spoken/valid     # the validation clips
    .venv/bin/python bench/rescore_tune.py --manifest runs/spoken/valid/manifest.jsonl

1. Every clip goes through both passes as `assistant evaluate --decoder two-pass` does (the first pass
   streams in `[asr] chunk_ms` steps, Whisper is prompted with the names in its partial text, the
   choice rule picks); then the rescoring's candidates are found and EVERY one is scored by both
   passes (cached in runs/rescore_tune/, keyed by the manifest and the code's options).
2. A grid over the weights, margin and match threshold replays the rescoring offline (the decoder's
   preselection of `max_candidates` included) and sends each final through the recommender in this
   process (parser + ranker, as the daemon does): the named song (artist, "like" name) first, as
   bench/spoken_e2e.py scores it, per noise level; also how many swaps turned a hit into a miss.

The reserved voices are refused (they are the benchmark's held-out voices).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
WIDE = dict(max_candidates=64, max_lookups=64)  # every look-up hit scored by both passes, for the replay
# Real artists the default catalog does not have (checked when the set is built), for the false-swap rate.
# Disjoint from tests/test_rescore.py's list, which is never tuned on.
MISSING_ARTISTS = ("Patsy Cline", "Billie Holiday", "Louis Armstrong", "Frank Zappa", "Kate Bush", "Cocteau Twins",
                   "Sufjan Stevens", "Fiona Apple", "Bonnie Raitt", "Van Morrison", "Etta James", "Herbie Hancock",
                   "Chet Baker", "Thelonious Monk", "John Coltrane", "Patti Smith", "Joy Division", "Portishead",
                   "Massive Attack", "Nick Drake", "Elliott Smith", "Tori Amos", "Cat Stevens", "Townes Van Zandt",
                   "Lucinda Williams", "Emmylou Harris", "Brian Eno", "Aphex Twin", "Bill Withers", "Otis Redding",
                   "Sam Cooke", "Curtis Mayfield")
MISSING_PHRASES = ("play something by {}", "play {}", "i want to listen to {}", "put on some {}")
MISSING_VOICES = (("espeak-ng", "en-us", "m3"), ("espeak-ng", "en-us", "f3"), ("flite", "kal16", ""), ("flite", "slt", ""),
                  ("mbrola", "us1", ""), ("mbrola", "us2", ""), ("festival", "kal_diphone", ""), ("flite", "awb", ""))


def read_audio(path: Path) -> np.ndarray:
    import soundfile as sf
    from scipy.signal import resample_poly

    audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if sr != 16000:
        audio = resample_poly(audio, 16000, sr).astype(np.float32)
    return audio


def build_missing(out_dir: Path) -> Path:
    """Commands naming real artists that are not in the default catalog, by training voices (clean)."""
    import soundfile as sf

    from assistant.config import default_config_path, load_config
    from assistant.recommend.catalog import load_catalog
    from assistant.training.synth import SynthesisError, VoiceSpec, synthesize

    manifest = out_dir / "manifest.jsonl"
    if manifest.exists():
        return manifest
    have = {s.artist.lower() for s in load_catalog(load_config(default_config_path()).recommend).songs}
    artists = [a for a in MISSING_ARTISTS if not any(a.lower() in h for h in have)]
    (out_dir / "audio").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, artist in enumerate(artists):
        engine, voice, variant = MISSING_VOICES[i % len(MISSING_VOICES)]
        text = MISSING_PHRASES[i % len(MISSING_PHRASES)].format(artist)
        try:
            audio = synthesize(VoiceSpec(engine=engine, voice=voice, variant=variant), text, pad_s=(0.3, 0.3))
        except (SynthesisError, OSError) as exc:
            print(f"  skipped {engine}/{voice}: {exc}", file=sys.stderr)
            continue
        name = f"audio/m{i:03d}.wav"
        sf.write(str(out_dir / name), audio, 16000)
        speaker = f"{engine}/{voice}" + (f"+{variant}" if variant else "")
        lines.append(json.dumps({"audio": name, "text": text, "kind": "missing", "expected": {"name": artist},
                                 "speaker": speaker, "snr_db": None}))
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def dump(manifest: Path, out: Path, limit: int) -> list[dict]:
    from assistant.asr.bias import catalog_phrases
    from assistant.asr.recognizer import Recognizer
    from assistant.asr.rescore import candidates, score_candidates
    from assistant.asr.second_pass import SecondPassOptions, TwoPassSession, WhisperSecondPass
    from assistant.config import default_config_path, load_config
    from assistant.training.synth import is_reserved_speaker

    cfg = load_config(default_config_path())
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    if limit:
        rows = rows[:limit]
    for r in rows:
        if is_reserved_speaker(str(r.get("speaker", ""))):
            raise SystemExit(f"error: {manifest} has a clip by the reserved voice {r['speaker']!r}; "
                             "tune on training voices only (bench/spoken_e2e.py --voices train)")
    rec = Recognizer.load(cfg.asr)
    sp = WhisperSecondPass.load(SecondPassOptions.from_config(cfg.asr))
    phrases = catalog_phrases(cfg)
    rec.set_bias(phrases)
    sp.set_names(phrases)
    sp.set_rescore(replace(cfg.rescore, enabled=False))
    wide = replace(cfg.rescore, **WIDE, min_match=0.5)
    chunk = cfg.asr.chunk_ms * 16
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {}
    if out.exists():
        for line in out.read_text().splitlines():
            d = json.loads(line)
            done[d["audio"]] = d
    results = []
    with out.open("a") as f:
        for i, r in enumerate(rows):
            if r["audio"] in done:
                results.append(done[r["audio"]])
                continue
            audio = read_audio(manifest.parent / r["audio"])
            s = TwoPassSession(rec, sp)
            for k in range(0, len(audio), chunk):
                s.accept(audio[k:k + chunk])
            s.finish()
            c = s.choice
            d = {"audio": r["audio"], "row": r, "text": c.text, "source": c.source, "ctc": s.ctc_text,
                 "whisper": c.whisper.text if c.whisper else "", "raw": c.whisper.raw_text if c.whisper else "",
                 "cands": [], "rescore_ms": 0.0}
            if c.text and c.whisper is not None:
                t = time.perf_counter()
                by_w = c.source == "whisper"
                other = [s.ctc_text if by_w else c.whisper.text, *s.first.alternatives]
                cs = candidates(sp.names, c.text, other, wide)
                sc = score_candidates(cs, c.text, c.whisper.raw_text if by_w else None, c.whisper.scorer,
                                      s.first.log_likelihood, c.whisper.audio_s, wide)
                d["rescore_ms"] = (time.perf_counter() - t) * 1000
                d["cands"] = [[x.candidate.start, x.candidate.end, x.candidate.name, x.candidate.spoken,
                               x.candidate.match, x.whisper, x.ctc] for x in sc]
            f.write(json.dumps(d) + "\n")
            f.flush()
            results.append(d)
            if i % 20 == 0:
                print(f"  {i}/{len(rows)} {r['text']!r} -> {c.text!r}", file=sys.stderr, flush=True)
    return results


def replay(d: dict, opts) -> tuple[str, list]:
    """The final the rescoring with `opts` gives for a dumped clip."""
    from assistant.asr.rescore import Candidate, ScoredCandidate, apply_swaps, for_the_decoder

    rows = [c for c in d["cands"] if c[4] >= opts.min_match]
    if not opts.enabled or not rows:
        return d["text"], []
    rows = sorted(rows, key=lambda c: -c[4])[:opts.max_lookups]  # candidates() ranks by match and keeps max_lookups
    cands = [Candidate(c[0], c[1], c[2], c[3], c[4]) for c in rows]
    keep = for_the_decoder(cands, [c[6] for c in rows], opts)  # the same choice as score_candidates
    scored = [ScoredCandidate(cands[i], rows[i][5], rows[i][6],
                              opts.whisper_weight * rows[i][5] + opts.ctc_weight * rows[i][6]) for i in keep]
    text, names = apply_swaps(d["text"], scored, opts)
    return text, list(names)


class Judge:
    """Final text -> hit or miss, through the recommender in this process (memoized per text)."""

    def __init__(self):
        import os
        import tempfile

        from assistant.config import default_config_path, load_config
        from assistant.recommend.service import RecommendService

        # a fresh preference store: the requests recorded while judging must not shape later rankings
        self.tmp = tempfile.TemporaryDirectory(prefix="rescore-tune-")
        env = {**os.environ, "ASSISTANT_PREFERENCES_DB_PATH": os.path.join(self.tmp.name, "prefs.sqlite3")}
        self.service = RecommendService(load_config(default_config_path(), environ=env))
        self.memo: dict[str, tuple] = {}

    def answer(self, text: str):
        if text not in self.memo:
            if not text:
                self.memo[text] = (None, None)
            else:
                intent, rec = self.service.handle_text(text, user=None)
                items = rec.to_dict().get("items", []) if rec is not None else None
                self.memo[text] = ({"name": intent.intent, "slots": dict(intent.slots), "matches": intent.matches}, items)
        return self.memo[text]

    def hit(self, row: dict, text: str) -> bool:
        from spoken_score import score

        intent, items = self.answer(text)
        e = row["expected"]
        command = {"kind": row["kind"], "name": e.get("name", ""), "expected_title": e.get("title", ""),
                   "expected_artist": e.get("artist", ""), "catalog_title": e.get("catalog_title", ""),
                   "catalog_artist": e.get("catalog_artist", "")}
        return score(command, text or None, intent, items).hit


def snr_key(row: dict) -> str:
    return "clean" if row.get("snr_db") is None else f"{row['snr_db']:g} dB"


def false_swaps(results: list[dict], opts) -> float:
    """Share of commands naming an artist missing from the catalog whose final had a name swapped in."""
    return sum(bool(replay(d, opts)[1]) for d in results) / max(1, len(results))


def evaluate(results: list[dict], judge: Judge, opts) -> dict:
    hits, total, harmed, helped, swaps = {}, {}, 0, 0, 0
    for d in results:
        text, names = replay(d, opts)
        k = snr_key(d["row"])
        h = judge.hit(d["row"], text)
        base = judge.hit(d["row"], d["text"])
        hits[k] = hits.get(k, 0) + h
        total[k] = total.get(k, 0) + 1
        swaps += bool(names)
        harmed += base and not h
        helped += h and not base
    per = {k: hits[k] / total[k] for k in total}
    return {"all": sum(hits.values()) / max(1, sum(total.values())), **per, "swaps": swaps, "helped": helped,
            "harmed": harmed}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--manifest", type=Path, required=True, help="bench/spoken_e2e.py --voices train --dump DIR's manifest.jsonl")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "rescore_tune")
    args = ap.parse_args()
    from assistant.config import default_config_path, load_config

    key = hashlib.sha1(str(args.manifest.resolve()).encode()).hexdigest()[:10]
    results = dump(args.manifest, args.out / f"dump_{key}.jsonl", args.limit)
    missing = dump(build_missing(args.out / "missing"), args.out / "dump_missing.jsonl", 0)
    judge = Judge()
    cfg = load_config(default_config_path()).rescore
    ms = sorted(d["rescore_ms"] for d in results if d["cands"])
    print(f"clips {len(results)}; rescoring (all candidates scored) p50 {ms[len(ms) // 2]:.1f} ms, "
          f"p95 {ms[int(len(ms) * 0.95)]:.1f} ms" if ms else "no candidates")
    rows = []
    off = evaluate(results, judge, replace(cfg, enabled=False))
    print("off", json.dumps({k: round(v, 3) for k, v in off.items()}))
    grid = itertools.product((0.0, 0.25, 0.5, 1.0), (0.0, 0.25, 0.5, 1.0, 2.0, 4.0), (-4.0, -2.0, 0.0, 1.0, 2.0, 4.0, 8.0),
                             (0.5, 0.6, 0.7))
    for ww, cw, margin, mm in grid:
        if ww + cw == 0:
            continue
        opts = replace(cfg, whisper_weight=ww, ctc_weight=cw, margin=margin, min_match=mm)
        r = evaluate(results, judge, opts)
        r["false_swaps"] = false_swaps(missing, opts)
        rows.append((r["all"], -r["harmed"], (ww, cw, margin, mm), r))
    # the best end-to-end accuracy among settings that swap a missing name into at most 5 % of those commands
    rows.sort(key=lambda x: (x[3]["false_swaps"] <= 0.05, x[0], x[1]), reverse=True)
    for acc, _, p, r in rows[:15]:
        print(f"whisper {p[0]} ctc {p[1]} margin {p[2]} min_match {p[3]}:", json.dumps({k: round(v, 3) for k, v in r.items()}))
    here = evaluate(results, judge, cfg)
    here["false_swaps"] = false_swaps(missing, cfg)
    print("config.toml", json.dumps({k: round(v, 3) for k, v in here.items()}))
    (args.out / f"grid_{key}.json").write_text(json.dumps([{"params": p, **r} for _, _, p, r in rows], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
