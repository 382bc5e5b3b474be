"""Low-rank adapters over the second pass's Whisper weights: what our fine-tuning changed, and nothing else.

A file (`models/second_pass_adapter.pt`, written by `assistant.training.second_pass_train`) holds, per linear
layer it tuned, two small matrices A (rank, in) and B (out, rank); loading adds `scale * B @ A` to the stock
weight, so the shipped file is a few MB over the installed package's Whisper tiny.en.

    adapter = read_adapter(path)                 # AssistantError (one line) when missing, damaged or foreign
    adapter.check_base(model_name, encoder, decoder)
    adapter.merge(encoder, decoder)              # in place, fp32, before the precision is applied

The file says what it is (`format`), which model it was trained over (`base_model`, layer shapes), how
(`training`) and what it measured (`validation`); nothing here downloads anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from assistant.errors import AssistantError

ADAPTER_FORMAT = "assistant-whisper-lora/1"
# The linear layers an adapter may tune, by module path under "encoder." / "decoder." (blocks.N.<name>).
ENCODER_TARGETS = ("qkv", "out", "fc1", "fc2")
DECODER_TARGETS = ("self_qkv", "self_out", "cross_q", "cross_kv", "cross_out", "fc1", "fc2")


def target_layers(encoder: torch.nn.Module, decoder: torch.nn.Module) -> dict[str, torch.nn.Linear]:
    """"encoder.blocks.0.qkv" -> the Linear, for every layer an adapter may tune."""
    out: dict[str, torch.nn.Linear] = {}
    for prefix, model, names in (("encoder", encoder, ENCODER_TARGETS), ("decoder", decoder, DECODER_TARGETS)):
        for i, block in enumerate(model.blocks):
            for name in names:
                out[f"{prefix}.blocks.{i}.{name}"] = getattr(block, name)
    return out


@dataclass(frozen=True)
class Adapter:
    path: Path
    base_model: str
    rank: int
    alpha: float
    layers: dict = field(repr=False)   # layer path -> {"A": (rank, in), "B": (out, rank)}
    training: dict = field(default_factory=dict)
    validation: dict = field(default_factory=dict)

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    def check_base(self, model_name: str, encoder: torch.nn.Module, decoder: torch.nn.Module) -> None:
        """AssistantError unless every adapted layer exists in this model with the shapes it was trained on."""
        if model_name != self.base_model:
            raise AssistantError(f"adapter {self.path} was trained over {self.base_model}, not {model_name}")
        layers = target_layers(encoder, decoder)
        for name, ab in self.layers.items():
            layer = layers.get(name)
            if layer is None:
                raise AssistantError(f"adapter {self.path}: the model has no layer {name}")
            out_f, in_f = layer.weight.shape
            if ab["A"].shape != (self.rank, in_f) or ab["B"].shape != (out_f, self.rank):
                raise AssistantError(f"adapter {self.path}: layer {name} is {out_f}x{in_f}, the adapter is for "
                                     f"{ab['B'].shape[0]}x{ab['A'].shape[1]}")

    def merge(self, encoder: torch.nn.Module, decoder: torch.nn.Module) -> None:
        """Add the adapter to the stock weights, in place (the weights must still be fp32)."""
        layers = target_layers(encoder, decoder)
        with torch.no_grad():
            for name, ab in self.layers.items():
                w = layers[name].weight
                w += self.scale * (ab["B"].float() @ ab["A"].float())


def read_adapter(path: str | Path) -> Adapter:
    """The adapter file at `path`; AssistantError (one line) when it is missing, damaged or not an adapter."""
    path = Path(path)
    if not path.is_file():
        raise AssistantError(f"second pass adapter {path} not found")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds on a damaged file
        raise AssistantError(f"second pass adapter {path} is not readable ({type(exc).__name__})") from None
    if not isinstance(blob, dict) or blob.get("format") != ADAPTER_FORMAT:
        raise AssistantError(f"{path} is not a second pass adapter (expected format {ADAPTER_FORMAT})")
    try:
        rank, alpha, layers = int(blob["rank"]), float(blob["alpha"]), dict(blob["layers"])
        ok = rank > 0 and all(isinstance(ab.get("A"), torch.Tensor) and isinstance(ab.get("B"), torch.Tensor)
                              for ab in layers.values())
    except (KeyError, TypeError, ValueError, AttributeError):
        ok = False
    if not ok or not layers:
        raise AssistantError(f"second pass adapter {path} is damaged (rank, alpha or layers missing)")
    return Adapter(path, str(blob.get("base_model", "")), rank, alpha, layers,
                   dict(blob.get("training") or {}), dict(blob.get("validation") or {}))
