import pytest
import torch

from assistant.asr.checkpoint import load_model, read_checkpoint
from assistant.errors import AssistantError


def test_round_trip_rebuilds_everything(tiny_checkpoint):
    loaded = load_model(tiny_checkpoint)
    assert loaded.model.cfg.rnn_hidden == 32
    assert loaded.features.mel_fb.shape == (257, 80)
    assert loaded.lm_texts == ["play hello by adele", "skip this song"]
    assert loaded.training["note"] == "test fixture"
    assert not loaded.model.training


def test_missing_checkpoint_names_the_file(tmp_path):
    with pytest.raises(AssistantError, match=r"nope\.pt not found"):
        load_model(tmp_path / "nope.pt")


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(AssistantError, match="corrupt"):
        load_model(bad)


def test_incompatible_checkpoint_is_a_clear_error(tmp_path, tiny_checkpoint):
    payload = read_checkpoint(tiny_checkpoint)
    old = tmp_path / "old.pt"
    torch.save({**payload, "format_version": 99}, old)
    with pytest.raises(AssistantError, match="format version 99"):
        load_model(old)
    other = tmp_path / "other.pt"
    torch.save({"weights": 1}, other)
    with pytest.raises(AssistantError, match="not an assistant-asr checkpoint"):
        load_model(other)
    mismatched = tmp_path / "mismatched.pt"
    torch.save({**payload, "model_config": {**payload["model_config"], "rnn_hidden": 48}}, mismatched)
    with pytest.raises(AssistantError, match="does not match"):
        load_model(mismatched)
