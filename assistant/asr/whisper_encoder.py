"""Whisper's audio encoder in torch, with weights read from a CTranslate2 `model.bin`.

    mel (B, T, 80)
      -> conv1 (k3, pad 1) + GELU -> conv2 (k3, stride 2, pad 1) + GELU     (B, ceil(T/2), d)
      -> + sinusoidal positions (max_positions frames of 20 ms: 30 s)
      -> n_layers x [pre-LN self-attention, pre-LN GELU FFN] (residual)
      -> final LayerNorm                                                   (B, ceil(T/2), d)

The same blocks serve the streaming CTC recognizer (`whisper_ctc.py`, which
adds a chunk-causal attention mask and a key/value cache) and the offline
second pass (full attention). Names follow the CTranslate2 spec; dimensions
come from the weight shapes, the head count from `encoder/num_heads`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from assistant.asr.ct2 import Ct2Model
from assistant.errors import AssistantError

LAYER_NORM_EPS = 1e-5
ENCODER_STRIDE = 2  # conv2 halves the 10 ms mel frame rate: one encoder frame per 20 ms


@dataclass(frozen=True)
class EncoderDims:
    n_mels: int = 80
    d_model: int = 384
    n_heads: int = 6
    n_layers: int = 4
    ffn_dim: int = 1536
    max_positions: int = 1500

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise AssistantError(f"encoder d_model {self.d_model} is not a multiple of n_heads {self.n_heads}")

    def to_dict(self) -> dict:
        return asdict(self)


def encoder_dims_from_ct2(ct2: Ct2Model) -> EncoderDims:
    """Dimensions of the encoder stored in a Whisper `model.bin`."""
    n_layers = 0
    while f"encoder/layer_{n_layers}/ffn/linear_0/weight" in ct2.variables:
        n_layers += 1
    if n_layers == 0:
        raise AssistantError(f"{ct2.path} has no Whisper encoder layers")
    d_model, n_mels, _ = ct2.get("encoder/conv1/weight").shape
    return EncoderDims(n_mels=int(n_mels), d_model=int(d_model), n_heads=ct2.scalar("encoder/num_heads"),
                       n_layers=n_layers, ffn_dim=int(ct2.get("encoder/layer_0/ffn/linear_0/weight").shape[0]),
                       max_positions=int(ct2.get("encoder/position_encodings/encodings").shape[0]))


def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> torch.Tensor:
    """Whisper's sinusoidal position table (length, channels)."""
    log_inc = torch.log(torch.tensor(max_timescale)) / (channels // 2 - 1)
    inv = torch.exp(-log_inc * torch.arange(channels // 2))
    t = torch.arange(length)[:, None] * inv[None, :]
    return torch.cat([torch.sin(t), torch.cos(t)], dim=1)


class EncoderBlock(nn.Module):
    """Pre-LN self-attention + pre-LN FFN. `forward` takes an optional mask; `attend_cached` the streaming cache."""

    def __init__(self, dims: EncoderDims, dropout: float = 0.0):
        super().__init__()
        self.n_heads = dims.n_heads
        self.attn_ln = nn.LayerNorm(dims.d_model, eps=LAYER_NORM_EPS)
        self.qkv = nn.Linear(dims.d_model, 3 * dims.d_model)
        self.out = nn.Linear(dims.d_model, dims.d_model)
        self.ffn_ln = nn.LayerNorm(dims.d_model, eps=LAYER_NORM_EPS)
        self.fc1 = nn.Linear(dims.d_model, dims.ffn_dim)
        self.fc2 = nn.Linear(dims.ffn_dim, dims.d_model)
        self.dropout = nn.Dropout(dropout)

    def _heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, t, _ = x.shape
        q, k, v = self.qkv(self.attn_ln(x)).split(x.shape[-1], dim=-1)
        return tuple(z.reshape(b, t, self.n_heads, -1).transpose(1, 2) for z in (q, k, v))

    def _finish(self, x: torch.Tensor, att: torch.Tensor) -> torch.Tensor:
        b, h, t, hd = att.shape
        x = x + self.dropout(self.out(att.transpose(1, 2).reshape(b, t, h * hd)))
        return x + self.dropout(self.fc2(self.dropout(F.gelu(self.fc1(self.ffn_ln(x))))))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, T, d); mask (B or 1, 1, T, T) bool, True where a query may see a key."""
        q, k, v = self._heads(x)
        return self._finish(x, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))

    def attend_cached(self, x: torch.Tensor, cache_k: torch.Tensor, cache_v: torch.Tensor):
        """One whole chunk x (B, C, d) that sees itself and the cached keys/values -> (out, new k, new v)."""
        q, k, v = self._heads(x)
        k_all, v_all = torch.cat([cache_k, k], dim=2), torch.cat([cache_v, v], dim=2)
        return self._finish(x, F.scaled_dot_product_attention(q, k_all, v_all)), k_all, v_all


class WhisperEncoder(nn.Module):
    def __init__(self, dims: EncoderDims, dropout: float = 0.0):
        super().__init__()
        self.dims = dims
        self.conv1 = nn.Conv1d(dims.n_mels, dims.d_model, 3, padding=1)
        self.conv2 = nn.Conv1d(dims.d_model, dims.d_model, 3, stride=ENCODER_STRIDE, padding=1)
        self.register_buffer("positions", sinusoids(dims.max_positions, dims.d_model), persistent=True)
        self.blocks = nn.ModuleList(EncoderBlock(dims, dropout) for _ in range(dims.n_layers))
        self.ln_post = nn.LayerNorm(dims.d_model, eps=LAYER_NORM_EPS)

    def front(self, mel: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """mel (B, T, n_mels) -> conv features (B, ceil(T/2), d), before positions.

        With `lengths`, frames past each utterance's end are zeroed before each conv,
        as a stream that ends there sees them."""
        x = mel.transpose(1, 2)
        if lengths is not None:
            x = x * _time_mask(lengths, x.shape[2], x.dtype)[:, None, :]
        x = F.gelu(self.conv1(x))
        if lengths is not None:
            x = x * _time_mask(lengths, x.shape[2], x.dtype)[:, None, :]
        return F.gelu(self.conv2(x)).transpose(1, 2)

    def forward(self, mel: torch.Tensor, mask: torch.Tensor | None = None, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Offline encoding: mel (B, T, n_mels) -> (B, ceil(T/2), d). mask as in EncoderBlock.forward."""
        x = self.front(mel, lengths)
        if x.shape[1] > self.dims.max_positions:
            raise AssistantError(f"audio of {x.shape[1] * 20 / 1000:.1f} s is longer than the encoder's "
                                 f"{self.dims.max_positions * 20 / 1000:.0f} s position table")
        x = x + self.positions[: x.shape[1]].to(x.dtype)
        for block in self.blocks:
            x = block(x, mask)
        return self.ln_post(x)


def _time_mask(lengths: torch.Tensor, t: int, dtype) -> torch.Tensor:
    return (torch.arange(t, device=lengths.device)[None, :] < lengths[:, None]).to(dtype)


def encoder_state_from_ct2(ct2: Ct2Model, dims: EncoderDims) -> dict[str, torch.Tensor]:
    """A state_dict for `WhisperEncoder(dims)` from the CTranslate2 variables."""
    sd = {
        "conv1.weight": ct2.get("encoder/conv1/weight"), "conv1.bias": ct2.get("encoder/conv1/bias"),
        "conv2.weight": ct2.get("encoder/conv2/weight"), "conv2.bias": ct2.get("encoder/conv2/bias"),
        "positions": ct2.get("encoder/position_encodings/encodings"),
        "ln_post.weight": ct2.get("encoder/layer_norm/gamma"), "ln_post.bias": ct2.get("encoder/layer_norm/beta"),
    }
    names = {"attn_ln": "self_attention/layer_norm", "qkv": "self_attention/linear_0", "out": "self_attention/linear_1",
             "ffn_ln": "ffn/layer_norm", "fc1": "ffn/linear_0", "fc2": "ffn/linear_1"}
    for i in range(dims.n_layers):
        for ours, theirs in names.items():
            prefix = f"encoder/layer_{i}/{theirs}"
            if ours.endswith("_ln"):
                sd[f"blocks.{i}.{ours}.weight"] = ct2.get(f"{prefix}/gamma")
                sd[f"blocks.{i}.{ours}.bias"] = ct2.get(f"{prefix}/beta")
            else:
                sd[f"blocks.{i}.{ours}.weight"] = ct2.get(f"{prefix}/weight")
                sd[f"blocks.{i}.{ours}.bias"] = ct2.get(f"{prefix}/bias")
    return {k: v.float() for k, v in sd.items()}


def load_whisper_encoder(ct2: Ct2Model, dropout: float = 0.0) -> WhisperEncoder:
    dims = encoder_dims_from_ct2(ct2)
    enc = WhisperEncoder(dims, dropout)
    try:
        enc.load_state_dict(encoder_state_from_ct2(ct2, dims))
    except RuntimeError as exc:
        raise AssistantError(f"{ct2.path}: encoder weights do not fit a Whisper encoder ({str(exc).splitlines()[0]})") from None
    return enc
