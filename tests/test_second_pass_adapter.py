"""Low-rank adapters over the second pass (assistant.asr.adapter) and their training pieces."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from assistant.asr.adapter import ADAPTER_FORMAT, read_adapter, target_layers
from assistant.asr.second_pass import SecondPassOptions, WhisperSecondPass
from assistant.config import REPO_ROOT, load_config
from assistant.errors import AssistantError

DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="module")
def stock():
    return WhisperSecondPass.load(SecondPassOptions(precision="fp32", beam_size=1))


def _adapter(path: Path, layers: dict, base: str = "whisper-tiny.en", rank: int = 2) -> Path:
    torch.save({"format": ADAPTER_FORMAT, "base_model": base, "rank": rank, "alpha": 2.0, "layers": layers,
                "training": {"step": 1}, "validation": {}}, path)
    return path


def _random_layers(sp, names: tuple[str, ...], rank: int = 2, scale: float = 0.05) -> dict:
    g = torch.Generator().manual_seed(0)
    layers = target_layers(sp.encoder, sp.decoder)
    out = {}
    for name in names:
        o, i = layers[name].weight.shape
        out[name] = {"A": torch.randn(rank, i, generator=g) * scale, "B": torch.randn(o, rank, generator=g) * scale}
    return out


def test_bad_adapter_files_are_named_in_one_line(tmp_path):
    with pytest.raises(AssistantError, match="not found"):
        read_adapter(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(AssistantError, match="not readable"):
        read_adapter(junk)
    foreign = tmp_path / "foreign.pt"
    torch.save({"format": "something else"}, foreign)
    with pytest.raises(AssistantError, match="not a second pass adapter"):
        read_adapter(foreign)
    empty = tmp_path / "empty.pt"
    torch.save({"format": ADAPTER_FORMAT, "rank": 2, "alpha": 2.0, "layers": {}}, empty)
    with pytest.raises(AssistantError, match="damaged"):
        read_adapter(empty)


def test_an_adapter_changes_exactly_its_layers(stock, tmp_path):
    names = ("encoder.blocks.0.qkv", "decoder.blocks.3.cross_kv")
    layers = _random_layers(stock, names)
    path = _adapter(tmp_path / "a.pt", layers)
    adapted = WhisperSecondPass.load(SecondPassOptions(precision="fp32", beam_size=1, adapter=str(path)))
    assert "adapter a.pt" in adapted.model_name
    before, after = target_layers(stock.encoder, stock.decoder), target_layers(adapted.encoder, adapted.decoder)
    for name in before:
        delta = (after[name].weight - before[name].weight).abs().max().item()
        if name in names:
            expected = (layers[name]["B"] @ layers[name]["A"]).abs().max().item()  # scale alpha / rank = 1
            assert delta == pytest.approx(expected, rel=1e-4)
        else:
            assert delta == 0.0, name
    hyp = adapted.transcribe(np.zeros(16000, dtype=np.float32) + 1e-3)
    assert isinstance(hyp.text, str)


def test_an_adapter_for_other_shapes_is_refused_and_the_daemon_falls_back_to_stock(stock, tmp_path):
    from assistant.asr.second_pass_factory import load_with_fallback

    wrong = {"encoder.blocks.0.fc1": {"A": torch.zeros(2, 10), "B": torch.zeros(7, 2)}}
    path = _adapter(tmp_path / "wrong.pt", wrong)
    options = SecondPassOptions(precision="fp32", beam_size=1, adapter=str(path))
    with pytest.raises(AssistantError, match="encoder.blocks.0.fc1"):
        WhisperSecondPass.load(options)
    sp = load_with_fallback(options)
    assert sp.options.adapter == "" and "wrong.pt" in sp.load_notice


def test_an_adapter_for_another_model_is_not_applied(stock, tmp_path):
    path = _adapter(tmp_path / "base.pt", _random_layers(stock, ("encoder.blocks.0.qkv",)), base="whisper-base")
    sp = WhisperSecondPass.load(SecondPassOptions(precision="fp32", beam_size=1, adapter=str(path)))
    assert sp.options.adapter == ""
    assert torch.equal(sp.encoder.blocks[0].qkv.weight, stock.encoder.blocks[0].qkv.weight)


def test_config_resolves_the_adapter_against_the_repository(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[asr]\nfinal_pass_adapter = "models/x.pt"\n')
    asr = load_config(cfg).asr
    assert asr.final_pass_adapter_path == str(REPO_ROOT / "models" / "x.pt")
    assert SecondPassOptions.from_config(asr).adapter == str(REPO_ROOT / "models" / "x.pt")
    cfg.write_text('[asr]\nfinal_pass_adapter = ""\n')
    assert SecondPassOptions.from_config(load_config(cfg).asr).adapter == ""


def test_shipped_adapter_when_configured_loads_over_stock_tiny_en():
    asr = load_config(REPO_ROOT / "config.toml").asr
    if not asr.final_pass_adapter:
        pytest.skip("config.toml ships no adapter")
    adapter = read_adapter(asr.final_pass_adapter_path)
    assert adapter.base_model == "whisper-tiny.en"
    assert Path(asr.final_pass_adapter_path).stat().st_size < 25 * 2**20
    assert adapter.validation.get("greedy_wer_percent")  # the file says what it measured


# --------------------------------------------------------------------------- training pieces

def test_wrapped_layers_start_as_stock_and_merge_to_what_they_compute(stock, tmp_path):
    from assistant.training.second_pass_train import add_adapters, adapter_state

    sp = WhisperSecondPass.load(SecondPassOptions(precision="fp32", beam_size=1))
    x = torch.randn(2, 5, sp.encoder.dims.d_model)
    reference = sp.encoder.blocks[1].fc1(x)
    wrapped = add_adapters(sp.encoder, sp.decoder, rank=4, alpha=8.0, dropout=0.0)
    assert set(wrapped) == set(target_layers(stock.encoder, stock.decoder))
    assert torch.allclose(sp.encoder.blocks[1].fc1(x), reference)  # B = 0: nothing changed yet
    trainable = [p for p in list(sp.encoder.parameters()) + list(sp.decoder.parameters()) if p.requires_grad]
    assert trainable and all(any(p is m.A or p is m.B for m in wrapped.values()) for p in trainable)
    with torch.no_grad():
        wrapped["encoder.blocks.1.fc1"].B.normal_(0, 0.02)
    lora_out = sp.encoder.blocks[1].fc1(x)
    state = adapter_state(wrapped)
    layers = {"encoder.blocks.1.fc1": state["encoder.blocks.1.fc1"]}
    path = _adapter(tmp_path / "t.pt", layers, rank=4)
    blob = torch.load(path, weights_only=True)
    blob["alpha"] = 8.0
    torch.save(blob, path)
    merged = WhisperSecondPass.load(SecondPassOptions(precision="fp32", beam_size=1, adapter=str(path)))
    assert torch.allclose(merged.encoder.blocks[1].fc1(x), lora_out, atol=1e-5)


def test_training_options_are_validated(tmp_path):
    from assistant.training.second_pass_train import TrainOptions

    with pytest.raises(ValueError, match="batch_size"):
        TrainOptions(batch_size=0)
    bad = tmp_path / "t.toml"
    bad.write_text("[train]\nlearning_rate = 1\n")
    with pytest.raises(ValueError, match="unknown"):
        TrainOptions.from_toml(bad)
    assert TrainOptions.from_toml(REPO_ROOT / "configs" / "train_second_pass.toml").rank > 0


def test_whisper_style_targets():
    from assistant.training.second_pass_data import whisper_style

    assert whisper_style("play dancing queen by ABBA") == "Play dancing queen by ABBA."
    assert whisper_style("i'd like what i hear ,") == "I'd like what I hear."
    assert whisper_style("is it?") == "Is it?"
    assert whisper_style("  ") == ""


@pytest.mark.skipif(not (DATA / "catalogs").is_dir(), reason="shared data not present")
def test_training_names_never_name_the_default_catalog():
    from assistant.training.second_pass_data import _key, training_names
    from assistant.training.texts import clean_title

    artists, titles = training_names(DATA, REPO_ROOT / "index" / "default_catalog.csv")
    assert len(artists) > 1000 and len(titles) > 1000
    default = set()
    with open(REPO_ROOT / "index" / "default_catalog.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            default |= {_key(row["artist"]), _key(clean_title(row["song"]))}
    assert not ({_key(a) for a in artists} | {_key(t) for t in titles}) & default


@pytest.mark.skipif(not (DATA / "speech" / "speechocean762").is_dir(), reason="shared data not present")
def test_real_speech_keeps_evaluation_data_out():
    from assistant.training.second_pass_data import real_speech_items, speechocean_speakers

    train = real_speech_items(DATA, "train")
    valid = real_speech_items(DATA, "valid")
    valid_speakers, eval_speakers = speechocean_speakers(DATA)
    assert {i.source for i in train} >= {"speechocean762", "librispeech", "lj001"}
    assert not any("LJ002" in i.path or "test-clean" in i.path or "fsdd" in i.path for i in train)
    spk = {i.speaker.split("/", 1)[1] for i in train if i.source == "speechocean762"}
    assert not spk & (valid_speakers | eval_speakers)
    assert {i.speaker.split("/", 1)[1] for i in valid} <= valid_speakers
    assert all(i.text and i.text[0].isupper() for i in train[:50])
