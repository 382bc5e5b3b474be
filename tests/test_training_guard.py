"""Evaluation-only data never trains or tunes: every reader of a training or tuning manifest refuses it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.cli import main
from assistant.errors import AssistantError
from assistant.training.manifest import check_training_manifest, read_training_manifest

ROOT = Path(__file__).resolve().parent.parent
LJ002_LINE = {"audio": "real/LJ002-0001.wav", "text": "the prison", "duration_s": 2.0,
              "speaker": "ljspeech/LJ", "source": "ljspeech-lj001"}
SAFE_LINE = {"audio": "real/LJ001-0001.wav", "text": "printing", "duration_s": 2.0,
             "speaker": "ljspeech/LJ", "source": "ljspeech-lj001"}


def write(path: Path, *rows: dict) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_an_lj002_line_is_a_one_line_error(tmp_path):
    manifest = write(tmp_path / "train.jsonl", SAFE_LINE, LJ002_LINE)
    with pytest.raises(AssistantError) as err:
        read_training_manifest(manifest)
    msg = str(err.value)
    assert "\n" not in msg and "line 2" in msg and "LJ002" in msg and "evaluation-only" in msg


@pytest.mark.parametrize("row", [
    {"audio": "a.wav", "text": "x", "speaker": "flite/rms", "source": "synth-command"},
    {"audio": "7_theo_3.wav", "text": "seven", "speaker": "fsdd/theo", "source": "fsdd"},
    {"audio": "LibriSpeech/test-clean/1089/a.flac", "text": "x", "source": "librispeech"},
    {"audio": "a.wav", "text": "x", "speaker": "espeak-ng/en-gb-scotland+m3", "source": "synth-command"},
])
def test_reserved_voices_and_eval_sources_are_refused(tmp_path, row):
    with pytest.raises(AssistantError, match="refusing to train or tune"):
        check_training_manifest(write(tmp_path / "valid.jsonl", SAFE_LINE, row))


def test_an_evaluation_manifest_is_refused_by_its_name(tmp_path):
    with pytest.raises(AssistantError, match="evaluation manifest"):
        check_training_manifest(write(tmp_path / "eval_reserved.jsonl", SAFE_LINE))


def test_a_training_manifest_passes(tmp_path):
    check_training_manifest(write(tmp_path / "train.jsonl", SAFE_LINE, SAFE_LINE))


def test_assistant_train_refuses_lj002(tmp_path, capsys):
    write(tmp_path / "train.jsonl", LJ002_LINE)
    write(tmp_path / "valid.jsonl", SAFE_LINE)
    cfg = tmp_path / "train.toml"
    cfg.write_text('[train]\ntrain_manifests = ["train.jsonl"]\nvalid_manifest = "valid.jsonl"\n'
                   'out_dir = "run"\nexport_path = "asr.pt"\n')
    assert main(["train", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: refusing to train or tune on") and "\n" not in err and "LJ002" in err
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").rglob("*.pt"))


@pytest.mark.parametrize("script", ["bench/asr_tune_decoder.py", "bench/second_pass_tune.py"])
def test_tuning_scripts_refuse_lj002(tmp_path, script):
    manifest = write(tmp_path / "valid.jsonl", SAFE_LINE, LJ002_LINE)
    done = subprocess.run([sys.executable, script, "--manifest", str(manifest)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    err = done.stderr.strip()
    assert err.startswith("error: refusing to train or tune on") and "\n" not in err and "LJ002" in err
