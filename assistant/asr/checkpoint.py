"""One self-describing checkpoint file for the recognizer.

Contents (a dict saved with torch.save):
    format, format_version    "assistant-asr", CHECKPOINT_VERSION
    architecture              "streaming_ctc" or "whisper_ctc" (also in model_config; absent in
                              the first checkpoints, which are all "streaming_ctc")
    model_config              the family's config as a dict (architectures.py)
    features                  the front end's state: config, mel filterbank (and, for our own
                              log-mel, the normalization mean and std)
    vocabulary                the CTC classes, blank first
    state_dict                network weights (fp32; fp16 for the Whisper encoder family)
    lm_texts                  normalized command sentences for the decoder's word n-gram
    training                  config, data, hardware, time, epochs
    results                   evaluation figures measured after training

`load_model(path)` rebuilds everything from the file alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from torch import nn

from assistant.asr.architectures import (architecture_of, build_model, features_from_state, model_config_dict,
                                         model_config_from_dict, storage_dtype)
from assistant.asr.text import VOCABULARY, TextTransform
from assistant.errors import AssistantError

CHECKPOINT_FORMAT = "assistant-asr"
CHECKPOINT_VERSION = 1


@dataclass
class LoadedModel:
    model: nn.Module  # StreamingCTC or WhisperCTC
    features: object  # FeatureExtractor or WhisperFeatures
    text: TextTransform
    lm_texts: list[str] = field(default_factory=list)
    training: dict = field(default_factory=dict)
    results: dict = field(default_factory=dict)
    path: Path | None = None


def save_checkpoint(path: str | Path, model: nn.Module, features, *,
                    lm_texts: list[str] | None = None, training: dict | None = None,
                    results: dict | None = None) -> None:
    """Write atomically (temp file + rename) so a crash never leaves half a checkpoint."""
    path = Path(path)
    model_config = model_config_dict(model.cfg)
    dtype = storage_dtype(model.cfg)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "architecture": model_config["architecture"],
        "model_config": model_config,
        "features": features.state(),
        "vocabulary": list(VOCABULARY),
        "state_dict": {k: v.detach().to(dtype).cpu() for k, v in model.state_dict().items()},
        "lm_texts": list(lm_texts or []),
        "training": dict(training or {}),
        "results": dict(results or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def read_checkpoint(path: str | Path) -> dict:
    """The raw checkpoint dict, validated; AssistantError naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise AssistantError(f"recognizer checkpoint {path} not found; train one with `assistant train` or set [asr] model_path")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types for a damaged file
        raise AssistantError(f"recognizer checkpoint {path} is corrupt or not a checkpoint ({str(exc).splitlines()[0]})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise AssistantError(f"recognizer checkpoint {path} is not an {CHECKPOINT_FORMAT} checkpoint")
    version = payload.get("format_version")
    if version != CHECKPOINT_VERSION:
        raise AssistantError(f"recognizer checkpoint {path} has format version {version}, expected {CHECKPOINT_VERSION}")
    if tuple(payload.get("vocabulary", ())) != VOCABULARY:
        raise AssistantError(f"recognizer checkpoint {path} uses a different vocabulary than this program")
    return payload


def load_model(path: str | Path) -> LoadedModel:
    """Rebuild the network, feature extractor and vocabulary from one checkpoint file."""
    payload = read_checkpoint(path)
    try:
        cfg = model_config_from_dict(payload["model_config"])
        if payload.get("architecture", architecture_of(payload["model_config"])) != architecture_of(payload["model_config"]):
            raise ValueError("architecture and model_config disagree")
        model = build_model(cfg)
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()})
        features = features_from_state(payload["features"])
    except (AssistantError, KeyError, RuntimeError, TypeError, ValueError, AttributeError) as exc:
        raise AssistantError(f"recognizer checkpoint {path} does not match this program's model ({str(exc).splitlines()[0]})") from None
    model.eval()
    return LoadedModel(model=model, features=features, text=TextTransform(), lm_texts=list(payload.get("lm_texts", [])),
                       training=payload.get("training", {}), results=payload.get("results", {}), path=Path(path))
