"""Recognizer evaluation on a manifest, through the same streaming path the daemon uses."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from assistant.asr.features import SAMPLE_RATE_HZ
from assistant.asr.metrics import ErrorRates, cer, wer
from assistant.asr.recognizer import Recognizer
from assistant.audio.io import load_audio
from assistant.errors import AssistantError


# The evaluation sets `assistant synth` writes (file stem, title); none is ever trained on.
EVAL_SETS = (
    ("eval_reserved", "reserved voices, held-out commands"),
    ("eval_seed", '"hello suggest me a sad song", reserved voices'),
    ("eval_lj002", "LJSpeech LJ002 (real, one speaker)"),
    ("eval_librispeech_mini", "LibriSpeech test-clean mini (real)"),
    ("eval_fsdd_theo", "FSDD speaker theo (real digits)"),
)


class Session(Protocol):
    """One utterance being recognized: audio in pieces, then the final normalized text."""

    def accept(self, audio: np.ndarray) -> object: ...

    def finish(self) -> str: ...


@dataclass
class EvalReport:
    manifest: str
    decoder: str
    rates: ErrorRates = field(default_factory=ErrorRates)
    items: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    rtfs: list[float] = field(default_factory=list)
    final_latency_ms: list[float] = field(default_factory=list)

    def summary(self) -> dict:
        def pct(values, q):
            return round(statistics.quantiles(values, n=100)[q - 1], 2) if len(values) >= 2 else (round(values[0], 2) if values else None)

        return {"manifest": self.manifest, "decoder": self.decoder, **self.rates.to_dict(), "skipped": len(self.skipped),
                "rtf_median": round(statistics.median(self.rtfs), 4) if self.rtfs else None,
                "final_latency_ms_p50": pct(self.final_latency_ms, 50), "final_latency_ms_p95": pct(self.final_latency_ms, 95)}


class DecodingSession:
    """A session of our recognizer whose `finish` decodes greedy or with the (catalog-biased) beam."""

    def __init__(self, recognizer: Recognizer, beam: bool):
        self.session, self.beam = recognizer.new_session(), beam

    def accept(self, audio: np.ndarray) -> str:
        return self.session.accept(audio)

    def finish(self) -> str:
        return self.session.finish(beam=self.beam)


# Final decoders: the CTC first pass greedy or with the catalog-biased beam; the Whisper second pass alone
# (unprompted, no choice); both passes as the daemon runs them (assistant.asr.second_pass).
DECODERS = ("greedy", "beam", "two-pass", "whisper")


def session_factory(recognizer: Recognizer | None, decoder: str = "beam", second_pass=None) -> Callable[[], Session]:
    """New sessions for one of DECODERS; "two-pass" and "whisper" need a WhisperSecondPass."""
    if decoder in ("greedy", "beam"):
        return lambda: DecodingSession(recognizer, decoder == "beam")
    if decoder not in DECODERS:
        raise AssistantError(f"unknown decoder {decoder!r}; expected one of {', '.join(DECODERS)}")
    if second_pass is None:
        raise AssistantError(f"decoder {decoder!r} needs the Whisper second pass, which is not loaded")
    from assistant.asr.second_pass import TwoPassSession

    return lambda: TwoPassSession(recognizer, second_pass, whisper_only=decoder == "whisper")


def evaluate_manifest(recognizer: Recognizer | None, manifest: str | Path, decoder: str = "beam", chunk_ms: int = 160,
                      limit: int = 0, second_pass=None) -> EvalReport:
    """Our recognizer through its streaming path: greedy, (catalog-biased, if set) beam, or two-pass."""
    return evaluate_sessions(session_factory(recognizer, decoder, second_pass), manifest, decoder, chunk_ms, limit)


def evaluate_sessions(new_session: Callable[[], Session], manifest: str | Path, label: str, chunk_ms: int = 160,
                      limit: int = 0) -> EvalReport:
    """Feed every clip in `chunk_ms` pieces; final latency = time from the last piece to the final text."""
    from assistant.training.manifest import read_manifest

    entries, skipped = read_manifest(manifest)
    report = EvalReport(str(manifest), label, skipped=[f"line {n}: {r}" for n, r in skipped])
    step = SAMPLE_RATE_HZ * chunk_ms // 1000
    for e in entries[: limit or None]:
        try:
            audio = load_audio(e.audio)
        except AssistantError as exc:
            report.skipped.append(f"{e.audio}: {exc}")
            continue
        sess = new_session()
        start = time.perf_counter()
        for i in range(0, len(audio), step):
            sess.accept(audio[i:i + step])
        end_of_audio = time.perf_counter()
        hyp = sess.finish()
        done = time.perf_counter()
        duration_s = len(audio) / SAMPLE_RATE_HZ
        if duration_s > 0:
            report.rtfs.append((done - start) / duration_s)
        report.final_latency_ms.append((done - end_of_audio) * 1000)
        report.rates.add(e.text, hyp)
        item = {"audio": str(e.audio), "ref": e.text, "hyp": hyp, "wer": round(wer(e.text, hyp), 4), "cer": round(cer(e.text, hyp), 4)}
        describe = getattr(sess, "describe", None)  # the two-pass session says which pass won and why
        if describe is not None:
            item.update(describe())
        report.items.append(item)
    return report
