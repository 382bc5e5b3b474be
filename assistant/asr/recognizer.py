"""The recognizer the daemon, `transcribe` and `evaluate` use.

    rec = Recognizer.load(config.asr)       # weights loaded once, shared
    rec.set_bias(catalog_names)             # word n-gram + hot phrases for finals
    sess = rec.new_session()                # per-utterance streaming state
    partial = sess.accept(audio_chunk)      # float32 mono 16 kHz, any length
    final = sess.finish()                   # flush lookahead, biased beam search

A session is used by one thread at a time; the daemon runs every recognizer
call in its single inference worker.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F

from assistant.asr.checkpoint import LoadedModel, load_model
from assistant.asr.decoding import BeamOptions, BeamSearchDecoder, HotPhrases, greedy_ids
from assistant.asr.features import SAMPLE_RATE_HZ
from assistant.asr.lm import WordNgram
from assistant.asr.text import normalize_text
from assistant.config import AsrConfig, resolve_path

ALTERNATIVES = 4  # the beam's next-best finals kept beside the final (the catalog rescoring's candidates come from them too)


def quantize_dynamic_int8(model: torch.nn.Module) -> torch.nn.Module:
    """Dynamic int8 quantization of the linear and recurrent layers (weights int8, activations fp32)."""
    return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear, torch.nn.GRU, torch.nn.LSTM}, dtype=torch.qint8)


class Recognizer:
    def __init__(self, loaded: LoadedModel, options: AsrConfig = AsrConfig()):
        self.loaded = loaded
        self.options = options
        self.model = quantize_dynamic_int8(loaded.model) if options.quantize_int8 else loaded.model
        self.beam_options = BeamOptions(beam_width=options.beam_width, lm_weight=options.lm_weight,
                                        word_bonus=options.word_bonus, hotword_weight=options.hotword_weight)
        self.decoder = self._build_decoder(())

    @classmethod
    def load(cls, options: AsrConfig = AsrConfig()) -> "Recognizer":
        torch.set_num_threads(options.threads)
        return cls(load_model(resolve_path(options.model_path)), options)

    def _build_decoder(self, phrases: tuple[str, ...]) -> BeamSearchDecoder:
        texts = list(self.loaded.lm_texts) + list(phrases)
        lm = WordNgram(texts) if texts else None
        hot = HotPhrases(phrases) if phrases and self.options.use_catalog_bias else None
        return BeamSearchDecoder(self.beam_options, lm, hot, self.loaded.text)

    def set_bias(self, phrases: Iterable[str]) -> None:
        """Bias final decoding towards these names (titles, artists, genres); normalized here."""
        normalized = tuple(sorted({n for n in (normalize_text(p) for p in phrases) if n}))
        self.decoder = self._build_decoder(normalized if self.options.use_catalog_bias else ())

    def new_session(self) -> "RecognizerSession":
        return RecognizerSession(self)

    def transcribe(self, audio: np.ndarray, chunk_ms: int | None = None, beam: bool = True) -> str:
        """Whole clip through the streaming path, fed in `chunk_ms` pieces (default: config chunk_ms)."""
        sess = self.new_session()
        step = SAMPLE_RATE_HZ * (chunk_ms or self.options.chunk_ms) // 1000
        for i in range(0, len(audio), step):
            sess.accept(audio[i:i + step])
        return sess.finish(beam=beam)


class RecognizerSession:
    """Streaming state of one utterance; the weights stay in the Recognizer."""

    def __init__(self, recognizer: Recognizer):
        self.recognizer = recognizer
        self.features = recognizer.loaded.features.stream()
        self.state = recognizer.model.initial_state(1)
        self.log_probs: list[np.ndarray] = []
        self._ids: list[int] = []
        self._prev_id = 0
        self.samples = 0
        self.compute_s = 0.0  # time spent in features + network, for real-time factors
        self.alternatives: tuple[str, ...] = ()  # after finish(): the beam's next-best texts, best first

    def _push(self, log_probs: torch.Tensor) -> None:
        if log_probs.shape[1]:
            lp = log_probs[0].numpy()
            self.log_probs.append(lp)
            ids, self._prev_id = greedy_ids(lp, self._prev_id)
            self._ids.extend(ids)

    @property
    def partial(self) -> str:
        return " ".join(self.recognizer.loaded.text.int_to_text(self._ids).split())

    def accept(self, audio: np.ndarray) -> str:
        """Add audio (float32 mono 16 kHz); return the greedy partial transcript so far."""
        start = time.perf_counter()
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        self.samples += len(audio)
        feats = self.features.accept(audio)
        if feats.shape[0]:
            with torch.inference_mode():
                lp, self.state = self.recognizer.model.step(feats.unsqueeze(0), self.state)
            self._push(lp)
        self.compute_s += time.perf_counter() - start
        return self.partial

    def log_likelihood(self, text: str) -> float:
        """CTC log-likelihood of `text` given this utterance's output frames, per frame (after `finish`):
        how well the audio as this model hears it supports another recognizer's words. -inf when the
        text cannot be aligned (more characters than frames) or nothing was heard."""
        if not self.log_probs:
            return float("-inf")
        lp = torch.from_numpy(np.concatenate(self.log_probs, axis=0)).float()
        ids = self.recognizer.loaded.text.text_to_int(normalize_text(text))
        loss = F.ctc_loss(lp[:, None, :], torch.tensor([ids], dtype=torch.long), [lp.shape[0]], [len(ids)],
                          blank=0, reduction="sum")
        return -float(loss) / lp.shape[0]

    def finish(self, beam: bool = True) -> str:
        """Flush the lookahead; the final transcript (catalog-biased beam search unless beam=False)."""
        start = time.perf_counter()
        with torch.inference_mode():
            self._push(self.recognizer.model.finish(self.state))
        self.compute_s += time.perf_counter() - start
        if not beam or not self.log_probs:
            return self.partial
        decoder = self.recognizer.decoder
        if not hasattr(decoder, "decode_nbest"):
            return decoder.decode(np.concatenate(self.log_probs, axis=0))
        texts = decoder.decode_nbest(np.concatenate(self.log_probs, axis=0), ALTERNATIVES + 1)
        self.alternatives = tuple(texts[1:])
        return texts[0]
