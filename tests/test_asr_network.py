import pytest
import torch

from assistant.asr.network import ModelConfig, StreamingCTC, count_parameters, output_lengths
from assistant.errors import AssistantError

VARIANTS = [
    ModelConfig(cnn_channels=8, rnn_input_dim=64, rnn_hidden=64, rnn_layers=2, lookahead_frames=3),
    ModelConfig(cnn_channels=8, rnn_type="lstm", rnn_input_dim=64, rnn_hidden=64, rnn_layers=2, residual_blocks=1, lookahead_frames=0),
    ModelConfig(cnn_channels=8, rnn_input_dim=64, rnn_hidden=64, rnn_layers=1, residual_blocks=0, lookahead_frames=5),
]


def _model(cfg: ModelConfig, seed: int = 0) -> StreamingCTC:
    torch.manual_seed(seed)
    m = StreamingCTC(cfg).eval()
    with torch.no_grad():
        m.row_conv.weight.normal_(std=0.5)  # exercise the lookahead, not just its identity init
    return m


def _stream(model, feats, chunk):
    state = model.initial_state(feats.shape[0])
    outs = []
    for i in range(0, feats.shape[1], chunk):
        out, state = model.step(feats[:, i:i + chunk], state)
        outs.append(out)
    outs.append(model.finish(state))
    return torch.cat(outs, dim=1)


@pytest.mark.parametrize("cfg", VARIANTS, ids=["gru", "lstm", "gru-noresnet"])
@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 16, 51, 200])  # 1 frame (10 ms) to 200 frames (2 s)
def test_streaming_equals_offline(cfg, chunk):
    model = _model(cfg)
    feats = torch.randn(1, 243, cfg.n_mels, generator=torch.Generator().manual_seed(chunk))
    with torch.inference_mode():
        offline, lengths = model(feats, torch.tensor([243]))
        streamed = _stream(model, feats, chunk)
    assert streamed.shape == offline.shape == (1, 122, cfg.num_classes)
    assert (streamed - offline).abs().max().item() <= 1e-4


def test_padded_batch_matches_single_utterances():
    model = _model(VARIANTS[0])
    a, b = torch.randn(1, 90, 80), torch.randn(1, 61, 80)
    batch = torch.zeros(2, 90, 80)
    batch[0], batch[1, :61] = a[0], b[0]
    with torch.inference_mode():
        out, lens = model(batch, torch.tensor([90, 61]))
        single_b, _ = model(b, torch.tensor([61]))
    assert lens.tolist() == [45, 31]
    assert (out[1, :31] - single_b[0]).abs().max().item() <= 1e-4


def test_output_lengths_and_probabilities():
    assert output_lengths(torch.tensor([1, 2, 3, 100])).tolist() == [1, 1, 2, 50]
    model = _model(VARIANTS[0])
    with torch.inference_mode():
        out, _ = model(torch.randn(2, 50, 80), torch.tensor([50, 40]))
    assert torch.allclose(out.exp().sum(-1), torch.ones(2, 25), atol=1e-4)


def test_bidirectional_is_offline_only():
    model = StreamingCTC(ModelConfig(cnn_channels=4, rnn_input_dim=16, rnn_hidden=16, rnn_layers=1, bidirectional=True))
    out, _ = model(torch.randn(1, 20, 80), torch.tensor([20]))
    assert out.shape == (1, 10, 29)
    with pytest.raises(AssistantError, match="bidirectional"):
        model.initial_state()
    with pytest.raises(AssistantError, match="bidirectional"):
        model.step(torch.randn(1, 4, 80), None)


def test_default_model_size_and_latency():
    cfg = ModelConfig()
    assert 2e6 < count_parameters(StreamingCTC(cfg)) < 6e6
    assert cfg.algorithmic_latency_ms <= 100


def test_bad_model_config_is_a_clear_error():
    with pytest.raises(AssistantError, match="rnn_type"):
        ModelConfig(rnn_type="transformer")
    with pytest.raises(AssistantError, match="unknown key 'hidden'"):
        ModelConfig.from_dict({"hidden": 3})
