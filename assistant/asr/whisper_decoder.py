"""Whisper's text decoder in torch, with weights read from a CTranslate2 `model.bin`, and its tokenizer.

    tokens (B, T) -> token embedding + learned positions (448 at most)
      -> n_layers x [pre-LN causal self-attention (key/value cache),
                     pre-LN cross-attention to the encoder output (keys/values computed once),
                     pre-LN GELU FFN] (residual)
      -> final LayerNorm -> logits against the token embedding (tied)   (B, T, vocab)

CTranslate2 names (Linear weights are (out, in), as in torch):

    decoder/embeddings/weight                       (vocab, d)   also the output projection (alias)
    decoder/position_encodings/encodings            (448, d)
    decoder/layer_N/self_attention/linear_0         (3d, d)      fused q, k, v (k has a zero bias)
    decoder/layer_N/self_attention/linear_1         (d, d)       output
    decoder/layer_N/attention/linear_0              (d, d)       cross-attention query
    decoder/layer_N/attention/linear_1              (2d, d)      cross-attention fused k, v from the encoder
    decoder/layer_N/attention/linear_2              (d, d)       output
    decoder/layer_N/{self_attention,attention,ffn}/layer_norm/{gamma,beta}
    decoder/layer_N/ffn/linear_0, linear_1          (ffn, d), (d, ffn)
    decoder/layer_norm/{gamma,beta}, decoder/num_heads

`greedy_decode` and `beam_decode` run the autoregressive loop with a fixed
token budget and return tokens with their log probabilities and the
no-speech probability (softmax at the <|startoftranscript|> position, as
Whisper computes it). `WhisperTokenizer` wraps `tokenizer.json` (the
`tokenizers` package) and knows the special tokens.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from assistant.asr.ct2 import Ct2Model
from assistant.asr.whisper_encoder import LAYER_NORM_EPS
from assistant.errors import AssistantError

ENGLISH_ONLY_VOCAB = 51864  # tiny.en, base.en, ...: no language or task tokens in the start sequence


@dataclass(frozen=True)
class DecoderDims:
    n_vocab: int = ENGLISH_ONLY_VOCAB
    d_model: int = 384
    n_heads: int = 6
    n_layers: int = 4
    ffn_dim: int = 1536
    max_positions: int = 448


def decoder_dims_from_ct2(ct2: Ct2Model) -> DecoderDims:
    n_layers = 0
    while f"decoder/layer_{n_layers}/ffn/linear_0/weight" in ct2.variables:
        n_layers += 1
    if n_layers == 0:
        raise AssistantError(f"{ct2.path} has no Whisper decoder layers")
    n_vocab, d_model = ct2.get("decoder/embeddings/weight").shape
    return DecoderDims(n_vocab=int(n_vocab), d_model=int(d_model), n_heads=ct2.scalar("decoder/num_heads"),
                       n_layers=n_layers, ffn_dim=int(ct2.get("decoder/layer_0/ffn/linear_0/weight").shape[0]),
                       max_positions=int(ct2.get("decoder/position_encodings/encodings").shape[0]))


class DecoderBlock(nn.Module):
    def __init__(self, dims: DecoderDims):
        super().__init__()
        d = dims.d_model
        self.n_heads = dims.n_heads
        self.self_ln = nn.LayerNorm(d, eps=LAYER_NORM_EPS)
        self.self_qkv = nn.Linear(d, 3 * d)
        self.self_out = nn.Linear(d, d)
        self.cross_ln = nn.LayerNorm(d, eps=LAYER_NORM_EPS)
        self.cross_q = nn.Linear(d, d)
        self.cross_kv = nn.Linear(d, 2 * d)
        self.cross_out = nn.Linear(d, d)
        self.ffn_ln = nn.LayerNorm(d, eps=LAYER_NORM_EPS)
        self.fc1 = nn.Linear(d, dims.ffn_dim)
        self.fc2 = nn.Linear(dims.ffn_dim, d)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.reshape(b, t, self.n_heads, -1).transpose(1, 2)

    @staticmethod
    def _merge(x: torch.Tensor) -> torch.Tensor:
        b, h, t, hd = x.shape
        return x.transpose(1, 2).reshape(b, t, h * hd)

    def cross_keys(self, enc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = self.cross_kv(enc).split(enc.shape[-1], dim=-1)
        return self._split(k), self._split(v)

    def forward(self, x: torch.Tensor, cross: tuple[torch.Tensor, torch.Tensor],
                cache: tuple[torch.Tensor, torch.Tensor] | None):
        """x (B, T, d) new tokens; `cache` the keys/values of earlier tokens -> (out, new cache)."""
        q, k, v = (self._split(z) for z in self.self_qkv(self.self_ln(x)).split(x.shape[-1], dim=-1))
        if cache is not None:
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        t_new, t_all = q.shape[2], k.shape[2]
        mask = None
        if t_new > 1:  # causal among the new tokens; all cached ones are visible
            mask = torch.ones(t_new, t_all, dtype=torch.bool).tril(diagonal=t_all - t_new)
        x = x + self.self_out(self._merge(F.scaled_dot_product_attention(q, k, v, attn_mask=mask)))
        cq = self._split(self.cross_q(self.cross_ln(x)))
        x = x + self.cross_out(self._merge(F.scaled_dot_product_attention(cq, cross[0], cross[1])))
        x = x + self.fc2(F.gelu(self.fc1(self.ffn_ln(x))))
        return x, (k, v)


class WhisperDecoder(nn.Module):
    def __init__(self, dims: DecoderDims):
        super().__init__()
        self.dims = dims
        self.embed = nn.Embedding(dims.n_vocab, dims.d_model)
        self.positions = nn.Parameter(torch.zeros(dims.max_positions, dims.d_model), requires_grad=False)
        self.blocks = nn.ModuleList(DecoderBlock(dims) for _ in range(dims.n_layers))
        self.ln = nn.LayerNorm(dims.d_model, eps=LAYER_NORM_EPS)
        self.proj = nn.Linear(dims.d_model, dims.n_vocab, bias=False)
        self.proj.weight = self.embed.weight  # tied, as in Whisper; not a separate entry to load

    def cross_keys(self, enc: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Encoder output (B, S, d) -> per layer cross-attention keys and values (B, H, S, hd)."""
        return [block.cross_keys(enc) for block in self.blocks]

    def forward(self, tokens: torch.Tensor, cross: list, cache: list | None = None):
        """tokens (B, T) after `cache`'s tokens -> (logits (B, T, vocab), new cache)."""
        x, new_cache = self.hidden(tokens, cross, cache)
        return self.logits(x), new_cache

    def hidden(self, tokens: torch.Tensor, cross: list, cache: list | None = None):
        """tokens (B, T) after `cache`'s tokens -> (last block's output (B, T, d), new cache): `logits` of only
        the positions a caller needs saves most of the cost when scoring given texts (the vocabulary is 52 k)."""
        offset = 0 if cache is None else cache[0][0].shape[2]
        if offset + tokens.shape[1] > self.dims.max_positions:
            raise AssistantError(f"decoder input of {offset + tokens.shape[1]} tokens exceeds {self.dims.max_positions}")
        x = self.embed(tokens).float() + self.positions[offset:offset + tokens.shape[1]]  # (the table may be fp16)
        x = x.to(self.blocks[0].self_ln.weight.dtype)  # the blocks may run in bf16 (second pass precision) ...
        new_cache = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, cross[i], None if cache is None else cache[i])
            new_cache.append(kv)
        return x, new_cache

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """`hidden`'s output (..., d) -> logits (..., vocab)."""
        x = self.ln(x.float())  # ... the final norm in fp32, the output projection in the weights' precision
        weight = getattr(self.proj, "weight", None)  # (a dynamic int8 layer has none: it takes fp32)
        if isinstance(weight, torch.Tensor) and weight.dtype != x.dtype:
            x = x.to(weight.dtype)
        return self.proj(x)


def decoder_state_from_ct2(ct2: Ct2Model, dims: DecoderDims) -> dict[str, torch.Tensor]:
    sd = {"embed.weight": ct2.get("decoder/embeddings/weight"),
          "positions": ct2.get("decoder/position_encodings/encodings"),
          "ln.weight": ct2.get("decoder/layer_norm/gamma"), "ln.bias": ct2.get("decoder/layer_norm/beta")}
    linears = {"self_qkv": "self_attention/linear_0", "self_out": "self_attention/linear_1",
               "cross_q": "attention/linear_0", "cross_kv": "attention/linear_1", "cross_out": "attention/linear_2",
               "fc1": "ffn/linear_0", "fc2": "ffn/linear_1"}
    norms = {"self_ln": "self_attention/layer_norm", "cross_ln": "attention/layer_norm", "ffn_ln": "ffn/layer_norm"}
    for i in range(dims.n_layers):
        for ours, theirs in linears.items():
            sd[f"blocks.{i}.{ours}.weight"] = ct2.get(f"decoder/layer_{i}/{theirs}/weight")
            sd[f"blocks.{i}.{ours}.bias"] = ct2.get(f"decoder/layer_{i}/{theirs}/bias")
        for ours, theirs in norms.items():
            sd[f"blocks.{i}.{ours}.weight"] = ct2.get(f"decoder/layer_{i}/{theirs}/gamma")
            sd[f"blocks.{i}.{ours}.bias"] = ct2.get(f"decoder/layer_{i}/{theirs}/beta")
    return {k: v.float() for k, v in sd.items()}


def load_whisper_decoder(ct2: Ct2Model) -> WhisperDecoder:
    for flag, expected in (("decoder/pre_norm", 1), ("decoder/scale_embeddings", 0), ("decoder/alibi", 0)):
        if flag in ct2.variables and ct2.scalar(flag) != expected:
            raise AssistantError(f"{ct2.path}: {flag} = {ct2.scalar(flag)}, a Whisper decoder has {expected}")
    dims = decoder_dims_from_ct2(ct2)
    dec = WhisperDecoder(dims)
    state = decoder_state_from_ct2(ct2, dims)
    state["proj.weight"] = state["embed.weight"]
    try:
        dec.load_state_dict(state)
    except RuntimeError as exc:
        raise AssistantError(f"{ct2.path}: decoder weights do not fit a Whisper decoder ({str(exc).splitlines()[0]})") from None
    return dec.eval()


# --------------------------------------------------------------------------- tokenizer

class WhisperTokenizer:
    """`tokenizer.json` (byte-level BPE) and Whisper's special tokens."""

    def __init__(self, path: str | Path, n_vocab: int):
        from tokenizers import Tokenizer

        path = Path(path)
        try:
            self.tok = Tokenizer.from_file(str(path))
        except Exception as exc:  # noqa: BLE001 - the tokenizers package raises plain Exceptions
            raise AssistantError(f"{path} is not a readable tokenizer.json ({str(exc).splitlines()[0][:120]})") from None
        self.eot = self._special(path, "<|endoftext|>")
        self.sot = self._special(path, "<|startoftranscript|>")
        self.sot_prev = self._special(path, "<|startofprev|>")
        self.no_timestamps = self._special(path, "<|notimestamps|>")
        self.no_speech = self.tok.token_to_id("<|nospeech|>") or self._special(path, "<|nocaptions|>")
        self.english = self.tok.token_to_id("<|en|>")
        self.transcribe = self.tok.token_to_id("<|transcribe|>")
        self.multilingual = n_vocab > ENGLISH_ONLY_VOCAB
        if self.multilingual and (self.english is None or self.transcribe is None):
            raise AssistantError(f"{path}: a multilingual Whisper tokenizer without <|en|> / <|transcribe|>")
        self.n_vocab = n_vocab

    def _special(self, path: Path, name: str) -> int:
        idx = self.tok.token_to_id(name)
        if idx is None:
            raise AssistantError(f"{path} is not a Whisper tokenizer (no {name} token)")
        return idx

    @property
    def sot_sequence(self) -> list[int]:
        """The start of a transcript: English-only models need no language or task token."""
        return [self.sot, self.english, self.transcribe] if self.multilingual else [self.sot]

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids) -> str:
        return self.tok.decode([int(i) for i in ids if int(i) < self.eot])

    def prompt(self, previous_text: str, max_prompt_tokens: int) -> list[int]:
        """[<|startofprev|> previous text]? <|startoftranscript|> (<|en|> <|transcribe|>) <|notimestamps|>."""
        out = []
        if previous_text.strip() and max_prompt_tokens > 0:
            out = [self.sot_prev] + self.encode(" " + previous_text.strip())[:max_prompt_tokens]
        return out + self.sot_sequence + [self.no_timestamps]


# --------------------------------------------------------------------------- decoding

@dataclass
class Decoded:
    """One hypothesis: text tokens (no special tokens), the log probability of each (and of the end),
    and the no-speech probability at the start-of-transcript position."""

    tokens: list[int]
    logprobs: list[float] = field(default_factory=list)
    no_speech_prob: float = 0.0
    finished: bool = True  # False when the token budget (or a cancel) cut it
    looped: bool = False   # the text began to repeat itself and was cut there

    @property
    def sum_logprob(self) -> float:
        return float(sum(self.logprobs))

    @property
    def avg_logprob(self) -> float:
        """faster-whisper's definition: the sum over tokens and the end, over (tokens + 1)."""
        return self.sum_logprob / (len(self.tokens) + 1)


@dataclass(frozen=True)
class DecodeOptions:
    max_new_tokens: int = 48
    beam_size: int = 1
    suppress: tuple[int, ...] = ()        # never produced (config.json's suppress_ids)
    suppress_begin: tuple[int, ...] = ()  # not produced as the first token (a space, the end)
    # When the last this-many tokens already occurred earlier, the text has started over (Whisper's
    # failure on short windows: "would you stop would you stop would you"): cut there and stop. 0 = off.
    loop_ngram: int = 3


def _suppression_mask(tok: WhisperTokenizer, n_vocab: int, opts: DecodeOptions) -> tuple[torch.Tensor, torch.Tensor]:
    mask = torch.zeros(n_vocab, dtype=torch.bool)
    mask[tok.eot + 1:] = True  # every special and timestamp token (the prompt says no timestamps)
    mask[[i for i in opts.suppress if 0 <= i < n_vocab]] = True
    begin = mask.clone()
    begin[[i for i in opts.suppress_begin if 0 <= i < n_vocab]] = True
    return mask, begin


def _start(decoder: WhisperDecoder, cross: list, prompt: list[int], tok: WhisperTokenizer):
    """Run the prompt; return (log probs of the first token, cache, no-speech probability)."""
    tokens = torch.tensor([prompt], dtype=torch.long)
    logits, cache = decoder(tokens, cross)
    sot_index = prompt.index(tok.sot)
    no_speech = float(logits[0, sot_index].float().softmax(-1)[tok.no_speech])
    return logits[:, -1], cache, no_speech


def greedy_decode(decoder: WhisperDecoder, enc: torch.Tensor, tok: WhisperTokenizer, prompt: list[int],
                  opts: DecodeOptions, cancel: threading.Event | None = None) -> Decoded:
    """Greedy decoding (temperature 0) of one utterance's encoder output (1, S, d)."""
    with torch.inference_mode():
        cross = decoder.cross_keys(enc)
        mask, begin = _suppression_mask(tok, decoder.dims.n_vocab, opts)
        logits, cache, no_speech = _start(decoder, cross, prompt, tok)
        out = Decoded([], [], no_speech, finished=False)
        budget = min(opts.max_new_tokens, decoder.dims.max_positions - len(prompt))
        for step in range(budget):
            if cancel is not None and cancel.is_set():
                break
            lp = logits[0].float().masked_fill(begin if step == 0 else mask, float("-inf")).log_softmax(-1)
            nxt = int(lp.argmax())
            out.logprobs.append(float(lp[nxt]))
            if nxt == tok.eot:
                out.finished = True
                break
            out.tokens.append(nxt)
            if _repeats(out.tokens, opts.loop_ngram):
                n = opts.loop_ngram
                out.tokens, out.logprobs = out.tokens[:-n], out.logprobs[:-n]
                out.finished = out.looped = True
                break
            logits, cache = decoder(torch.tensor([[nxt]], dtype=torch.long), cross, cache)
            logits = logits[:, -1]
        return out


def _repeats(tokens: list[int], n: int) -> bool:
    """True when the last n tokens occurred as n consecutive tokens earlier."""
    if n <= 0 or len(tokens) < 2 * n:
        return False
    tail = tokens[-n:]
    return any(tokens[i:i + n] == tail for i in range(len(tokens) - 2 * n + 1))


def cut_loop(tokens: list[int], n: int) -> int:
    """Length of `tokens` before the first n-gram that repeats an earlier one (len(tokens) if none)."""
    if n > 0:
        for end in range(2 * n, len(tokens) + 1):
            if _repeats(tokens[:end], n):
                return end - n
    return len(tokens)


def beam_decode(decoder: WhisperDecoder, enc: torch.Tensor, tok: WhisperTokenizer, prompt: list[int],
                opts: DecodeOptions, cancel: threading.Event | None = None) -> Decoded:
    """Beam search (Whisper's: `beam_size` live hypotheses, stop when as many have ended; the best by
    length-normalized log probability). beam_size 1 is greedy."""
    if opts.beam_size <= 1:
        return greedy_decode(decoder, enc, tok, prompt, opts, cancel)
    width = opts.beam_size
    with torch.inference_mode():
        mask, begin = _suppression_mask(tok, decoder.dims.n_vocab, opts)
        cross1 = decoder.cross_keys(enc)
        logits, cache, no_speech = _start(decoder, cross1, prompt, tok)
        cross = [(k.expand(width, -1, -1, -1), v.expand(width, -1, -1, -1)) for k, v in cross1]
        cache = [(k.expand(width, -1, -1, -1).contiguous(), v.expand(width, -1, -1, -1).contiguous()) for k, v in cache]
        logits = logits.expand(width, -1)
        beams: list[tuple[list[int], list[float]]] = [([], [])]
        finished: list[tuple[list[int], list[float]]] = []
        budget = min(opts.max_new_tokens, decoder.dims.max_positions - len(prompt))
        for step in range(budget):
            if cancel is not None and cancel.is_set():
                break
            lp = logits.float().masked_fill(begin if step == 0 else mask, float("-inf")).log_softmax(-1)
            candidates = []
            for b, (toks, lps) in enumerate(beams):
                base = sum(lps)
                top = lp[b].topk(width + 1)
                for score, idx in zip(top.values.tolist(), top.indices.tolist()):
                    candidates.append((base + score, b, int(idx), score))
            candidates.sort(key=lambda c: -c[0])
            next_beams, sources, next_tokens = [], [], []
            for total, b, idx, score in candidates:
                toks, lps = beams[b]
                if idx == tok.eot:
                    finished.append((toks, lps + [score]))
                else:
                    next_beams.append((toks + [idx], lps + [score]))
                    sources.append(b)
                    next_tokens.append(idx)
                if len(next_beams) == width:
                    break
            if len(finished) >= width or not next_beams:
                break
            beams = next_beams
            src = torch.tensor(sources + [sources[-1]] * (width - len(sources)))
            cache = [(k[src], v[src]) for k, v in cache]
            tokens = torch.tensor(next_tokens + [next_tokens[-1]] * (width - len(next_tokens)), dtype=torch.long)[:, None]
            logits, cache = decoder(tokens, cross, cache)
            logits = logits[:, -1]
        if finished:
            toks, lps = max(finished, key=lambda h: sum(h[1]) / len(h[1]))
            done = True
        else:
            toks, lps = beams[0]
            done = False
        keep = cut_loop(toks, opts.loop_ngram)
        if keep < len(toks):
            return Decoded(toks[:keep], lps[:keep], no_speech, finished=True, looped=True)
        return Decoded(toks, lps, no_speech, finished=done)
