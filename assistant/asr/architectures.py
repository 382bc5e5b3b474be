"""The recognizer's two network families behind one streaming interface.

    "streaming_ctc"  the seed's CNN + ResNet + GRU/LSTM family (network.py), our log-mel (features.py)
    "whisper_ctc"    Whisper's pretrained encoder, chunk-causal, CTC head (whisper_ctc.py),
                     Whisper's log-mel (whisper_features.py)

Both offer `forward(feats, lengths)`, `initial_state()`, `step(chunk, state)`
and `finish(state)`; their feature extractors offer `log_mel`, `normalize`,
`__call__`, `stream()` and `state()`. A model config dict names its family by
`architecture` (absent = "streaming_ctc", as in the first checkpoints).
"""

from __future__ import annotations

import torch

from assistant.asr.features import FeatureExtractor
from assistant.asr.network import ModelConfig, StreamingCTC
from assistant.asr.whisper_ctc import ARCHITECTURE as WHISPER_CTC, WhisperCTC, WhisperCTCConfig
from assistant.asr.whisper_features import WhisperFeatures
from assistant.errors import AssistantError

STREAMING_CTC = "streaming_ctc"
ARCHITECTURES = (STREAMING_CTC, WHISPER_CTC)


def architecture_of(model_config: dict) -> str:
    arch = model_config.get("architecture", STREAMING_CTC)
    if arch not in ARCHITECTURES:
        raise AssistantError(f"model architecture: expected one of {', '.join(ARCHITECTURES)}, got {arch!r}")
    return arch


def model_config_from_dict(d: dict) -> ModelConfig | WhisperCTCConfig:
    """A [model] table or a checkpoint's model_config -> the family's frozen config (validated)."""
    if architecture_of(d) == WHISPER_CTC:
        return WhisperCTCConfig.from_dict(d)
    return ModelConfig.from_dict({k: v for k, v in d.items() if k != "architecture"})


def model_config_dict(cfg: ModelConfig | WhisperCTCConfig) -> dict:
    d = cfg.to_dict()
    d.setdefault("architecture", STREAMING_CTC)
    return d


def build_model(cfg: ModelConfig | WhisperCTCConfig) -> StreamingCTC | WhisperCTC:
    return WhisperCTC(cfg) if isinstance(cfg, WhisperCTCConfig) else StreamingCTC(cfg)


def new_features(cfg: ModelConfig | WhisperCTCConfig) -> FeatureExtractor | WhisperFeatures:
    """The front end a fresh model of this family is trained on."""
    return WhisperFeatures.create() if isinstance(cfg, WhisperCTCConfig) else FeatureExtractor.create()


def features_from_state(state: dict) -> FeatureExtractor | WhisperFeatures:
    if state.get("config", {}).get("kind") == "whisper":
        return WhisperFeatures.from_state(state)
    return FeatureExtractor.from_state(state)


def storage_dtype(cfg: ModelConfig | WhisperCTCConfig) -> torch.dtype:
    """Weights are stored in float16 for the pretrained encoder (16 MB instead of 33), float32 otherwise."""
    return torch.float16 if isinstance(cfg, WhisperCTCConfig) else torch.float32
