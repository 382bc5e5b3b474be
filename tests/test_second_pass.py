"""The Whisper second pass without its weights: the choice rule, the prompt built from catalog names, the daemon's
budget fallback with a deliberately slow fake second pass, and a missing or damaged model.

Tests that need the real Whisper weights are in test_second_pass_model.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import threading

import numpy as np
import pytest
from websockets.asyncio.client import connect

from assistant.asr.second_pass import (CatalogNames, ChoiceRule, FinalChoice, SecondPassOptions, WhisperHypothesis,
                                       WhisperSecondPass, choose, compression_ratio)
from assistant.config import AsrConfig, load_config
from assistant.daemon import Daemon, DaemonOptions, load_second_pass
from assistant.errors import AssistantError
from test_server import FakeMusic, FakeRecognizer, make_config, open_stream, recv, room, speak, speechlike

CATALOG = ["Adele", "Someone Like You", "Hello", "Beyonce", "Halo", "Bohemian Rhapsody", "Queen", "Play", "Something"]


def hyp(text: str, avg_logprob: float = -0.3, no_speech_prob: float = 0.01, finished: bool = True,
        cr: float | None = None, audio_s: float = 0.0) -> WhisperHypothesis:
    return WhisperHypothesis(text=text, raw_text=text, avg_logprob=avg_logprob, no_speech_prob=no_speech_prob,
                             compression_ratio=compression_ratio(text) if cr is None else cr, finished=finished,
                             tokens=len(text.split()), prompt=(), seconds=0.1, audio_s=audio_s)


# ---------------------------------------------------------------- the choice rule


def test_a_confident_whisper_text_is_the_final():
    c = choose("play hollow by beyond say", hyp("play halo by beyonce"))
    assert (c.text, c.source) == ("play halo by beyonce", "whisper")


def test_whisper_silence_test_drops_the_utterance():
    c = choose("play adele", hyp("you", avg_logprob=-1.4, no_speech_prob=0.9))
    assert (c.text, c.source, c.reason) == ("", "dropped", "no speech")


@pytest.mark.parametrize("h, reason", [
    (hyp("", avg_logprob=-0.2), "whisper empty"),
    (hyp("play something", avg_logprob=-2.5), "whisper low confidence"),
    (hyp("so so so so so so so so so so so so so so so so so so so so so so", avg_logprob=-0.2), "whisper repetitive"),
    (hyp("play something by", finished=False), "whisper token budget"),
])
def test_an_untrusted_whisper_text_is_dropped_not_turned_into_a_command(h, reason):
    c = choose("play something sad", h, ChoiceRule(ctc_fallback=False))
    assert (c.text, c.source, c.reason) == ("", "dropped", reason)


def test_an_untrusted_whisper_text_falls_back_to_the_first_pass_unless_very_unsure():
    rule = ChoiceRule(drop_logprob=-1.2, ctc_fallback=True, fallback_min_logprob=-1.8)
    c = choose("play something sad", hyp("play some", avg_logprob=-1.5), rule)
    assert (c.text, c.source, c.reason) == ("play something sad", "ctc", "whisper low confidence")
    c = choose("play something sad", hyp("play some", avg_logprob=-2.5), rule)
    assert (c.text, c.source) == ("", "dropped")
    assert choose("", hyp("play some", avg_logprob=-1.5), rule).source == "dropped"  # nothing to fall back to


def test_more_words_than_the_audio_can_hold_is_a_loop_and_the_first_pass_is_used():
    # Whisper tiny.en writes "0 0 0" for a 0.4 s "zero"
    c = choose("zero", hyp("zero zero zero", audio_s=0.4))
    assert (c.text, c.source, c.reason) == ("zero", "ctc", "whisper too many words for the audio")
    assert choose("zero", hyp("zero", audio_s=0.1)).source == "whisper"  # one word is never too many
    assert choose("play adele", hyp("play adele now", audio_s=1.2)).source == "whisper"  # 2.5 words a second
    assert choose("", hyp("zero zero zero", audio_s=0.4)).source == "dropped"  # nothing to fall back to
    assert choose("zero", hyp("zero zero zero", audio_s=0.4), ChoiceRule(max_words_per_s=10)).source == "whisper"


def test_the_first_pass_wins_when_its_frames_support_its_text_much_better():
    scores = {"hello suggest me a sad song": -0.05, "the lord suggests me as a song": -0.9, "hello suggest me a sad son": -0.1}.get
    rule = ChoiceRule(acoustic_margin=0.3)
    c = choose("hello suggest me a sad song", hyp("the lord suggests me as a song"), rule, ctc_score=scores)
    assert (c.text, c.source, c.reason) == ("hello suggest me a sad song", "ctc", "the first pass's frames disagree with whisper")
    # a small difference: Whisper's text stays (its words are usually better)
    c = choose("hello suggest me a sad son", hyp("hello suggest me a sad song"), rule, ctc_score=scores)
    assert c.source == "whisper"
    # off (0), or without the first pass's frames: Whisper's text
    assert choose("hello suggest me a sad song", hyp("the lord suggests me as a song"), ChoiceRule(acoustic_margin=0),
                  ctc_score=scores).source == "whisper"
    assert choose("hello suggest me a sad song", hyp("the lord suggests me as a song"), rule).source == "whisper"


def test_the_first_pass_wins_when_it_names_more_catalog_words():
    names = CatalogNames(CATALOG, min_score=0.7)
    rule = ChoiceRule(prefer_ctc_names=True)
    # the CTC beam heard a whole catalog name that Whisper misspelled
    c = choose("play halo by beyonce", hyp("play hello by beyond say"), rule, names)
    assert (c.text, c.source) == ("play halo by beyonce", "ctc")
    # otherwise Whisper's text stands
    c = choose("play hollow by beyond", hyp("play halo by beyonce"), rule, names)
    assert c.source == "whisper"
    c = choose("play halo by beyonce", hyp("play halo by beyonce"), rule, names)
    assert c.source == "whisper"
    assert choose("play halo by beyonce", hyp("play hello by beyond say"), ChoiceRule(prefer_ctc_names=False), names).source == "whisper"


def test_output_is_normalized_like_every_transcript():
    c = choose("", hyp("Play 22 by Taylor Swift!"))
    assert c.text == "play twenty two by taylor swift"


# ---------------------------------------------------------------- the prompt from catalog names


def test_prompt_names_are_the_catalog_names_the_first_pass_heard():
    names = CatalogNames(CATALOG, min_score=0.7)
    assert names.pick("play hollow by beyonse", 5) == ["Beyonce", "Hello", "Halo"]  # best match first
    assert names.pick("play hollow by beyonse", 1) == ["Beyonce"]
    assert names.pick("play some one like you by adel", 5) == ["Adele"]  # common words: exact names only
    assert names.pick("play someone like you by adel", 5) == ["Someone Like You", "Adele"]  # exact before fuzzy
    assert names.pick("play bohemian rhapsody by queen", 5) == ["Bohemian Rhapsody", "Queen"]
    # command words alone never pull in a name ("Play" and "Something" are titles in this catalog)
    assert names.pick("play something", 5) == []
    assert names.pick("play adele", 0) == [] and names.pick("", 5) == []
    assert CatalogNames([]).pick("play adele", 5) == []


def test_final_prompts_whisper_with_the_picked_names():
    seen = {}

    class Stub(WhisperSecondPass):
        def transcribe(self, audio, names=(), cancel=None, pad_ms=None):
            seen["names"] = tuple(names)
            return hyp("play halo by beyonce")

    sp = Stub(None, None, None, None, None, SecondPassOptions(prompt_names=2, name_min_score=0.7), None)
    sp.set_names(CATALOG)
    audio = speechlike(1000)
    choice = sp.final(audio, "play hollow by beyonse")
    assert seen["names"] == ("Beyonce", "Hello")
    assert choice.text == "play halo by beyonce"
    # no first-pass text, no names: no prompt
    sp.final(audio, "")
    assert seen["names"] == ()
    # digital silence never reaches Whisper (which would say "you")
    seen.clear()
    assert sp.final(np.zeros(16000, np.float32), "play adele").reason == "silence" and not seen


def test_final_of_nothing_or_of_too_much_audio():
    sp = WhisperSecondPass(None, None, None, None, None, SecondPassOptions(), None)
    assert sp.final(np.zeros(0, np.float32), "play adele").source == "dropped"
    long = sp.final(room(31000), "Play Adele!")  # past Whisper's window: the first pass's final
    assert (long.text, long.source) == ("play adele", "ctc")


def test_options_come_from_the_asr_config():
    asr = dataclasses.replace(AsrConfig(), whisper_model_dir="/x", final_pass_beam_size=3, final_pass_pad_ms=500,
                              final_pass_prompt_names=7, final_pass_min_logprob=-0.9, final_pass_drop_logprob=-2.0)
    o = SecondPassOptions.from_config(asr)
    assert (o.model_dir, o.beam_size, o.pad_ms, o.prompt_names) == ("/x", 3, 500, 7)
    assert (o.rule.drop_logprob, o.rule.fallback_min_logprob) == (-0.9, -2.0)


def test_config_keys_are_validated():
    with pytest.raises(AssistantError, match=r"\[asr\] final_pass: expected 'whisper' or 'ctc'"):
        load_config(None, environ={"ASSISTANT_ASR_FINAL_PASS": "lstm"})
    with pytest.raises(AssistantError, match=r"final_pass_budget_ms"):
        load_config(None, environ={"ASSISTANT_ASR_FINAL_PASS_BUDGET_MS": "-5"})
    with pytest.raises(AssistantError, match=r"final_pass_drop_logprob: expected -10 to final_pass_min_logprob"):
        load_config(None, environ={"ASSISTANT_ASR_FINAL_PASS_DROP_LOGPROB": "-0.5"})


# ---------------------------------------------------------------- a missing or damaged model


def test_missing_model_folder_is_one_clear_error(tmp_path):
    with pytest.raises(AssistantError, match="has no model.bin"):
        WhisperSecondPass.load(SecondPassOptions(model_dir=str(tmp_path / "nowhere")))


def test_corrupt_model_is_one_clear_error(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"\x06\x00\x00\x00garbage" * 100)
    with pytest.raises(AssistantError, match="not a CTranslate2 model.bin|truncated"):
        WhisperSecondPass.load(SecondPassOptions(model_dir=str(tmp_path)))


def test_tokenizer_of_another_language_is_refused(tmp_path):
    from tokenizers import Tokenizer, models

    from assistant.asr.whisper_decoder import WhisperTokenizer

    tok = Tokenizer(models.WordLevel({"a": 0, "<|endoftext|>": 1, "<|startoftranscript|>": 2, "<|de|>": 3,
                                      "<|transcribe|>": 4, "<|startofprev|>": 5, "<|nospeech|>": 6,
                                      "<|notimestamps|>": 7}, unk_token="a"))
    tok.save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(AssistantError, match="without <\\|en\\|>"):
        WhisperTokenizer(tmp_path / "tokenizer.json", n_vocab=51865)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(AssistantError, match="not a readable tokenizer.json"):
        WhisperTokenizer(tmp_path / "bad.json", n_vocab=51864)


# ---------------------------------------------------------------- in the daemon, with fake second passes


class FastSecondPass:
    def __init__(self, text: str = "play halo by beyonce"):
        self.text = text
        self.names: list[str] = []
        self.calls: list[tuple[int, str]] = []
        self.decided: list[str] = []

    def set_names(self, names) -> None:
        self.names = list(names)

    def hypothesis(self, audio, heard, cancel=None) -> WhisperHypothesis:
        self.calls.append((len(audio), heard))
        return hyp(self.text)

    def decide(self, ctc_final, result, ctc_score=None) -> FinalChoice:
        self.decided.append(ctc_final)
        return FinalChoice(result.text, "whisper", "whisper", result)


class SlowSecondPass(FastSecondPass):
    """Never done in time: waits until cancelled (or released by the test)."""

    def __init__(self, honours_cancel: bool = True):
        super().__init__()
        self.honours_cancel = honours_cancel
        self.release = threading.Event()
        self.cancelled = threading.Event()

    def hypothesis(self, audio, heard, cancel=None) -> WhisperHypothesis:
        self.calls.append((len(audio), heard))
        while not self.release.wait(0.01):
            if self.honours_cancel and cancel is not None and cancel.is_set():
                self.cancelled.set()
                break
        return hyp("too late")


def second_pass_config(**asr):
    cfg = make_config()
    return dataclasses.replace(cfg, asr=dataclasses.replace(cfg.asr, final_pass="whisper", **asr))


@contextlib.asynccontextmanager
async def running(config, second_pass_factory, recognizer=None):
    recognizer = recognizer or FakeRecognizer("play hollow by beyond say")
    d = Daemon(config, DaemonOptions(input="none"), lambda c: recognizer, lambda c: FakeMusic(),
               second_pass_factory=second_pass_factory)
    task = asyncio.create_task(d.run())
    for _ in range(1000):
        if d.ready.is_set():
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    d.url = f"ws://127.0.0.1:{d.server.port}/ws"
    try:
        yield d
    finally:
        d.stop()
        await asyncio.wait_for(task, 20)


def command_audio(seed: int = 1) -> np.ndarray:
    return np.concatenate([room(500, seed), speechlike(1200) + room(1200, seed + 1), room(1200, seed + 2)])


async def final_of(ws, audio: np.ndarray) -> dict:
    """Speak into the connection's open remote stream; the utterance's transcript.final."""
    await speak(ws, audio)
    return await recv(ws, "transcript.final", timeout=30)


def test_daemon_final_comes_from_the_second_pass():
    fast = FastSecondPass()

    async def main():
        async with running(second_pass_config(final_pass_budget_ms=5000), lambda c: fast) as d:
            async with connect(d.url) as ws:
                hello = await recv(ws, "hello")
                assert hello["snapshot"]["status"]["asr"]["final_pass"] == "whisper"
                await open_stream(ws)
                final = await final_of(ws, command_audio())
                assert final["text"] == "play halo by beyonce" and final["accepted"]
                intent = await recv(ws, "intent")
                assert intent["name"] == "play"
            assert d.metrics.final_pass.get("whisper") == 1
            assert fast.names == ["Adele", "Someone Like You"]  # the catalog names the first pass is biased towards
            (samples, heard), = fast.calls
            assert heard.startswith("la")  # the prompt source: the first pass's partial at the pause
            assert fast.decided == ["play hollow by beyond say"]  # the choice: against the first pass's final
            assert samples >= 16000 * 1.2  # the utterance's audio, pre-roll included
    asyncio.run(asyncio.wait_for(main(), 90))


@pytest.mark.parametrize("honours_cancel", [True, False])
def test_late_second_pass_falls_back_to_the_ctc_final_and_is_counted(honours_cancel):
    slow = SlowSecondPass(honours_cancel)

    async def main():
        async with running(second_pass_config(final_pass_budget_ms=50), lambda c: slow) as d:
            try:
                async with connect(d.url) as ws:
                    await recv(ws, "hello")
                    await open_stream(ws)
                    first = await final_of(ws, command_audio(1))
                    assert first["text"] == "play hollow by beyond say"  # the CTC final, not "too late"
                    # the first pass's worker is not held up by the stuck second pass
                    assert await d.asr.responsive(10.0)
                    second = await final_of(ws, command_audio(5))
                    assert second["text"] == "play hollow by beyond say"
                    third = await final_of(ws, command_audio(9))
                    assert third["text"] == "play hollow by beyond say"
                fallbacks = d.metrics.final_pass.get("budget") + d.metrics.final_pass.get("busy")
                assert fallbacks == 3 and d.metrics.final_pass.get("whisper") == 0
                if honours_cancel:
                    assert slow.cancelled.is_set()
                else:  # still stuck on the first: later ones wait behind it, the third is not even queued
                    assert d.metrics.final_pass.get("busy") >= 1
                metrics = await asyncio.to_thread(_http_text, f"http://127.0.0.1:{d.server.port}/metrics")
                assert 'assistant_final_pass_total{outcome="budget"}' in metrics
            finally:
                slow.release.set()
    asyncio.run(asyncio.wait_for(main(), 120))


def _http_text(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


async def _status_and_final(config, speak: bool):
    """The daemon's `status.asr` at hello, the final of a spoken command (when `speak`), whether a second pass
    runs, and the count of budget fallbacks."""
    async with running(config, load_second_pass) as d:
        async with connect(d.url) as ws:
            asr = (await recv(ws, "hello"))["snapshot"]["status"]["asr"]
            final = None
            if speak:
                await open_stream(ws)
                final = await final_of(ws, command_audio())
        return asr, final, d.ctx.second_pass is not None, d.metrics.final_pass.get("budget")


def test_daemon_with_a_missing_whisper_model_says_so_once_and_falls_back_to_stock_whisper(tmp_path, caplog):
    config = second_pass_config(whisper_model_dir=str(tmp_path / "no-model-here"), final_pass_budget_ms=5000)
    with caplog.at_level(logging.ERROR):
        asr, _, loaded, _ = asyncio.run(asyncio.wait_for(_status_and_final(config, speak=False), 90))
    assert asr["ready"] is True and asr["final_pass"] == "whisper" and loaded
    assert asr["final_pass_model"] == "whisper-tiny.en"
    assert "no model.bin" in asr["final_pass_error"] and "using stock whisper-tiny.en" in asr["final_pass_error"]
    assert len([r for r in caplog.records if "unavailable" in r.getMessage()]) == 1


def test_daemon_without_any_whisper_model_says_so_once_and_uses_ctc_finals(tmp_path, caplog, monkeypatch):
    import assistant.asr.ct2 as ct2

    monkeypatch.setattr(ct2, "whisper_package_dir", lambda: None)  # no stock model to fall back to either
    config = second_pass_config(whisper_model_dir=str(tmp_path / "no-model-here"), final_pass_budget_ms=5000)
    with caplog.at_level(logging.ERROR, logger="assistant.daemon"):
        asr, final, loaded, budget = asyncio.run(asyncio.wait_for(_status_and_final(config, speak=True), 90))
    assert asr["ready"] is True and asr["final_pass"] == "ctc" and not loaded
    assert "no model.bin" in asr["final_pass_error"] and "not found" in asr["final_pass_error"]
    assert final["text"] == "play hollow by beyond say" and budget == 0
    assert len([r for r in caplog.records if "second pass unavailable" in r.getMessage()]) == 1


def test_ctc_final_pass_loads_no_second_pass():
    cfg = make_config()
    cfg = dataclasses.replace(cfg, asr=dataclasses.replace(cfg.asr, final_pass="ctc"))
    d = Daemon(cfg, DaemonOptions(input="none"), lambda c: FakeRecognizer(), lambda c: FakeMusic(),
               second_pass_factory=lambda c: pytest.fail("no second pass should load"))
    assert d.final_pass_worker is None
    assert d.status().asr["final_pass"] == "ctc"
    json.dumps(d.status().to_dict())


# ---------------------------------------------------------------- decoding details without weights


def test_a_text_that_starts_over_is_cut_where_it_repeats():
    from assistant.asr.whisper_decoder import cut_loop

    would, you, stop, bye = 1, 2, 3, 4
    assert cut_loop([would, you, stop, would, you, stop, would], 3) == 3  # "would you stop would you stop would"
    assert cut_loop([would, you, stop], 3) == 3
    assert cut_loop([bye, bye, bye], 3) == 3  # a song called "Bye Bye Bye" is not a loop
    assert cut_loop([bye, bye, bye, bye], 3) == 4  # one word said again and again is not a starting over
    assert cut_loop([would, you, stop, would, you, stop], 0) == 6  # off
