"""Corpus builder: manifests (bad input), training guard, text splits, config, a tiny end-to-end build."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from assistant.errors import AssistantError
from assistant.training import synth as S
from assistant.training.manifest import (
    ManifestEntry, assert_training_safe, ctc_feasible, ctc_frames_needed, read_manifest, training_violation,
    write_manifest,
)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not (SHARED_DATA / "nlu").is_dir(),
                                reason=f"shared data not found at {SHARED_DATA} (corpus sources)")


def _wav(path: Path, seconds: float, rate: int = 16000) -> Path:
    rng = np.random.default_rng(0)
    sf.write(str(path), (rng.standard_normal(int(seconds * rate)) * 0.1).astype(np.float32), rate, subtype="PCM_16")
    return path


# --------------------------------------------------------------------------- manifest reader

def test_read_manifest_skips_bad_lines_with_line_numbers(tmp_path):
    _wav(tmp_path / "good.wav", 1.5)
    _wav(tmp_path / "short.wav", 0.1)
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    (tmp_path / "empty.wav").write_bytes(b"")
    lines = [
        {"audio": "good.wav", "text": "Play Hello by Adele!", "duration_s": 1.5, "speaker": "s", "source": "x"},
        {"audio": "missing.wav", "text": "skip"},
        {"audio": "good.wav", "text": "   "},
        {"audio": "corrupt.wav", "text": "pause"},
        {"audio": "short.wav", "text": "hello suggest me a sad song"},
        "this is not json",
        {"text": "no audio key"},
        {"audio": "empty.wav", "text": "stop"},
        {"audio": str(tmp_path / "good.wav"), "text": "next song"},  # absolute path, no duration: read from header
    ]
    m = tmp_path / "m.jsonl"
    m.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n\n")
    entries, skipped = read_manifest(m)
    assert [e.text for e in entries] == ["play hello by adele", "next song"]
    assert entries[1].duration_s == pytest.approx(1.5)
    assert Path(entries[0].audio).is_absolute() and entries[0].line_no == 1
    reasons = dict(skipped)
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7, 8]
    assert "missing" in reasons[2]
    assert "empty transcript" in reasons[3]
    assert "corrupt" in reasons[4] and "corrupt" in reasons[8]
    assert "too short" in reasons[5]
    assert "JSON" in reasons[6]
    assert "audio" in reasons[7]


def test_read_manifest_full_check_and_missing_manifest(tmp_path):
    with pytest.raises(AssistantError, match="not found"):
        read_manifest(tmp_path / "nope.jsonl")
    _wav(tmp_path / "a.wav", 1.0)
    m = tmp_path / "m.jsonl"
    m.write_text(json.dumps({"audio": "a.wav", "text": "skip"}) + "\n")
    entries, skipped = read_manifest(m, check_audio="full")
    assert len(entries) == 1 and not skipped


def test_ctc_feasibility_counts_repeats():
    assert ctc_frames_needed("abc") == 3
    assert ctc_frames_needed("hello") == 6  # "ll" needs a blank between
    assert ctc_frames_needed("all good") == 10
    # 50 output frames per second (10 ms hop, 2x subsampling)
    assert ctc_feasible("hello", 0.12)  # 6 frames
    assert not ctc_feasible("hello", 0.10)  # 5 frames


def test_write_manifest_relative_paths_and_normalized_text(tmp_path):
    (tmp_path / "clips").mkdir()
    clip = _wav(tmp_path / "clips" / "a.wav", 1.0)
    e = ManifestEntry(str(clip), "play hello by adele", 1.0, "espeak-ng/en-us+m3", "synth-command")
    out = write_manifest(tmp_path / "train.jsonl", [e], training=True)
    row = json.loads(out.read_text())
    assert row == {"audio": "clips/a.wav", "text": "play hello by adele", "duration_s": 1.0,
                   "speaker": "espeak-ng/en-us+m3", "source": "synth-command"}
    with pytest.raises(AssistantError, match="not normalized"):
        write_manifest(tmp_path / "bad.jsonl", [ManifestEntry(str(clip), "Play Hello!", 1.0)])
    entries, skipped = read_manifest(out)
    assert entries[0].audio == str(clip) and not skipped


# --------------------------------------------------------------------------- training guard

@pytest.mark.parametrize("speaker,source,audio", [
    ("mbrola/us3", "synth-command", "/c/x.wav"),
    ("espeak-ng/mb-us3", "synth-command", "/c/x.wav"),
    ("flite/rms", "synth-command", "/c/x.wav"),
    ("festival/ked_diphone", "synth-general", "/c/x.wav"),
    ("espeak-ng/en-gb-scotland", "synth-command", "/c/x.wav"),
    ("espeak-ng/en-gb-scotland+m3", "synth-command", "/c/x.wav"),
    ("espeak-ng/en-gb-scotland+klatt2", "synth-command", "/c/x.wav"),
    ("ljspeech/LJ", "ljspeech-lj001", "/real/LJ002-0001.wav"),
    ("ljspeech/LJ", "ljspeech-lj002", "/real/x.wav"),
    ("fsdd/theo", "fsdd", "/real/7_theo_3.wav"),
    ("fsdd/george", "fsdd", "/real/7_theo_3.wav"),
    ("librispeech/1089", "librispeech-test-clean", "/real/1089-134686-0000.wav"),
    ("librispeech/1089", "librispeech-train-clean-100", "/x/LibriSpeech/test-clean/1089/a.flac"),
    ("espeak-ng/en-us", "synth-eval", "/c/x.wav"),
])
def test_training_guard_refuses_reserved_voices_and_eval_data(tmp_path, speaker, source, audio):
    e = ManifestEntry(audio, "skip", 1.0, speaker, source)
    assert training_violation(e)
    with pytest.raises(AssistantError, match="refusing"):
        assert_training_safe([e])
    with pytest.raises(AssistantError, match="refusing"):
        write_manifest(tmp_path / "train.jsonl", [e], training=True)
    assert not (tmp_path / "train.jsonl").exists()
    write_manifest(tmp_path / "eval.jsonl", [e], training=False)  # evaluation manifests may hold them


@pytest.mark.parametrize("speaker,source", [
    ("espeak-ng/en-us+m3", "synth-command"), ("espeak-ng/en-gb-x-rp", "synth-general"),
    ("mbrola/us1", "synth-command"), ("mbrola/us2", "synth-command"), ("flite/slt", "synth-command"),
    ("festival/kal_diphone", "synth-command"), ("piper/en_US-joe-medium", "synth-command"),
    ("fsdd/george", "fsdd"), ("ljspeech/LJ", "ljspeech-lj001"), ("librispeech/19", "librispeech-train-clean-100"),
])
def test_training_guard_allows_training_voices(speaker, source):
    assert training_violation(ManifestEntry("/c/LJ001-0001.wav", "skip", 1.0, speaker, source)) is None


# --------------------------------------------------------------------------- texts

@needs_data
def test_text_sets_held_out_never_in_training_and_seed_words_covered():
    from assistant.asr.text import normalize_text
    from assistant.training.texts import TextConfig, make_text_sets, seed_words_missing

    cfg = TextConfig(train_command_sentences=800, valid_command_sentences=60, eval_command_sentences=60,
                     general_sentences=100, valid_general_sentences=20)
    sets = make_text_sets(SHARED_DATA, cfg, seed=7)
    train = set(sets.train_commands) | set(sets.train_general)
    held = set(sets.valid_commands) | set(sets.eval_commands) | set(sets.valid_general)
    assert not train & held
    assert len(sets.eval_commands) == 60 and len(sets.valid_commands) == 60
    assert "hello suggest me a sad song" not in sets.eval_commands + sets.valid_commands
    assert not seed_words_missing(sets.train_commands + sets.train_general)
    for s in list(train)[:200] + list(held):
        assert s == normalize_text(s) and s
    # deterministic
    again = make_text_sets(SHARED_DATA, cfg, seed=7)
    assert again.train_commands == sets.train_commands and again.eval_commands == sets.eval_commands
    # LJ002 transcripts are never used for training text
    lj002 = {t for line in (SHARED_DATA / "speech/ljspeech-part1/metadata.csv").read_text().splitlines()
             if line.startswith("LJ002-") for t in [normalize_text(line.split("|")[-1])]}
    assert not lj002 & set(sets.train_general)


def test_templates_are_plain_data():
    from assistant.nlu import templates as T

    assert set(T.TEMPLATES) <= set(T.INTENTS)
    words = " ".join(t for ts in T.TEMPLATES.values() for t in ts).split()
    for w in T.SEED_EXAMPLE.split():
        assert w in words or w in T.MOODS or w in T.WAKE_WORDS


def test_clean_title():
    from assistant.training.texts import clean_title

    assert clean_title("Bartender (feat. Akon)") == "Bartender"
    assert clean_title("Makeba - Ian Asher Remix") == "Makeba"
    assert clean_title("Hey Mama (feat. Nicki Minaj, Bebe Rexha & Afrojack)") == "Hey Mama"


# --------------------------------------------------------------------------- config

def test_config_unknown_key_is_named(tmp_path):
    from assistant.training.corpus import load_config

    p = tmp_path / "c.toml"
    p.write_text("[texts]\ntrain_command_sentences = 10\nbogus_key = 3\n")
    with pytest.raises(AssistantError, match="bogus_key"):
        load_config(p)
    p.write_text("[nonsense]\na = 1\n")
    with pytest.raises(AssistantError, match="nonsense"):
        load_config(p)
    p.write_text("[corpus]\njobs = 'two'\n")
    with pytest.raises(AssistantError, match="jobs"):
        load_config(p)
    p.write_text("[voices]\nmbrola_voices = [1, 2]\n")
    with pytest.raises(AssistantError, match="mbrola_voices"):
        load_config(p)
    p.write_text("[voices]\nmbrola_voices = ['us1']\nengine_weights = { espeak-ng = 1.0 }\n")
    cfg = load_config(p)
    assert cfg.voices.mbrola_voices == ("us1",) and cfg.voices.engine_weights == (("espeak-ng", 1.0),)


@pytest.mark.parametrize("name", ["corpus.toml", "corpus_v2.toml"])
def test_repository_configs_load(name):
    from assistant.training.corpus import REPO_ROOT, load_config

    cfg = load_config(REPO_ROOT / "configs" / name)
    assert cfg.corpus.jobs == 2 and cfg.texts.train_command_sentences > 0
    assert not any(S.is_reserved_speaker(f"{e}/{v}") for e, vs in cfg.voices.inventory().items() for v in vs)


# --------------------------------------------------------------------------- tiny end-to-end build

def _tiny_data(root: Path) -> Path:
    """A data folder with a 3-row catalog and a 2-utterance LibriSpeech-layout set (no NLU sets)."""
    (root / "catalogs").mkdir(parents=True)
    (root / "catalogs/top-hits-2000-2019.csv").write_text(
        "artist,song,genre\nAdele,Hello,Pop\nQueen,Bohemian Rhapsody (Remastered),Rock\nDrake,One Dance,Hip-hop\n")
    d = root / "speech/librispeech-train-clean-100-sample/LibriSpeech/train-clean-100/19/198"
    d.mkdir(parents=True)
    _wav(d / "19-198-0000.flac", 1.2)
    _wav(d / "19-198-0001.flac", 1.0)
    (d / "19-198.trans.txt").write_text("19-198-0000 PLAY SOME MUSIC\n19-198-0001 STOP\n")
    return root


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (scripts/setup.sh --synth)")
def test_tiny_build_is_deterministic_and_cached(tmp_path):
    from assistant.training.corpus import load_config, build_corpus
    from assistant.training.synth import is_reserved_speaker

    data = _tiny_data(tmp_path / "data")
    cfg_path = tmp_path / "c.toml"
    cfg_path.write_text(f"""
[corpus]
data_dir = "{data}"
jobs = 1
[texts]
train_command_sentences = 12
valid_command_sentences = 3
eval_command_sentences = 4
general_sentences = 0
valid_general_sentences = 0
seed_in_training = 1
[voices]
engine_weights = {{ espeak-ng = 1.0 }}
[music]
pieces = 1
seconds = 3.0
[eval]
all_variants_seed = false
""")
    cfg = load_config(cfg_path)
    out = tmp_path / "corpus"
    logs: list[str] = []
    stats = build_corpus(cfg, out_dir=out, log=logs.append)
    train = [json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()]
    assert {r["source"] for r in train} == {"synth-command", "librispeech-train-clean-100"}
    assert all(not is_reserved_speaker(r["speaker"]) for r in train)
    assert all((out / r["audio"]).exists() and r["duration_s"] > 0 for r in train)
    info = sf.info(str(out / train[0]["audio"]))
    assert info.samplerate == 16000 and info.channels == 1 and info.subtype == "PCM_16"
    seed = [json.loads(x) for x in (out / "eval_seed.jsonl").read_text().splitlines()]
    assert seed and all(is_reserved_speaker(r["speaker"]) and r["text"] == "hello suggest me a sad song" for r in seed)
    reserved = [json.loads(x) for x in (out / "eval_reserved.jsonl").read_text().splitlines()]
    assert len(reserved) == 4 and not {r["text"] for r in reserved} & {r["text"] for r in train}
    assert stats["manifests"]["train"]["clips"] == len(train)
    assert json.loads((out / "STATS.json").read_text())["manifests"]["train"]["hours"] > 0
    entries, skipped = read_manifest(out / "train.jsonl")
    assert len(entries) == len(train) and not skipped

    # Second run: everything cached, identical manifests.
    before = {p.name: p.read_text() for p in out.glob("*.jsonl")}
    logs.clear()
    build_corpus(cfg, out_dir=out, log=logs.append)
    assert any("0 to make" in line for line in logs), logs
    assert {p.name: p.read_text() for p in out.glob("*.jsonl")} == before


def test_eval_clips_do_not_depend_on_training_trim(tmp_path):
    import dataclasses

    from assistant.training.corpus import CorpusConfig, plan_corpus

    data = _tiny_data(tmp_path / "data")
    base = CorpusConfig()
    outs = []
    for trim in (-40.0, -50.0):
        cfg = dataclasses.replace(base, corpus=dataclasses.replace(base.corpus, data_dir=str(data), trim_db=trim),
                                  texts=dataclasses.replace(base.texts, train_command_sentences=5, valid_command_sentences=2,
                                                            eval_command_sentences=3, general_sentences=0,
                                                            valid_general_sentences=0))
        jobs, _ = plan_corpus(cfg, tmp_path / "out", {"espeak-ng": ("en-us",)}, 0, False, log=lambda *a: None)
        outs.append(({j.out for j in jobs if j.split.startswith("eval")},
                     {j.out for j in jobs if j.split == "train" and j.voice is not None}))
    assert outs[0][0] == outs[1][0] and outs[0][0]
    assert outs[0][1] and not outs[0][1] & outs[1][1]  # synthesized training clips do change
