"""Moonshine base (English) as a second pass: the int8 ONNX Runtime files of the PyPI package `moonshine-cpp`,
run with the `onnxruntime` package (never the package's own C library, which leaks memory).

    audio (1, samples) float32 16 kHz -> encoder_model.ort -> last_hidden_state (1, S, 416)
    decoder_model_merged.ort: input_ids (1, T), encoder_hidden_states, past_key_values.N.{decoder,encoder}.{key,value}
      (1, 8, *, 52), use_cache_branch -> logits (1, T, 32768), present.N.*

Greedy decoding from <s> (id 1) to </s> (id 2), with the decoder's key/value cache: the first step
(use_cache_branch false, empty past) computes the cross-attention keys/values of the encoder output, which
later steps reuse. The loop is cut at `TOKENS_BASE + TOKENS_PER_S` x seconds of audio (Moonshine can loop)
and where the text starts to repeat itself (the Whisper decoder's n-gram test). The encoder takes the raw
waveform at its real length: no padding to a window; clips shorter than `MIN_AUDIO_S` get silence appended.

`tokenizer.bin` is a list of length-prefixed byte pieces (SentencePiece, U+2581 for a space; a length
of 128 or more takes a second byte: (first - 128) + 128 x second); pieces 3 to 258 are the bytes 0 to 255.

The result is a `WhisperHypothesis` (avg_logprob from Moonshine's own logits, as faster-whisper defines it:
the token log probabilities and the end's, over tokens + 1; no_speech_prob 0: Moonshine has no silence
token), so the choice rule and the daemon treat it as they treat Whisper's.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from assistant.asr.second_pass import (SAMPLE_RATE_HZ, TOKENS_BASE, TOKENS_PER_S, WHISPER_WINDOW_S, SecondPassOptions,
                                       WhisperHypothesis, WhisperSecondPass, compression_ratio)
from assistant.asr.text import normalize_text
from assistant.errors import AssistantError

MOONSHINE_BASE = "moonshine-base"
MOONSHINE_PACKAGE = "moonshine-cpp"
MOONSHINE_FILES = ("encoder_model.ort", "decoder_model_merged.ort", "tokenizer.bin")
BOS_ID, EOS_ID = 1, 2
BYTE_PIECES = range(3, 259)  # <0x00> .. <0xFF>
SPACE_MARK = "\u2581"
MIN_AUDIO_S = 0.5  # the encoder's output is too short to decode below a few hundred ms


@dataclass(frozen=True)
class MoonshineTokenizer:
    pieces: tuple[bytes, ...]

    @classmethod
    def read(cls, path: Path) -> "MoonshineTokenizer":
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise AssistantError(f"Moonshine tokenizer {path} is not readable ({exc.strerror})") from None
        pieces, i = [], 0
        while i < len(raw):
            n = raw[i]
            i += 1
            if n >= 128:
                if i >= len(raw):
                    raise AssistantError(f"{path} is not a Moonshine tokenizer.bin (cut off at byte {i})")
                n = (n - 128) + 128 * raw[i]
                i += 1
            if i + n > len(raw):
                raise AssistantError(f"{path} is not a Moonshine tokenizer.bin (a piece runs past the end)")
            pieces.append(raw[i:i + n])
            i += n
        if len(pieces) < 259 or pieces[BOS_ID] != b"<s>" or pieces[EOS_ID] != b"</s>":
            raise AssistantError(f"{path} is not a Moonshine tokenizer.bin (no <s> / </s> pieces)")
        return cls(tuple(pieces))

    def decode(self, ids) -> str:
        out = bytearray()
        for i in ids:
            i = int(i)
            if i in BYTE_PIECES:
                out.append(i - BYTE_PIECES.start)
            elif 2 < i < len(self.pieces):
                out += self.pieces[i]
        return out.decode("utf-8", errors="replace").replace(SPACE_MARK, " ")


def moonshine_package_dir() -> Path | None:
    """The folder of the installed moonshine-cpp package's base-en model, or None."""
    from assistant.asr.ct2 import package_file

    found = package_file(MOONSHINE_PACKAGE, MOONSHINE_FILES[0])
    return None if found is None else found.parent


def resolve_moonshine_dir(configured: str = "") -> Path:
    folder = Path(configured).expanduser() if configured else moonshine_package_dir()
    if folder is None:
        raise AssistantError(f"Moonshine base weights not found: install the {MOONSHINE_PACKAGE} package")
    missing = [f for f in MOONSHINE_FILES if not (folder / f).is_file()]
    if missing:
        raise AssistantError(f"Moonshine model folder {folder} lacks {', '.join(missing)}")
    return folder


class MoonshineSecondPass(WhisperSecondPass):
    """Moonshine base through onnxruntime, behind the Whisper second pass's interface (`hypothesis`, `decide`,
    `final`, `set_names`: inherited). It takes no prompt: catalog names are still picked (the choice rule
    and the daemon use them) but Moonshine does not hear them."""

    def __init__(self, encoder, decoder, tokenizer: MoonshineTokenizer, options: SecondPassOptions, path: Path):
        self.encoder, self.decoder, self.tokenizer = encoder, decoder, tokenizer
        self.features = None
        self.decode_options = None
        self.options = options
        self.path = path
        self.names = None
        from assistant.asr.rescore import RescoreOptions

        self.rescore_options = RescoreOptions()  # catalog rescoring by the CTC pass only: no Whisper decoder to score with
        self._decoder_inputs = [i.name for i in decoder.get_inputs()]
        self._outputs = [o.name for o in decoder.get_outputs()]
        self._past = [n for n in self._decoder_inputs if n.startswith("past_key_values.")]

    @classmethod
    def load(cls, options: SecondPassOptions = SecondPassOptions(model=MOONSHINE_BASE)) -> "MoonshineSecondPass":
        """Read the .ort files (`options.model_dir`, or the installed package); AssistantError when they are
        missing, damaged or not Moonshine's."""
        try:
            import onnxruntime as ort
        except ImportError:
            raise AssistantError("Moonshine needs the onnxruntime package (scripts/setup.sh installs it)") from None
        folder = resolve_moonshine_dir(options.model_dir)
        tokenizer = MoonshineTokenizer.read(folder / MOONSHINE_FILES[2])
        so = ort.SessionOptions()
        so.log_severity_level = 3
        if options.threads > 0:
            so.intra_op_num_threads = options.threads
            so.inter_op_num_threads = 1
        sessions = []
        for name in MOONSHINE_FILES[:2]:
            try:
                sessions.append(ort.InferenceSession(str(folder / name), so, providers=["CPUExecutionProvider"]))
            except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
                raise AssistantError(f"{folder / name} is not a loadable ONNX Runtime model "
                                     f"({str(exc).splitlines()[0][:160]})") from None
        encoder, decoder = sessions
        inputs = {i.name for i in decoder.get_inputs()}
        if [i.name for i in encoder.get_inputs()] != ["input_values"] or not {"input_ids", "encoder_hidden_states",
                                                                            "use_cache_branch"} <= inputs:
            raise AssistantError(f"{folder} does not hold Moonshine's encoder and merged decoder")
        sp = cls(encoder, decoder, tokenizer, replace(options, model=MOONSHINE_BASE, prompt_names=0), folder)
        sp.transcribe(np.random.default_rng(0).normal(scale=0.01, size=SAMPLE_RATE_HZ // 2).astype(np.float32))  # warm-up
        return sp

    @property
    def model_name(self) -> str:
        return MOONSHINE_BASE

    def with_options(self, **changes) -> "MoonshineSecondPass":
        other = MoonshineSecondPass(self.encoder, self.decoder, self.tokenizer, replace(self.options, **changes), self.path)
        other.names = self.names
        return other

    def _step(self, token: int, enc: np.ndarray, past: dict[str, np.ndarray] | None):
        feed = {"input_ids": np.array([[token]], dtype=np.int64), "encoder_hidden_states": enc,
                "use_cache_branch": np.array([past is not None])}
        if past is None:
            empty = np.zeros((1, 8, 0, 52), dtype=np.float32)
            shape = self.decoder.get_inputs()[self._decoder_inputs.index(self._past[0])].shape
            if isinstance(shape[1], int) and isinstance(shape[3], int):
                empty = np.zeros((1, shape[1], 0, shape[3]), dtype=np.float32)
            feed.update({n: empty for n in self._past})
        else:
            feed.update(past)
        out = dict(zip(self._outputs, self.decoder.run(None, feed)))
        new_past = {}
        for n in self._past:
            present = out["present." + n[len("past_key_values."):]]
            if ".encoder." in n and past is not None:
                present = past[n]  # the cache branch passes no fresh cross-attention keys: keep the first step's
            new_past[n] = present
        return out["logits"][0, -1].astype(np.float64), new_past

    def transcribe(self, audio: np.ndarray, names=(), cancel: threading.Event | None = None,
                   pad_ms: int | None = None) -> WhisperHypothesis:
        """Moonshine's hypothesis for one utterance (at most 30 s; `names` and `pad_ms` are not used)."""
        from assistant.asr.whisper_decoder import _repeats

        start = time.perf_counter()
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        if len(audio) > WHISPER_WINDOW_S * SAMPLE_RATE_HZ:
            raise AssistantError(f"audio of {len(audio) / SAMPLE_RATE_HZ:.1f} s is longer than the second pass's "
                                 f"{WHISPER_WINDOW_S} s limit")
        audio_s = len(audio) / SAMPLE_RATE_HZ
        x = np.pad(audio, (0, max(0, int(MIN_AUDIO_S * SAMPLE_RATE_HZ) - len(audio))))
        enc = self.encoder.run(None, {"input_values": x[None]})[0]
        budget = min(self.options.max_new_tokens, TOKENS_BASE + int(np.ceil(TOKENS_PER_S * audio_s)))
        tokens: list[int] = []
        logprobs: list[float] = []
        finished = False
        token, past = BOS_ID, None
        for _ in range(budget):
            if cancel is not None and cancel.is_set():
                break
            logits, past = self._step(token, enc, past)
            logits = logits[: len(self.tokenizer.pieces)]
            lp = logits - (logits.max() + np.log(np.exp(logits - logits.max()).sum()))
            token = int(lp.argmax())
            logprobs.append(float(lp[token]))
            if token == EOS_ID:
                finished = True
                break
            tokens.append(token)
            n = self.options.loop_ngram
            if _repeats(tokens, n):
                tokens, logprobs = tokens[:-n], logprobs[:-n]
                finished = True
                break
        raw = self.tokenizer.decode(tokens).strip()
        avg = float(sum(logprobs)) / (len(tokens) + 1)
        return WhisperHypothesis(text=normalize_text(raw), raw_text=raw, avg_logprob=avg, no_speech_prob=0.0,
                                 compression_ratio=compression_ratio(raw), finished=finished, tokens=len(tokens),
                                 prompt=(), seconds=time.perf_counter() - start, audio_s=audio_s)
