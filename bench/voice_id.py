"""Who spoke? Voice identification in simulated households of real speakers (issue 18).

    .venv/bin/python bench/voice_id.py ../shared/data/speech [--embedder resemblyzer|asr-states]
        [--households 300] [--seed 0] [--cache DIR] [--json OUT]

Speakers (real recordings from ../shared/data/speech):
- speechocean762: 250 non-native speakers, children (age <= 12) and adults, 20 short read prompts each;
- the LibriSpeech train-clean-100 sample: 251 speakers, one ~12 s reading each, cut into 3 s pieces
  (so enrolment and test come from one recording: an easier case, reported apart);
- alnum-speech (70 speakers, phone and laptop microphones) and wake-words (no speaker labels, one keyword
  a clip): strangers only.

Two disjoint halves of the speakers: the threshold is chosen on the "tune" half (speechocean762's
train split, LibriSpeech speakers with an even id, alnum-speech/wake-words clips with an even hash)
and every figure reported comes from the "report" half (speechocean762's test split, odd ids/hashes),
whose speakers never influenced the threshold.

A household: 2 to 6 people drawn from the half's enrollable speakers (children and adults mixed), each
enrolled with 3 utterances; every other utterance of theirs of >= 2 s is a test (right person: the
identified user is that person; a miss is another member or the default profile). Strangers: utterances
of >= 2 s by speakers of the same half outside the household (stranger taken: identified as any member).
The threshold: the lowest at which the tune half's stranger-taken rate is <= --max-stranger.

Enrolment checks (--checks): on the report half, how often real recordings of one person are refused,
and how often silence, tones, synthesized music (harmonic notes and clicks), kitchen noise and two
LibriSpeech speakers taking turns are; and with the cached embeddings, enrolments of three recordings one
of which is another speaker's.

Latency: embedding + identification of one utterance at 1 torch thread (the report half's tests, up to
300), p50/p95 of wall time and of the thread's CPU time (what it costs on a machine shared with others). RSS added: the process's RSS after torch is imported and before the embedder is loaded,
against after loading it and embedding 50 utterances.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import platform
import random
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from assistant.voices.identify import VoiceIndex

SR = 16000
ENROL_UTTERANCES = 3
MIN_TEST_S = 2.0
LIBRI_PIECE_S = 3.0
CHILD_MAX_AGE = 12
WAKE_WORD_CLIPS = 600       # a sample of the 2,279 (strangers only)
LATENCY_UTTERANCES = 300
RSS_WARMUP_UTTERANCES = 50


@dataclass(frozen=True)
class Clip:
    key: str
    path: Path
    speaker: str          # "" when unknown (wake-words)
    corpus: str
    group: str            # "child", "adult" or "?"
    half: str             # "tune" or "report"
    enrollable: bool      # the speaker can be a household member
    start_s: float = 0.0
    end_s: float | None = None
    duration_s: float = 0.0


def _half_of(text: str) -> str:
    return "tune" if int(hashlib.sha1(text.encode()).hexdigest(), 16) % 2 == 0 else "report"


def read_clips(root: Path) -> list[Clip]:
    clips: list[Clip] = []
    so = root / "speechocean762"
    with open(so / "transcripts.tsv", newline="") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            clips.append(Clip(f"so/{r['audio']}", so / r["audio"], f"so-{r['speaker']}", "speechocean762",
                              "child" if int(r["age"]) <= CHILD_MAX_AGE else "adult",
                              "tune" if r["split"] == "train" else "report", True, duration_s=float(r["duration_s"])))
    libri = root / "librispeech-train-clean-100-sample"
    for path in sorted(libri.rglob("*.flac")):
        spk = path.name.split("-")[0]
        info = sf.info(str(path))
        n = int(info.duration // LIBRI_PIECE_S)
        for i in range(n):
            clips.append(Clip(f"ls/{path.name}/{i}", path, f"ls-{spk}", "librispeech", "adult",
                              "tune" if int(spk) % 2 == 0 else "report", True,
                              start_s=i * LIBRI_PIECE_S, end_s=(i + 1) * LIBRI_PIECE_S, duration_s=LIBRI_PIECE_S))
    alnum = root / "alnum-speech"
    with open(alnum / "files.tsv", newline="") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            spk = Path(r["audio"]).stem
            clips.append(Clip(f"an/{r['audio']}", alnum / r["audio"], f"an-{spk}", "alnum-speech", "adult",
                              _half_of(spk), False, duration_s=float(r["duration_s"])))
    wake = root / "wake-words"
    with open(wake / "transcripts.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for r in random.Random(0).sample(rows, min(WAKE_WORD_CLIPS, len(rows))):
        clips.append(Clip(f"ww/{r['audio']}", wake / r["audio"], "", "wake-words", "?", _half_of(r["audio"]), False,
                          duration_s=float(r["duration_s"])))
    return clips


def load_audio(clip: Clip) -> np.ndarray:
    audio, sr = sf.read(str(clip.path), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if sr != SR:
        import soxr

        audio = soxr.resample(audio, sr, SR).astype(np.float32)
    if clip.end_s is not None:
        audio = audio[int(clip.start_s * SR):int(clip.end_s * SR)]
    return audio


# ----------------------------------------------------------------------------- embedders
class Resemblyzer:
    name = "resemblyzer"

    def __init__(self):
        from assistant.voices.embedder import VoiceEmbedder

        self.embedder = VoiceEmbedder.load()

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        return self.embedder.embed(audio).vector

    def finish(self, vectors: dict[str, np.ndarray], tune_keys: list[str]) -> dict[str, np.ndarray]:
        return vectors


class AsrStates:
    """The simplest alternative from our own model: the first pass's Whisper-encoder states (models/asr.pt,
    whole clip, full attention) after block `layer`, mean- and std-pooled over the voiced frames, standardized
    with statistics of the tune half only, unit length."""

    name = "asr-states"

    def __init__(self, layer: int = 2):
        from assistant.asr.checkpoint import load_model
        from assistant.voices.embedder import VoiceEmbedder

        self.loaded = load_model(Path(__file__).resolve().parent.parent / "models" / "asr.pt")
        self.prepare = VoiceEmbedder.load().prepare  # the same silence cutting as the other embedder
        self.layer = layer

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        speech = self.prepare(audio)
        if len(speech) < SR // 10:
            speech = audio
        speech = speech[: 29 * SR]  # the encoder's position table holds 30 s
        feats = self.loaded.features(speech)
        enc = self.loaded.model.encoder
        with torch.inference_mode():
            x = enc.front(feats[None].float())
            x = x + enc.positions[: x.shape[1]]
            for block in enc.blocks[: self.layer]:
                x = block(x, None)
        x = x[0]
        return torch.cat([x.mean(0), x.std(0, unbiased=False)]).numpy()

    def finish(self, vectors: dict[str, np.ndarray], tune_keys: list[str]) -> dict[str, np.ndarray]:
        tune = np.stack([vectors[k] for k in tune_keys])
        mean, std = tune.mean(0), tune.std(0) + 1e-6
        out = {}
        for k, v in vectors.items():
            z = (v - mean) / std
            out[k] = (z / max(np.linalg.norm(z), 1e-12)).astype(np.float32)
        return out


EMBEDDERS = {"resemblyzer": Resemblyzer, "asr-states": AsrStates}


def voiced_seconds(clips: list[Clip], cache: Path | None) -> dict[str, float]:
    """Per clip: the speech the embedder keeps (long silences cut by webrtcvad), cached beside the embeddings."""
    from assistant.voices.embedder import cut_long_silences, raise_volume

    path = cache / "voice_id_voiced_s.json" if cache else None
    out = json.loads(path.read_text()) if path and path.is_file() else {}
    todo = [c for c in clips if c.key not in out]
    for c in todo:
        out[c.key] = len(cut_long_silences(raise_volume(load_audio(c)))) / SR
    if path and todo:
        path.write_text(json.dumps(out))
    return out


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# ----------------------------------------------------------------------------- households
@dataclass
class Trials:
    member_best: list[float]       # per member test: best score
    member_right: list[bool]       # the best is the true member
    member_group: list[str]
    member_corpus: list[str]
    member_size: list[int]
    member_voiced_s: list[float]   # speech left after the embedder cuts long silences (webrtcvad)
    stranger_best: list[float]
    stranger_corpus: list[str]

    def right_rate(self, th: float, mask=None) -> float:
        ok = np.array(self.member_right) & (np.array(self.member_best) >= th)
        if mask is not None:
            ok = ok[mask]
        return float(ok.mean()) if len(ok) else float("nan")

    def stranger_rate(self, th: float, mask=None) -> float:
        taken = np.array(self.stranger_best) >= th
        if mask is not None:
            taken = taken[mask]
        return float(taken.mean()) if len(taken) else float("nan")


def simulate(clips: list[Clip], vectors: dict[str, np.ndarray], half: str, households: int, strangers_each: int,
             rng: random.Random, only_corpus: str | None = None, enrol_longest: bool = True,
             voiced: dict[str, float] | None = None) -> Trials:
    voiced = voiced or {}
    by_speaker: dict[str, list[Clip]] = {}
    for c in clips:
        if c.half == half and c.enrollable and (only_corpus is None or c.corpus == only_corpus):
            by_speaker.setdefault(c.speaker, []).append(c)
    speakers = sorted(s for s, cs in by_speaker.items()
                      if len(cs) > ENROL_UTTERANCES and any(c.duration_s >= MIN_TEST_S for c in cs))
    pool = [c for c in clips if c.half == half and c.duration_s >= MIN_TEST_S
            and (only_corpus is None or c.corpus == only_corpus or not c.enrollable)]
    t = Trials([], [], [], [], [], [], [], [])
    for _ in range(households):
        size = rng.randint(2, 6)
        members = rng.sample(speakers, size)
        enrol, tests = {}, []
        for m in members:
            cs = by_speaker[m][:]
            rng.shuffle(cs)
            if enrol_longest:  # the product's enrolment reads three sentences: the speaker's longest recordings
                cs.sort(key=lambda c: -c.duration_s)
            enrol[m] = np.stack([vectors[c.key] for c in cs[:ENROL_UTTERANCES]])
            tests += [(m, c) for c in cs[ENROL_UTTERANCES:] if c.duration_s >= MIN_TEST_S]
        index = VoiceIndex(enrol)
        for m, c in tests:
            scores = index.scores(vectors[c.key])
            i = int(np.argmax(scores))
            t.member_best.append(float(scores[i]))
            t.member_right.append(index.names[i] == m)
            t.member_group.append(c.group)
            t.member_corpus.append(c.corpus)
            t.member_size.append(size)
            t.member_voiced_s.append(voiced.get(c.key, float("nan")))
        outsiders = [c for c in pool if c.speaker not in enrol]
        for c in rng.sample(outsiders, min(strangers_each, len(outsiders))):
            t.stranger_best.append(float(index.scores(vectors[c.key]).max()))
            t.stranger_corpus.append(c.corpus)
    return t


def choose_threshold(t: Trials, max_stranger: float) -> float:
    for th in np.arange(0.30, 1.0001, 0.005):
        if t.stranger_rate(th) <= max_stranger:
            return round(float(th), 3)
    return 1.0


def synthetic_music(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * SR))
    beat = int(SR * 60 / rng.integers(80, 160) / 2)
    for j in range(len(out) // beat):
        t = np.arange(2 * beat) / SR
        f = 220 * 2 ** (rng.integers(0, 12) / 12)
        seg = out[j * beat:j * beat + len(t)]
        seg += 0.1 * (sum(np.sin(2 * np.pi * f * h * t) / h for h in range(1, 6)) * np.exp(-3 * t))[:len(seg)]
        if j % 2 == 0:
            n = min(2000, len(out) - j * beat)
            out[j * beat:j * beat + n] += 0.2 * (rng.standard_normal(2000) * np.exp(-np.arange(2000) / 300))[:n]
    return out.astype(np.float32)


def check_rates(clips: list[Clip], vectors: dict[str, np.ndarray], root: Path, rng: random.Random) -> dict:
    from assistant.voices import speech_check
    from assistant.voices.embedder import VoiceEmbedder

    embedder = VoiceEmbedder.load()

    def refused(audio: np.ndarray) -> bool:
        try:
            speech_check.check_recording(speech_check.measure(audio, embedder.embed(audio)))
            return False
        except speech_check.NotOneSpeaker:
            return True

    report = [c for c in clips if c.half == "report" and c.speaker and c.corpus in ("speechocean762", "alnum-speech")]
    genuine = rng.sample(report, min(300, len(report)))
    t = np.arange(3 * SR) / SR
    kitchen, _ = sf.read(str(root.parent / "noise" / "kitchen.flac"), dtype="float32")
    libri = [c for c in clips if c.corpus == "librispeech" and c.half == "report"]
    by_file: dict[Path, list[Clip]] = {}
    for c in libri:
        by_file.setdefault(c.path, []).append(c)
    files = [cs for cs in by_file.values() if len(cs) >= 2]
    turns = []
    for i in range(0, min(60, len(files) - 1), 2):
        a, b = files[i], files[i + 1]
        turns.append(np.concatenate([load_audio(a[0]), load_audio(b[0]), load_audio(a[1]), load_audio(b[1])]))
    out = {
        "genuine_refused": float(np.mean([refused(load_audio(c)) for c in genuine])), "genuine_n": len(genuine),
        "silence_refused": float(np.mean([refused(a) for a in (np.zeros(3 * SR, np.float32),
                                                              (0.001 * np.random.default_rng(0).standard_normal(3 * SR)).astype(np.float32))])),
        "tones_refused": float(np.mean([refused((0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32))
                                        for f in (110, 220, 440, 1000, 3000)])),
        "music_refused": float(np.mean([refused(synthetic_music(4.0, s)) for s in range(10)])),
        "kitchen_refused": float(np.mean([refused(3 * kitchen[i * 3 * SR:(i + 1) * 3 * SR]) for i in range(10)])),
        "two_turns_refused": float(np.mean([refused(a) for a in turns])), "two_turns_n": len(turns),
    }
    by_spk: dict[str, list[str]] = {}
    for c in clips:
        if c.half == "report" and c.enrollable:
            by_spk.setdefault(c.speaker, []).append(c.key)
    spk = sorted(s for s, ks in by_spk.items() if len(ks) >= 3)
    same, mixed = [], []
    for _ in range(2000):
        a, b = rng.sample(spk, 2)
        ka = rng.sample(by_spk[a], 3)
        for keys, sink in ((ka, same), (ka[:2] + [rng.choice(by_spk[b])], mixed)):
            try:
                speech_check.check_together(np.stack([vectors[k] for k in keys]))
                sink.append(False)
            except speech_check.NotOneSpeaker:
                sink.append(True)
    out["one_person_sets_refused"] = float(np.mean(same))
    out["mixed_sets_refused"] = float(np.mean(mixed))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("speech_root", type=Path)
    ap.add_argument("--embedder", choices=sorted(EMBEDDERS), default="resemblyzer")
    ap.add_argument("--households", type=int, default=300)
    ap.add_argument("--strangers", type=int, default=40, help="stranger utterances tried per household")
    ap.add_argument("--max-stranger", type=float, default=0.01,
                    help="the tune half's stranger-taken rate the threshold must keep to")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, default=None, help="folder to keep embeddings in between runs")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--checks", action="store_true", help="also measure the enrolment checks (resemblyzer only)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    clips = read_clips(args.speech_root)
    rng = random.Random(args.seed)

    # latency and RSS first, in a process that has only imported torch and read audio
    report_tests = [c for c in clips if c.half == "report" and c.enrollable and c.duration_s >= MIN_TEST_S]
    timed = random.Random(1).sample(report_tests, min(LATENCY_UTTERANCES, len(report_tests)))
    audios = [load_audio(c) for c in timed]
    rss0 = rss_mb()
    embedder = EMBEDDERS[args.embedder]()
    index = VoiceIndex({f"p{i}": np.random.default_rng(i).normal(size=(3, 256 if args.embedder == "resemblyzer" else 768))
                        .astype(np.float32) for i in range(6)})
    for a in audios[:RSS_WARMUP_UTTERANCES]:
        embedder(a)
    rss1 = rss_mb()
    lat, cpu = [], []
    for a in audios:
        t0, c0 = time.perf_counter(), time.thread_time()
        v = embedder(a)
        if args.embedder == "resemblyzer":
            index.identify(v, 0.8, "default")
        lat.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)
    lat.sort()
    cpu.sort()
    durations = [len(a) / SR for a in audios]

    cache = args.cache / f"voice_id_{args.embedder}.npz" if args.cache else None
    raw: dict[str, np.ndarray] = {}
    if cache and cache.is_file():
        with np.load(cache) as z:
            raw = {k: z[k] for k in z.files}
    todo = [c for c in clips if c.key not in raw]
    t0 = time.perf_counter()
    for i, c in enumerate(todo):
        raw[c.key] = embedder(load_audio(c))
        if (i + 1) % 500 == 0:
            print(f"  embedded {i + 1}/{len(todo)} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    if cache and todo:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **raw)
    vectors = embedder.finish(raw, [c.key for c in clips if c.half == "tune"])
    voiced = voiced_seconds(clips, args.cache)

    tune = simulate(clips, vectors, "tune", args.households, args.strangers, rng)
    th = choose_threshold(tune, args.max_stranger)
    rep = simulate(clips, vectors, "report", args.households, args.strangers, rng, voiced=voiced)
    rep_so = simulate(clips, vectors, "report", args.households, args.strangers, rng, only_corpus="speechocean762")

    def mask(values, want):
        return np.array([v == want for v in values])

    rows = {
        "embedder": args.embedder, "threshold": th, "max_stranger_tune": args.max_stranger,
        "tune": {"right": tune.right_rate(th), "stranger": tune.stranger_rate(th), "tests": len(tune.member_best)},
        "report": {"right": rep.right_rate(th), "stranger": rep.stranger_rate(th),
                   "tests": len(rep.member_best), "strangers": len(rep.stranger_best),
                   "right_child": rep.right_rate(th, mask(rep.member_group, "child")),
                   "right_adult_so": rep.right_rate(th, mask(rep.member_group, "adult") & mask(rep.member_corpus, "speechocean762")),
                   "right_librispeech": rep.right_rate(th, mask(rep.member_corpus, "librispeech")),
                   "right_by_size": {n: rep.right_rate(th, np.array(rep.member_size) == n) for n in range(2, 7)},
                   "right_voiced_2s": rep.right_rate(th, np.array(rep.member_voiced_s) >= MIN_TEST_S),
                   "tests_voiced_2s": int((np.array(rep.member_voiced_s) >= MIN_TEST_S).sum()),
                   "right_child_voiced_2s": rep.right_rate(th, mask(rep.member_group, "child") & (np.array(rep.member_voiced_s) >= MIN_TEST_S)),
                   "stranger_by_corpus": {c: rep.stranger_rate(th, mask(rep.stranger_corpus, c))
                                          for c in sorted(set(rep.stranger_corpus))},
                   "best_possible_right": float(np.mean(rep.member_right))},
        "report_speechocean_only": {"right": rep_so.right_rate(th), "stranger": rep_so.stranger_rate(th),
                                    "tests": len(rep_so.member_best)},
        "sweep_report": {f"{x:.3f}": [rep.right_rate(x), rep.stranger_rate(x)] for x in np.arange(0.60, 0.91, 0.025)},
        "latency_ms": {"p50": statistics.median(lat), "p95": lat[int(0.95 * (len(lat) - 1))], "n": len(lat),
                       "cpu_p50": statistics.median(cpu), "cpu_p95": cpu[int(0.95 * (len(cpu) - 1))],
                       "utterance_s_median": statistics.median(durations)},
        "rss_added_mb": rss1 - rss0, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
    }
    if args.checks:
        rows["checks"] = check_rates(clips, vectors, args.speech_root, random.Random(args.seed))
    print(json.dumps(rows, indent=1))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
