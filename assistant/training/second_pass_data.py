"""Training material for fine-tuning the second pass (Whisper) on utterance-length audio.

Two kinds of clips, both with Whisper-style targets (sentence case, a full stop):

- spoken commands, synthesized by training voices (never the reserved ones), whose names come from a
  catalog that is NOT the default one (`catalogs/spotify-millsong-sample.csv`, minus every title and
  artist of `index/default_catalog.csv`), so validation and benchmark commands, which name default-catalog
  songs, stay names the model never heard. `synthesize_commands` writes them as shards
  (`cmd-0000.npz`: int16 audio, offsets, texts, speakers) and can be stopped and resumed;
- real speech read from ../shared/data on the fly (`real_speech_items`): speechocean762 (minus the speakers
  the corpus keeps for validation and evaluation), LJ001, the LibriSpeech train sample (clips up to
  `max_real_s`), wake words. Never LJ002, FSDD theo or LibriSpeech test-clean mini.

    texts = command_texts(data_dir, default_catalog, n, seed)
    synthesize_commands(out_dir, texts, seed)          # shards under out_dir/commands
    items = real_speech_items(data_dir, seed)          # [SpeechItem(path, text, source, speaker)]
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.nlu import templates as T

SAMPLE_RATE_HZ = 16000
NAMES_CSV = "catalogs/spotify-millsong-sample.csv"  # under the data directory: artists and titles
ARTISTS_CSV = "catalogs/spotify-artist-genres.csv"   # more artists (popularity >= MIN_POPULARITY)
MIN_POPULARITY = 40
SHARD_CLIPS = 250
# Intents of the commands and their weights: mostly requests that name something.
INTENT_WEIGHTS = {"play": 0.45, "recommend": 0.2, "similar": 0.15, "next": 0.03, "pause": 0.03, "like": 0.04,
                  "dislike": 0.03, "volume_up": 0.03, "volume_down": 0.02, "what_is_playing": 0.02}
MAX_NAME_WORDS = 5
# speechocean762 speakers the speech corpus holds out (configs/corpus_v2.toml: seed, valid, eval)
SPEECHOCEAN_SPLIT = (1234, 10, 20)


@dataclass(frozen=True)
class SpeechItem:
    path: str      # an audio file (any rate soundfile reads)
    text: str      # Whisper-style target
    source: str    # "speechocean762", "lj001", "librispeech", "wake-words"
    speaker: str


def whisper_style(text: str) -> str:
    """"play dancing queen by ABBA" -> "Play dancing queen by ABBA." (first letter up, a final stop)."""
    text = " ".join(str(text).split()).strip(" ,;:-")
    text = re.sub(r"\bi(?=\b|')", "I", text)
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".?!" else text + "."


def _key(name: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]", " ", name.lower()).split())


def _speakable(name: str) -> bool:
    words = name.split()
    return 0 < len(words) <= MAX_NAME_WORDS and re.fullmatch(r"[A-Za-z0-9' .&!?-]+", name) is not None


def training_names(data_dir: str | Path, default_catalog: str | Path) -> tuple[list[str], list[str]]:
    """(artists, titles) as the catalog spells them, none of them a title or artist of the default catalog."""
    from assistant.training.texts import clean_title

    banned: set[str] = set()
    with open(default_catalog, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            banned.add(_key(row.get("artist", "")))
            banned.add(_key(clean_title(row.get("song", ""))))
    artists, titles = {}, {}
    with open(Path(data_dir) / NAMES_CSV, newline="", encoding="utf-8", errors="replace") as f:
        for row in csv.DictReader(f):
            a, t = " ".join(row.get("artist", "").split()), " ".join(clean_title(row.get("song", "")).split())
            for name, into in ((a, artists), (t, titles)):
                if _speakable(name) and _key(name) not in banned:
                    into.setdefault(_key(name), name)
    path = Path(data_dir) / ARTISTS_CSV
    if path.is_file():
        with open(path, newline="", encoding="utf-8", errors="replace") as f:
            for row in csv.DictReader(f):
                a = " ".join(row.get("artists", "").split())
                try:
                    popular = float(row.get("popularity") or 0) >= MIN_POPULARITY
                except ValueError:
                    popular = False
                if popular and _speakable(a) and _key(a) not in banned:
                    artists.setdefault(_key(a), a)
    return sorted(artists.values()), sorted(titles.values())


def command_texts(data_dir: str | Path, default_catalog: str | Path, n: int, seed: int) -> list[str]:
    """`n` Whisper-style command sentences from the product's templates, names from `training_names`."""
    artists, titles = training_names(data_dir, default_catalog)
    rng = np.random.default_rng([seed, 7])
    values = {"artist": artists, "track": titles, "album": titles, "genre": list(T.GENRES), "mood": list(T.MOODS),
              "playlist": list(T.PLAYLISTS), "year": list(T.YEARS), "sort": list(T.SORTS),
              "service": list(T.SERVICES), "music_item": list(T.MUSIC_ITEMS), "wake": list(T.WAKE_WORDS)}
    intents = [i for i in INTENT_WEIGHTS if i in T.TEMPLATES]
    p = np.array([INTENT_WEIGHTS[i] for i in intents], dtype=float)
    p /= p.sum()
    out = []
    for _ in range(n):
        temps = T.TEMPLATES[intents[int(rng.choice(len(intents), p=p))]]
        template = temps[int(rng.integers(0, len(temps)))]
        text = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)][int(rng.integers(0, len(values[m.group(1)])))], template)
        out.append(whisper_style(text))
    return [t for t in out if t]


def synthesize_commands(out_dir: str | Path, texts: list[str], seed: int, log=print) -> list[Path]:
    """Speak `texts` with sampled training voices into shards of SHARD_CLIPS under `out_dir`; shards already
    there are kept (a stopped run resumes). Returns every shard path."""
    from assistant.training import synth as S

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    voices = S.available_voices()
    cfg = S.VoiceConfig()
    shards = []
    for first in range(0, len(texts), SHARD_CLIPS):
        path = out / f"cmd-{first // SHARD_CLIPS:04d}.npz"
        shards.append(path)
        if path.is_file():
            continue
        rng = np.random.default_rng([seed, first])
        audio, offsets, kept, speakers = [], [0], [], []
        for text in texts[first:first + SHARD_CLIPS]:
            spec = S.sample_voice(rng, voices, cfg)
            try:
                wav = S.synthesize(spec, text, pad_s=(0.05, 0.1))
            except S.SynthesisError as exc:
                log(f"skipped ({spec.speaker}): {exc}")
                continue
            pcm = np.clip(np.round(wav * 32767), -32768, 32767).astype(np.int16)
            audio.append(pcm)
            offsets.append(offsets[-1] + len(pcm))
            kept.append(text)
            speakers.append(spec.speaker)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, audio=np.concatenate(audio) if audio else np.zeros(0, np.int16), offsets=np.asarray(offsets),
                 texts=json.dumps(kept), speakers=json.dumps(speakers))
        tmp.replace(path)
        log(f"{path.name}: {len(kept)} clips")
    return shards


def read_shard(path: str | Path) -> list[tuple[np.ndarray, str, str]]:
    """[(float32 audio, text, speaker)] of one shard."""
    z = np.load(path)
    audio, offsets = z["audio"], z["offsets"]
    texts, speakers = json.loads(str(z["texts"])), json.loads(str(z["speakers"]))
    return [(audio[offsets[i]:offsets[i + 1]].astype(np.float32) / 32768.0, texts[i], speakers[i])
            for i in range(len(texts))]


def _tsv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def speechocean_speakers(data_dir: str | Path) -> tuple[set, set]:
    """(validation speakers, evaluation speakers) of speechocean762, as the speech corpus draws them."""
    from assistant.training.corpus import speechocean762_held_out

    rows = _tsv(Path(data_dir) / "speech/speechocean762/transcripts.tsv")
    seed, valid, eval_ = SPEECHOCEAN_SPLIT
    return speechocean762_held_out([r["speaker"] for r in rows], valid, eval_, seed)


def real_speech_items(data_dir: str | Path, split: str = "train", max_real_s: float = 16.0,
                      wake_words_per_keyword: int = 60) -> list[SpeechItem]:
    """Real speech for `split` "train" (every source) or "valid" (speechocean762's validation speakers)."""
    data = Path(data_dir)
    items: list[SpeechItem] = []
    so = data / "speech/speechocean762"
    if (so / "transcripts.tsv").is_file():
        valid, held = speechocean_speakers(data)
        for r in _tsv(so / "transcripts.tsv"):
            spk = r["speaker"]
            if spk in held or (spk in valid) != (split == "valid"):
                continue
            items.append(SpeechItem(str(so / r["audio"]), whisper_style(r["text"]), "speechocean762", f"so/{spk}"))
    if split != "train":
        return items
    lj = data / "speech/ljspeech-part1"
    if (lj / "metadata.csv").is_file():
        texts = {}
        with open(lj / "metadata.csv", encoding="utf-8") as f:
            for line in f:
                parts = line.rstrip("\n").split("|")
                if len(parts) >= 3 and parts[0].startswith("LJ001-"):
                    texts[parts[0]] = parts[2]
        for wav in sorted(lj.rglob("LJ001-*")):
            if wav.stem in texts and wav.suffix in (".flac", ".wav"):
                items.append(SpeechItem(str(wav), whisper_style(texts[wav.stem]), "lj001", "lj"))
    ls = data / "speech/librispeech-train-clean-100-sample"
    for trans in sorted(ls.rglob("*.trans.txt")):
        for line in trans.read_text(encoding="utf-8").splitlines():
            uid, _, text = line.partition(" ")
            audio = trans.parent / f"{uid}.flac"
            if audio.is_file() and _duration_s(audio) <= max_real_s:
                items.append(SpeechItem(str(audio), whisper_style(text.lower()), "librispeech", uid.split("-")[0]))
    ww = data / "speech/wake-words"
    if (ww / "transcripts.tsv").is_file():
        rows = _tsv(ww / "transcripts.tsv")
        by_word: dict[str, list[dict]] = {}
        for r in rows:
            by_word.setdefault(r["text"], []).append(r)
        for word, group in sorted(by_word.items()):
            for r in group[:wake_words_per_keyword]:
                path = ww / r["audio"]
                if word and path.is_file():
                    items.append(SpeechItem(str(path), whisper_style(word), "wake-words", "wake-words"))
    return items


def _duration_s(path: Path) -> float:
    import soundfile as sf

    return sf.info(str(path)).duration


def load_16k(path: str) -> np.ndarray:
    """A file as float32 mono 16 kHz."""
    from assistant.training.augment import load_audio_16k

    return load_audio_16k(path)


def main(argv: list[str] | None = None) -> int:
    """Synthesize the command shards (resumes: shards already written are kept)."""
    import argparse

    repo = Path(__file__).resolve().parents[2]
    ap = argparse.ArgumentParser(description="Synthesize spoken commands for fine-tuning the second pass.")
    ap.add_argument("--data", default=str(repo.parent / "shared" / "data"))
    ap.add_argument("--catalog", default=str(repo / "index" / "default_catalog.csv"), help="names never used")
    ap.add_argument("--out", default=str(repo / "runs" / "second_pass_ft" / "commands"))
    ap.add_argument("--commands", type=int, default=6000)
    ap.add_argument("--seed", type=int, default=20261203)
    args = ap.parse_args(argv)
    texts = command_texts(args.data, args.catalog, args.commands, args.seed)
    synthesize_commands(args.out, texts, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
