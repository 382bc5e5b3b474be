"""StreamingCTC: the speech recognizer's network.

    feats (B, T, n_mels)
      -> causal Conv2d front end, stride 2 in time and frequency     (B, C, T/2, F/2)
      -> residual CNN blocks (layer norm, GELU, causal 3x3 convs)    (B, C, T/2, F/2)
      -> linear to rnn_input_dim, GELU                               (B, T/2, D)
      -> GRU or LSTM stack (unidirectional; bidirectional offline)   (B, T/2, H)
      -> lookahead: DeepSpeech2 row convolution over L future frames (B, T/2, H)
      -> layer norm, GELU, linear                                    (B, T/2, num_classes)

Every time convolution is causal (it sees only past frames), so the only
right context is the lookahead: L output frames of 20 ms each.

`forward(feats, lengths)` trains on padded batches. `step(chunk, state)`
streams: it consumes any number of new feature frames and returns the
log-probabilities of the output frames that became final, plus the new state.
`finish(state)` flushes the lookahead at the end of an utterance. Fed the same
frames in any chunking, step + finish equal forward to float tolerance.
Weights are shared; all per-stream data lives in `StreamState`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from assistant.errors import AssistantError

TIME_STRIDE = 2
FRONT_KERNEL = 3  # time and frequency kernel of every convolution
CONV_CONTEXT = FRONT_KERNEL - 1  # past frames each causal convolution needs


@dataclass(frozen=True)
class ModelConfig:
    n_mels: int = 80
    num_classes: int = 29
    cnn_channels: int = 32
    residual_blocks: int = 2
    rnn_type: str = "gru"  # "gru" or "lstm"
    rnn_input_dim: int = 384
    rnn_hidden: int = 384
    rnn_layers: int = 3
    bidirectional: bool = False  # offline-only variant (the seed's BiGRU)
    lookahead_frames: int = 3  # output frames (20 ms each) of right context
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.rnn_type not in ("gru", "lstm"):
            raise AssistantError(f"model rnn_type: expected 'gru' or 'lstm', got {self.rnn_type!r}")
        if self.n_mels % 2:
            raise AssistantError(f"model n_mels: expected an even number, got {self.n_mels}")
        for name in ("cnn_channels", "rnn_input_dim", "rnn_hidden", "rnn_layers", "num_classes"):
            if getattr(self, name) < 1:
                raise AssistantError(f"model {name}: expected a positive integer, got {getattr(self, name)}")
        if self.residual_blocks < 0 or self.lookahead_frames < 0:
            raise AssistantError("model residual_blocks and lookahead_frames: expected >= 0")

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise AssistantError(f"model config: unknown key '{unknown[0]}'; expected one of: {', '.join(sorted(known))}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def frame_ms(self) -> int:
        """Duration of one output frame."""
        return 10 * TIME_STRIDE

    @property
    def algorithmic_latency_ms(self) -> int:
        """Right context the network waits for: lookahead frames (the convs are causal)."""
        return self.lookahead_frames * self.frame_ms


def output_lengths(lengths: torch.Tensor) -> torch.Tensor:
    """Feature frames -> output frames: ceil(T / 2)."""
    return (lengths + TIME_STRIDE - 1) // TIME_STRIDE


@dataclass
class StreamState:
    """Everything one stream carries between `step` calls (weights are not here)."""

    front: torch.Tensor  # (B, 1, >=2, n_mels) input frames not yet consumed by the strided conv
    conv_caches: list[torch.Tensor]  # per residual conv: (B, C, 2, F') past frames
    rnn: object  # GRU: h (layers, B, H); LSTM: (h, c)
    lookahead: torch.Tensor  # (B, <=L, H) RNN outputs waiting for their right context


class CNNLayerNorm(nn.Module):
    """Layer norm over the frequency axis of (B, C, T, F), per frame (stream-safe)."""

    def __init__(self, n_feats: int):
        super().__init__()
        self.norm = nn.LayerNorm(n_feats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


class ResidualBlock(nn.Module):
    """Pre-norm residual block of two causal 3x3 convolutions (the seed's ResNet part)."""

    def __init__(self, channels: int, n_feats: int, dropout: float):
        super().__init__()
        self.norm1 = CNNLayerNorm(n_feats)
        self.conv1 = nn.Conv2d(channels, channels, FRONT_KERNEL, padding=(0, FRONT_KERNEL // 2))
        self.norm2 = CNNLayerNorm(n_feats)
        self.conv2 = nn.Conv2d(channels, channels, FRONT_KERNEL, padding=(0, FRONT_KERNEL // 2))
        self.dropout = nn.Dropout(dropout)

    @staticmethod
    def _causal(conv: nn.Conv2d, x: torch.Tensor, cache: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        full = torch.cat([cache, x], dim=2)
        return conv(full), full[:, :, full.shape[2] - CONV_CONTEXT:]

    def forward(self, x: torch.Tensor, caches: tuple[torch.Tensor, torch.Tensor]):
        y, c1 = self._causal(self.conv1, self.dropout(F.gelu(self.norm1(x))), caches[0])
        y, c2 = self._causal(self.conv2, self.dropout(F.gelu(self.norm2(y))), caches[1])
        return x + y, (c1, c2)


class StreamingCTC(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.n_feats = cfg.n_mels // 2
        self.front = nn.Conv2d(1, cfg.cnn_channels, FRONT_KERNEL, stride=(TIME_STRIDE, 2), padding=(0, FRONT_KERNEL // 2))
        self.blocks = nn.ModuleList(ResidualBlock(cfg.cnn_channels, self.n_feats, cfg.dropout) for _ in range(cfg.residual_blocks))
        self.proj = nn.Linear(cfg.cnn_channels * self.n_feats, cfg.rnn_input_dim)
        rnn_cls = nn.GRU if cfg.rnn_type == "gru" else nn.LSTM
        self.rnn = rnn_cls(cfg.rnn_input_dim, cfg.rnn_hidden, num_layers=cfg.rnn_layers, batch_first=True,
                           dropout=cfg.dropout if cfg.rnn_layers > 1 else 0.0, bidirectional=cfg.bidirectional)
        rnn_out = cfg.rnn_hidden * (2 if cfg.bidirectional else 1)
        # Row convolution: out[t] = sum_i w_i * h[t + i], i = 0..L (depthwise over time).
        self.row_conv = nn.Conv1d(rnn_out, rnn_out, cfg.lookahead_frames + 1, groups=rnn_out, bias=False)
        with torch.no_grad():
            self.row_conv.weight.zero_()
            self.row_conv.weight[:, :, 0] = 1.0
        self.head_norm = nn.LayerNorm(rnn_out)
        self.head = nn.Linear(rnn_out, cfg.num_classes)
        self.dropout = nn.Dropout(cfg.dropout)

    # ---- shared pieces -------------------------------------------------------------
    def _cnn(self, x: torch.Tensor, caches: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, C, T', F') after the front conv -> residual blocks -> (B, T', D)."""
        new_caches = []
        for i, block in enumerate(self.blocks):
            x, (c1, c2) = block(x, (caches[2 * i], caches[2 * i + 1]))
            new_caches += [c1, c2]
        b, c, t, f = x.shape
        x = x.permute(0, 2, 1, 3).reshape(b, t, c * f)
        return self.dropout(F.gelu(self.proj(x))), new_caches

    def _head(self, h: torch.Tensor) -> torch.Tensor:
        """(B, T'', H) lookahead output -> log-probs (B, T'', classes)."""
        return F.log_softmax(self.head(self.dropout(F.gelu(self.head_norm(h)))).float(), dim=-1)

    def _row_conv(self, h: torch.Tensor) -> torch.Tensor:
        """(B, T + L, H) -> (B, T, H)."""
        return self.row_conv(h.transpose(1, 2)).transpose(1, 2)

    def _zero_caches(self, batch: int, like: torch.Tensor) -> list[torch.Tensor]:
        return [like.new_zeros(batch, self.cfg.cnn_channels, CONV_CONTEXT, self.n_feats)
                for _ in range(2 * self.cfg.residual_blocks)]

    # ---- training / offline --------------------------------------------------------
    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """feats (B, T, n_mels), lengths (B,) -> log-probs (B, ceil(T/2), classes), output lengths."""
        b = feats.shape[0]
        x = F.pad(feats.unsqueeze(1), (0, 0, CONV_CONTEXT, 0))  # causal: 2 zero frames before
        x = self.front(x)
        x, _ = self._cnn(x, self._zero_caches(b, x))
        out_lengths = output_lengths(lengths).clamp(max=x.shape[1])
        if self.cfg.bidirectional:
            packed = nn.utils.rnn.pack_padded_sequence(x, out_lengths.cpu(), batch_first=True, enforce_sorted=False)
            h, _ = self.rnn(packed)
            h, _ = nn.utils.rnn.pad_packed_sequence(h, batch_first=True, total_length=x.shape[1])
        else:
            h, _ = self.rnn(x)
        # Frames past each utterance's end are zero, as the streaming flush sees them.
        mask = torch.arange(h.shape[1], device=h.device)[None, :] < out_lengths[:, None]
        h = h * mask.unsqueeze(-1).to(h.dtype)
        h = self._row_conv(F.pad(h, (0, 0, 0, self.cfg.lookahead_frames)))
        return self._head(h), out_lengths

    # ---- streaming ---------------------------------------------------------------------
    def initial_state(self, batch: int = 1) -> StreamState:
        if self.cfg.bidirectional:
            raise AssistantError("this model is bidirectional (offline only); streaming needs a unidirectional model")
        p = next(self.parameters())
        h0 = p.new_zeros(self.cfg.rnn_layers, batch, self.cfg.rnn_hidden)
        rnn_state = (h0, h0.clone()) if self.cfg.rnn_type == "lstm" else h0
        return StreamState(
            front=p.new_zeros(batch, 1, CONV_CONTEXT, self.cfg.n_mels),
            conv_caches=self._zero_caches(batch, p),
            rnn=rnn_state,
            lookahead=p.new_zeros(batch, 0, self.cfg.rnn_hidden),
        )

    def step(self, chunk: torch.Tensor, state: StreamState) -> tuple[torch.Tensor, StreamState]:
        """chunk (B, t, n_mels) of new feature frames (t may be 0) -> (log-probs (B, t', classes), state)."""
        if self.cfg.bidirectional:
            raise AssistantError("this model is bidirectional (offline only); streaming needs a unidirectional model")
        front = torch.cat([state.front, chunk.unsqueeze(1)], dim=2)
        n_out = max(0, (front.shape[2] - FRONT_KERNEL) // TIME_STRIDE + 1)
        empty = chunk.new_zeros(chunk.shape[0], 0, self.cfg.num_classes)
        if n_out == 0:
            return empty, StreamState(front, state.conv_caches, state.rnn, state.lookahead)
        consumed = n_out * TIME_STRIDE
        x = self.front(front[:, :, : (n_out - 1) * TIME_STRIDE + FRONT_KERNEL])
        x, caches = self._cnn(x, state.conv_caches)
        h, rnn_state = self.rnn(x, state.rnn)
        pending = torch.cat([state.lookahead, h], dim=1)
        log_probs, pending = self._emit(pending, final=False)
        new_state = StreamState(front[:, :, consumed:], caches, rnn_state, pending)
        return (log_probs if log_probs is not None else empty), new_state

    def finish(self, state: StreamState) -> torch.Tensor:
        """Flush the lookahead at the end of the stream: log-probs of the remaining frames."""
        log_probs, _ = self._emit(state.lookahead, final=True)
        if log_probs is None:
            return state.lookahead.new_zeros(state.lookahead.shape[0], 0, self.cfg.num_classes)
        return log_probs

    def _emit(self, pending: torch.Tensor, final: bool) -> tuple[torch.Tensor | None, torch.Tensor]:
        L = self.cfg.lookahead_frames
        if final:
            n = pending.shape[1]
            pending = F.pad(pending, (0, 0, 0, L))
        else:
            n = pending.shape[1] - L
        if n <= 0:
            return None, pending
        out = self._head(self._row_conv(pending[:, : n + L]))
        return out, pending[:, n:]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
