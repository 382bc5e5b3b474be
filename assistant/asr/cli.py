"""`assistant transcribe AUDIO... [--json]`: files through the streaming recognizer."""

from __future__ import annotations

import argparse
import json
import sys
import time

from assistant.asr.features import SAMPLE_RATE_HZ
from assistant.config import default_config_path, load_config
from assistant.errors import AssistantError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("audio", nargs="+", help="WAV/FLAC/OGG files, any sample rate (mixed to mono, resampled to 16 kHz)")
    parser.add_argument("--json", action="store_true", help='one JSON line per file: {"path", "text", "duration_s", "rtf"}')
    parser.add_argument("--model", help="checkpoint to use instead of [asr] model_path")
    parser.add_argument("--greedy", action="store_true", help="greedy decoding of the final (no beam search / catalog bias)")
    parser.add_argument("--no-bias", action="store_true", help="beam search without catalog names")
    parser.add_argument("--final-pass", choices=("whisper", "ctc"), help="finals as the daemon makes them: the Whisper "
                        "second pass and the choice rule, or the CTC beam alone (default: [asr] final_pass)")


def feed(session, audio, chunk_ms: int) -> str:
    """A whole clip into a session in `chunk_ms` pieces, as a stream would; its final text."""
    step = SAMPLE_RATE_HZ * chunk_ms // 1000
    for i in range(0, len(audio), step):
        session.accept(audio[i:i + step])
    return session.finish()


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from assistant.asr.recognizer import Recognizer
    from assistant.audio.io import load_audio

    cfg = load_config(args.config or default_config_path())
    asr_cfg = replace(cfg.asr, model_path=args.model) if args.model else cfg.asr
    recognizer = Recognizer.load(asr_cfg)
    second = None
    if not args.greedy and (args.final_pass or asr_cfg.final_pass) == "whisper":
        from assistant.asr.second_pass_factory import load_second_pass

        try:
            second = load_second_pass(asr_cfg)
        except AssistantError as exc:
            print(f"warning: Whisper second pass unavailable, CTC finals only: {exc}", file=sys.stderr, flush=True)
    if not args.greedy and not args.no_bias and asr_cfg.use_catalog_bias:
        from assistant.asr.bias import catalog_phrases

        phrases = catalog_phrases(cfg)
        recognizer.set_bias(phrases)
        if second is not None:
            second.set_names(phrases)
    failures = 0
    for path in args.audio:
        try:
            audio = load_audio(path)
        except AssistantError as exc:
            failures += 1
            print(json.dumps({"path": path, "error": str(exc)}) if args.json else f"error: {exc}", flush=True)
            continue
        start = time.perf_counter()
        if second is None:
            text = recognizer.transcribe(audio, beam=not args.greedy)
        else:
            from assistant.asr.second_pass import TwoPassSession

            text = feed(TwoPassSession(recognizer, second), audio, asr_cfg.chunk_ms)
        elapsed = time.perf_counter() - start
        duration_s = len(audio) / SAMPLE_RATE_HZ
        rtf = elapsed / duration_s if duration_s > 0 else 0.0
        if args.json:
            print(json.dumps({"path": path, "text": text, "duration_s": round(duration_s, 3), "rtf": round(rtf, 4)}), flush=True)
        else:
            print(f"{path}\t{text}", flush=True)
    return 1 if failures else 0
