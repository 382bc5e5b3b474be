"""WhisperCTC: Whisper's pretrained encoder made streaming, with a CTC head over our characters.

    mel (B, T, 80) -> WhisperEncoder with a chunk-causal attention mask -> linear -> CTC log-probs

Chunk-causal attention: encoder frames (20 ms) are grouped into chunks of
`chunk_frames` counted from the start of the stream; a frame sees every frame
of its own chunk and of the `left_chunks` chunks before it, nothing later.
So a chunk's outputs are final as soon as the chunk is complete, and a stream
keeps only `left_chunks * chunk_frames` keys and values per layer.

`forward(feats, lengths)` trains on padded batches (any chunk size and left
context may be passed, for training on random ones). `step(chunk, state)`
streams: it takes any number of new mel frames and returns the log-probs of
the chunks that became complete. `finish(state)` flushes the last, partial
chunk. Fed the same frames in any chunking, step + finish equal forward with
the configured chunk and left context (to float tolerance).

Positions are Whisper's absolute table (30 s). A stream longer than that
starts a new segment: its key/value cache is emptied and positions restart at
0 (the daemon resets streams at every endpoint, so only long files do this).

Algorithmic latency: a frame waits for the end of its chunk (up to
chunk_frames x 20 ms), plus the convolutions' one-frame right context (20 ms)
and the centred STFT window's 12.5 ms.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from assistant.asr.whisper_encoder import ENCODER_STRIDE, EncoderDims, WhisperEncoder
from assistant.errors import AssistantError

ARCHITECTURE = "whisper_ctc"
ENCODER_FRAME_MS = 20


@dataclass(frozen=True)
class WhisperCTCConfig:
    architecture: str = ARCHITECTURE
    n_mels: int = 80
    d_model: int = 384
    n_heads: int = 6
    n_layers: int = 4
    ffn_dim: int = 1536
    max_positions: int = 1500
    num_classes: int = 29
    chunk_frames: int = 16  # encoder frames (20 ms) per attention chunk at inference: 320 ms
    left_chunks: int = 12  # chunks of left context each frame sees at inference (12 x 320 ms = 3.84 s)
    dropout: float = 0.1
    init_from: str = ""  # what the encoder weights were initialised from (recorded, not read)

    def __post_init__(self) -> None:
        if self.architecture != ARCHITECTURE:
            raise AssistantError(f"model architecture: expected {ARCHITECTURE!r}, got {self.architecture!r}")
        for name in ("n_mels", "d_model", "n_heads", "n_layers", "ffn_dim", "max_positions", "num_classes", "chunk_frames"):
            if getattr(self, name) < 1:
                raise AssistantError(f"model {name}: expected a positive integer, got {getattr(self, name)}")
        if self.left_chunks < 0:
            raise AssistantError(f"model left_chunks: expected >= 0, got {self.left_chunks}")
        if not 0 <= self.dropout < 1:
            raise AssistantError(f"model dropout: expected 0 to 1, got {self.dropout}")

    @classmethod
    def from_dict(cls, d: dict) -> "WhisperCTCConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise AssistantError(f"model config: unknown key '{unknown[0]}'; expected one of: {', '.join(sorted(known))}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def dims(self) -> EncoderDims:
        return EncoderDims(self.n_mels, self.d_model, self.n_heads, self.n_layers, self.ffn_dim, self.max_positions)

    @property
    def frame_ms(self) -> int:
        return ENCODER_FRAME_MS

    @property
    def algorithmic_latency_ms(self) -> int:
        """Worst case wait of a frame for its right context: its chunk, the convs' frame, half an STFT window."""
        return self.chunk_frames * ENCODER_FRAME_MS + ENCODER_FRAME_MS + 13


def chunk_mask(t: int, chunk_frames: int, left_chunks: int, lengths: torch.Tensor | None = None,
               device=None) -> torch.Tensor:
    """(B or 1, 1, t, t) bool: query i may see key j (same chunk or up to `left_chunks` chunks before).

    With `lengths`, keys past each utterance's end are hidden; every query keeps itself so no row is empty."""
    c = torch.arange(t, device=device) // chunk_frames
    diff = c[:, None] - c[None, :]
    allowed = (diff >= 0) & (diff <= left_chunks)
    if lengths is None:
        return allowed[None, None]
    keys = torch.arange(t, device=device)[None, :] < lengths[:, None]  # (B, t)
    eye = torch.eye(t, dtype=torch.bool, device=device)
    return ((allowed[None] & keys[:, None, :]) | eye[None])[:, None]


@dataclass
class WhisperStreamState:
    """Everything one stream carries between `step` calls (weights are not here)."""

    mel: torch.Tensor  # (B, >=1, n_mels) mel frames conv1 still needs (starts with one zero frame)
    conv1: torch.Tensor  # (B, >=1, d) conv1 outputs conv2 still needs (starts with one zero frame)
    pending: torch.Tensor  # (B, < chunk, d) encoder-front frames waiting for their chunk to fill
    keys: list[torch.Tensor]  # per layer (B, H, <= left_chunks * chunk, hd)
    values: list[torch.Tensor]
    position: int  # encoder frames already emitted in this segment


def _conv_as_matmul(x: torch.Tensor, conv: nn.Conv1d, stride: int) -> torch.Tensor:
    """An unpadded Conv1d over time-major x (B, T, C_in) -> (B, T', C_out), as one matrix product.

    For the few frames of a streaming step this is several times faster than the
    CPU convolution kernel, and it is the same arithmetic."""
    k = conv.kernel_size[0]
    frames = x.unfold(1, k, stride)  # (B, T', C_in, k)
    weight = conv.weight.reshape(conv.out_channels, -1)  # (C_out, C_in * k), C_in-major like the unfold
    return F.linear(frames.reshape(*frames.shape[:2], -1), weight, conv.bias)


def output_lengths(lengths: torch.Tensor) -> torch.Tensor:
    """Mel frames -> encoder frames: ceil(T / 2)."""
    return (lengths + ENCODER_STRIDE - 1) // ENCODER_STRIDE


class WhisperCTC(nn.Module):
    def __init__(self, cfg: WhisperCTCConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = WhisperEncoder(cfg.dims, cfg.dropout)
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.d_model, cfg.num_classes)

    def _head(self, x: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.head(self.dropout(self.encoder.ln_post(x))).float(), dim=-1)

    # ---- training / offline --------------------------------------------------------
    def forward(self, feats: torch.Tensor, lengths: torch.Tensor, chunk_frames: int | None = None,
                left_chunks: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """feats (B, T, n_mels), lengths (B,) -> log-probs (B, ceil(T/2), classes), output lengths."""
        enc = self.encoder
        x = enc.front(feats, lengths)
        t = x.shape[1]
        if t > self.cfg.max_positions:
            raise AssistantError(f"utterance of {t * ENCODER_FRAME_MS / 1000:.1f} s is longer than the model's "
                                 f"{self.cfg.max_positions * ENCODER_FRAME_MS / 1000:.0f} s position table")
        x = x + enc.positions[:t].to(x.dtype)
        out_lengths = output_lengths(lengths).clamp(max=t)
        mask = chunk_mask(t, chunk_frames or self.cfg.chunk_frames,
                          self.cfg.left_chunks if left_chunks is None else left_chunks, out_lengths, x.device)
        for block in enc.blocks:
            x = block(x, mask)
        return self._head(x), out_lengths

    # ---- streaming ---------------------------------------------------------------------
    def initial_state(self, batch: int = 1) -> WhisperStreamState:
        p = next(self.parameters())
        hd = self.cfg.d_model // self.cfg.n_heads
        empty_kv = p.new_zeros(batch, self.cfg.n_heads, 0, hd)
        return WhisperStreamState(mel=p.new_zeros(batch, 1, self.cfg.n_mels), conv1=p.new_zeros(batch, 1, self.cfg.d_model),
                                  pending=p.new_zeros(batch, 0, self.cfg.d_model),
                                  keys=[empty_kv] * self.cfg.n_layers, values=[empty_kv] * self.cfg.n_layers, position=0)

    def _front_step(self, mel: torch.Tensor, conv1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run the two convolutions on what their right context allows -> (new encoder-front frames, mel, conv1)."""
        enc = self.encoder
        n1 = mel.shape[1] - 2
        if n1 > 0:
            conv1 = torch.cat([conv1, F.gelu(_conv_as_matmul(mel, enc.conv1, 1))], dim=1)
            mel = mel[:, n1:]
        n2 = (conv1.shape[1] - 3) // ENCODER_STRIDE + 1 if conv1.shape[1] >= 3 else 0
        if n2 <= 0:
            return conv1.new_zeros(conv1.shape[0], 0, conv1.shape[2]), mel, conv1
        used = (n2 - 1) * ENCODER_STRIDE + 3
        x = F.gelu(_conv_as_matmul(conv1[:, :used], enc.conv2, ENCODER_STRIDE))
        return x, mel, conv1[:, n2 * ENCODER_STRIDE:]

    def _chunks(self, x: torch.Tensor, state: WhisperStreamState, final: bool) -> tuple[torch.Tensor, WhisperStreamState]:
        """Encode every complete chunk of pending + x (and, if final, the rest) with the cache."""
        c, cache_frames = self.cfg.chunk_frames, self.cfg.left_chunks * self.cfg.chunk_frames
        pending = torch.cat([state.pending, x], dim=1)
        keys, values, position = list(state.keys), list(state.values), state.position
        outs = []
        while pending.shape[1] >= c or (final and pending.shape[1] > 0):
            chunk, pending = pending[:, :c], pending[:, c:]
            n = chunk.shape[1]
            if position + n > self.cfg.max_positions:  # past the position table: a new segment
                keys = [k[:, :, :0] for k in keys]
                values = [v[:, :, :0] for v in values]
                position = 0
            h = chunk + self.encoder.positions[position:position + n].to(chunk.dtype)
            for i, block in enumerate(self.encoder.blocks):
                h, k_all, v_all = block.attend_cached(h, keys[i], values[i])
                keys[i] = k_all[:, :, max(0, k_all.shape[2] - cache_frames):] if cache_frames else k_all[:, :, :0]
                values[i] = v_all[:, :, max(0, v_all.shape[2] - cache_frames):] if cache_frames else v_all[:, :, :0]
            outs.append(self._head(h))
            position += n
        out = torch.cat(outs, dim=1) if outs else x.new_zeros(x.shape[0], 0, self.cfg.num_classes)
        return out, WhisperStreamState(state.mel, state.conv1, pending, keys, values, position)

    def step(self, chunk: torch.Tensor, state: WhisperStreamState) -> tuple[torch.Tensor, WhisperStreamState]:
        """chunk (B, t, n_mels) of new mel frames (t may be 0) -> (log-probs (B, t', classes), state)."""
        x, mel, conv1 = self._front_step(torch.cat([state.mel, chunk], dim=1), state.conv1)
        state = WhisperStreamState(mel, conv1, state.pending, state.keys, state.values, state.position)
        return self._chunks(x, state, final=False)

    def finish(self, state: WhisperStreamState) -> torch.Tensor:
        """End of stream: the convolutions' zero right padding, then the last (partial) chunk."""
        b = state.mel.shape[0]
        mel = torch.cat([state.mel, state.mel.new_zeros(b, 1, self.cfg.n_mels)], dim=1)
        if mel.shape[1] < 3:  # no mel frame was ever received
            return state.mel.new_zeros(b, 0, self.cfg.num_classes)
        x1, _, conv1 = self._front_step(mel, state.conv1)
        x2, _, _ = self._front_step(mel[:, :0], torch.cat([conv1, conv1.new_zeros(b, 1, self.cfg.d_model)], dim=1))
        out, _ = self._chunks(torch.cat([x1, x2], dim=1), state, final=True)
        return out
