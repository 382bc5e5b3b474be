import numpy as np
import pytest
import torch

from assistant.asr.features import FeatureConfig, FeatureExtractor, StreamingFeatures


@pytest.fixture(scope="module")
def extractor():
    rng = np.random.default_rng(1)
    fe = FeatureExtractor.create()
    return fe.with_stats(torch.tensor(rng.normal(size=80), dtype=torch.float32), torch.tensor(rng.uniform(0.5, 2, size=80), dtype=torch.float32))


def test_frame_count_and_shape(extractor):
    cfg = FeatureConfig()
    assert (cfg.win_length, cfg.hop_length) == (400, 160)
    for n in (0, 399, 400, 559, 560, 16000):
        assert extractor(np.zeros(n, dtype=np.float32)).shape == (cfg.num_frames(n), 80)
    assert cfg.num_frames(16000) == 98


@pytest.mark.parametrize("chunk", [1, 37, 160, 400, 1601, 16000, 32000])
def test_streaming_features_equal_whole_clip(extractor, chunk):
    audio = np.random.default_rng(chunk).normal(scale=0.2, size=16000 * 3 + 123).astype(np.float32)
    whole = extractor(audio)
    stream = StreamingFeatures(extractor)
    parts = [stream.accept(audio[i:i + chunk]) for i in range(0, len(audio), chunk)]
    streamed = torch.cat(parts)
    assert streamed.shape == whole.shape
    assert (streamed - whole).abs().max().item() <= 1e-5


def test_statistics_travel_with_state(extractor):
    clone = FeatureExtractor.from_state(extractor.state())
    audio = np.random.default_rng(0).normal(size=8000).astype(np.float32)
    assert torch.equal(clone(audio), extractor(audio))


def test_sine_energy_lands_in_the_right_mel_bin():
    fe = FeatureExtractor.create()
    t = np.arange(16000) / 16000
    low = fe(np.sin(2 * np.pi * 300 * t).astype(np.float32)).mean(0).argmax()
    high = fe(np.sin(2 * np.pi * 3000 * t).astype(np.float32)).mean(0).argmax()
    assert low < high
