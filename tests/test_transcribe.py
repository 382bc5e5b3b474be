"""`assistant transcribe`: the streaming path on files, and every bad-input case of issue 2."""

import json

import numpy as np
import pytest
import soundfile as sf

from assistant.asr.recognizer import Recognizer
from assistant.cli import main
from assistant.config import AsrConfig
from tests.conftest import write_wav


def run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def lines(out):
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def test_no_checkpoint_is_a_clear_message(tmp_path, capsys):
    wav = write_wav(tmp_path / "a.wav", np.zeros(16000, np.float32))
    code, _, err = run_cli(capsys, "transcribe", str(wav), "--model", str(tmp_path / "missing.pt"))
    assert code == 2
    assert err.strip().startswith("error: recognizer checkpoint") and "not found" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("name, audio, rate", [
    ("empty", np.zeros(0, np.float32), 16000),
    ("silence", np.zeros(16000 * 2, np.float32), 16000),
    ("short", np.random.default_rng(0).normal(scale=0.1, size=1600).astype(np.float32), 16000),
    ("stereo44k", np.random.default_rng(1).normal(scale=0.1, size=(44100, 2)).astype(np.float32), 44100),
    ("eightk", np.random.default_rng(2).normal(scale=0.1, size=8000).astype(np.float32), 8000),
])
def test_defined_result_for_odd_audio(tmp_path, capsys, tiny_checkpoint, name, audio, rate):
    path = tmp_path / f"{name}.wav"
    sf.write(str(path), audio, rate, subtype="PCM_16")
    code, out, err = run_cli(capsys, "transcribe", str(path), "--model", str(tiny_checkpoint), "--json", "--no-bias")
    assert code == 0, err
    (row,) = lines(out)
    assert row["path"] == str(path)
    assert isinstance(row["text"], str)
    assert row["duration_s"] == pytest.approx(len(audio) / rate, abs=1e-3)
    if name == "empty":
        assert row["text"] == "" and row["rtf"] == 0


def test_corrupt_and_missing_files_are_one_line_errors(tmp_path, capsys, tiny_checkpoint):
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00garbage" * 10)
    good = write_wav(tmp_path / "good.wav", np.zeros(8000, np.float32))
    code, out, err = run_cli(capsys, "transcribe", str(corrupt), str(tmp_path / "absent.flac"), str(good),
                             "--model", str(tiny_checkpoint), "--json", "--no-bias")
    assert code == 1  # some files failed, the good one was still transcribed
    rows = lines(out)
    assert "could not be read" in rows[0]["error"]
    assert "not found" in rows[1]["error"]
    assert rows[2]["path"] == str(good) and "text" in rows[2]
    assert "Traceback" not in err


@pytest.mark.parametrize("checkpoint", ["tiny_checkpoint", "tiny_whisper_checkpoint"])
def test_ten_minute_file(tmp_path, checkpoint, request):
    """Ten minutes in one stream; the Whisper family's 6 s position table restarts 100 times on the way."""
    audio = np.random.default_rng(3).normal(scale=0.05, size=16000 * 600).astype(np.float32)
    rec = Recognizer.load(AsrConfig(model_path=str(request.getfixturevalue(checkpoint))))
    sess = rec.new_session()
    for i in range(0, len(audio), 16000 * 10):
        sess.accept(audio[i:i + 16000 * 10])
    text = sess.finish(beam=False)
    frames = rec.loaded.features.cfg.num_frames(len(audio))
    assert sum(lp.shape[0] for lp in sess.log_probs) == (frames + 1) // 2  # one output per 20 ms
    assert isinstance(text, str)


def test_whisper_family_transcribes_files_through_the_cli(tmp_path, capsys, tiny_whisper_checkpoint):
    wav = write_wav(tmp_path / "a.wav", np.random.default_rng(6).normal(scale=0.1, size=16000 * 2).astype(np.float32))
    code, out, err = run_cli(capsys, "transcribe", str(wav), "--model", str(tiny_whisper_checkpoint), "--json", "--no-bias")
    assert code == 0 and "text" in lines(out)[0]


def test_file_transcription_equals_any_chunking(tmp_path, tiny_checkpoint):
    audio = np.random.default_rng(4).normal(scale=0.2, size=16000 * 3).astype(np.float32)
    rec = Recognizer.load(AsrConfig(model_path=str(tiny_checkpoint)))
    results = []
    for chunk_ms in (20, 160, 1000, 3000):
        sess = rec.new_session()
        step = 16 * chunk_ms
        for i in range(0, len(audio), step):
            sess.accept(audio[i:i + step])
        sess.finish(beam=False)
        results.append(np.concatenate(sess.log_probs))
    for r in results[1:]:
        assert r.shape == results[0].shape
        assert np.abs(r - results[0]).max() <= 1e-4


def test_int8_quantized_recognizer_is_quantized_and_close_to_fp32(tmp_path, tiny_checkpoint):
    """quantize_int8 really swaps in int8 layers, and they give nearly the float model's frame posteriors."""
    audio = np.random.default_rng(5).normal(scale=0.1, size=16000).astype(np.float32)
    runs = {}
    for int8 in (False, True):
        rec = Recognizer.load(AsrConfig(model_path=str(tiny_checkpoint), quantize_int8=int8))
        kinds = {type(m).__module__ for m in rec.model.modules()}
        assert any("quantized" in k for k in kinds) == int8, kinds
        sess = rec.new_session()
        sess.accept(audio)
        assert isinstance(sess.finish(beam=False), str)
        runs[int8] = np.concatenate(sess.log_probs)
    lp32, lp8 = runs[False], runs[True]
    assert lp8.shape == lp32.shape
    spread = np.abs(lp32 - lp32.mean(axis=1, keepdims=True)).mean()  # how far apart the classes' scores are
    diff = np.abs(lp8 - lp32)
    assert diff.mean() < 0.05 * spread and diff.max() < 0.1, (diff.mean(), diff.max(), spread)  # rounding, not another model
    assert (lp8.argmax(axis=1) == lp32.argmax(axis=1)).mean() >= 0.9


def test_ctc_log_likelihood_of_a_text_per_frame(tiny_whisper_checkpoint):
    """The first pass's vote in the two-pass choice: how well its frames support a text."""
    rec = Recognizer.load(AsrConfig(model_path=str(tiny_whisper_checkpoint)))
    sess = rec.new_session()
    assert sess.log_likelihood("play adele") == float("-inf")  # nothing heard yet
    sess.accept(np.random.default_rng(5).normal(scale=0.2, size=16000).astype(np.float32))
    sess.finish(beam=False)
    lp = np.concatenate(sess.log_probs)
    # the empty text has one alignment, all blanks
    assert abs(sess.log_likelihood("") - lp[:, 0].sum() / len(lp)) < 1e-4
    one = sess.log_likelihood("Play ADELE!")  # normalized like every transcript
    assert np.isfinite(one) and one < 0 and one == sess.log_likelihood("play adele")
    assert sess.log_likelihood("a" * (len(lp) + 1)) == float("-inf")  # more characters than frames
