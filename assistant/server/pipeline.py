"""One audio source through endpointer, recognizer and commands, as events.

    SourcePipeline.run()        reads the source's blocks, runs the Endpointer on
                                the event loop (cheap), publishes vad.start /
                                vad.end at once, and feeds each open utterance
    UtteranceTask.run()         one recognizer session per utterance: audio in
                                `chunk_ms` steps -> transcript.partial; at a
                                pause finish() starts speculatively, at the
                                endpoint its result is transcript.final; then
                                the listening policy and the command runner

Recognizer calls go through the single "asr" worker that owns the model, so
several sources share it; an utterance's queue decouples the audio path from
inference, so a slow step never stalls capture.

With a second pass (`[asr] final_pass = "whisper"`), the pause also starts
Whisper on the "final_pass" worker, beside the CTC final, prompted with the
catalog names in the latest partial; at the endpoint the choice between the
two is the final if Whisper is ready within `final_pass_budget_ms`, else the
CTC final is (counted in assistant_final_pass_total{outcome="budget"}); a
late pass is told to stop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from assistant.asr.features import SAMPLE_RATE_HZ
from assistant.audio.blocks import AudioSource
from assistant.audio.vad import Endpointer, EndpointEvent, SpeechAudio, SpeechEnded, SpeechPaused, SpeechResumed, SpeechStarted
from assistant.config import VadConfig
from assistant.server import protocol as p
from assistant.server.commands import CommandRunner, Origin
from assistant.server.hub import Hub
from assistant.server.listening import Decision, ListenPolicy
from assistant.server.metrics import DaemonMetrics
from assistant.server.workers import Worker

log = logging.getLogger(__name__)


@dataclass
class PipelineContext:
    """What every source pipeline shares."""

    hub: Hub
    asr: Worker
    recognizer: object | None          # assistant.asr.recognizer.Recognizer, None until loaded
    asr_unavailable: str               # why recognizer is None
    chunk_ms: int
    vad: VadConfig
    policy: ListenPolicy
    commands: CommandRunner
    metrics: DaemonMetrics
    next_utterance_id: Callable[[], str]
    second_pass: object | None = None  # assistant.asr.second_pass.WhisperSecondPass; None: CTC finals
    final_pass: Worker | None = None   # the worker the second pass runs on
    final_pass_budget_ms: int = 150
    loading_done: asyncio.Event | None = None  # set once the recognizer's load is over (loaded or failed); None: no load
    startup_buffer_s: float = 30.0     # per source: speech kept until loading_done; beyond it, a startup_buffer_full error
    voices: object | None = None       # assistant.voices.service.VoiceService: who spoke (None: the source's user)
    voices_worker: Worker | None = None


# How long the final waits for the speaker's identification (started at the pause, ~20 ms on its own worker);
# past it the source's user is taken.
VOICE_WAIT_S = 0.3


# Second passes waiting or running before a new one is skipped (a stuck pass must not pile up work).
MAX_PENDING_SECOND_PASSES = 2


@dataclass(frozen=True)
class _Pause:
    pass


@dataclass(frozen=True)
class _Resume:
    pass


@dataclass(frozen=True)
class _End:
    event: SpeechEnded
    t_speech_end: float  # monotonic estimate of when the last voiced sample was captured


def _finish(session, rest: np.ndarray) -> tuple[str, object]:
    """On the asr worker: the last partial chunk, then the lookahead flush and the biased final decoding;
    with it the finished session's scorer, for the second pass's choice."""
    if len(rest):
        session.accept(rest)
    return session.finish(), getattr(session, "log_likelihood", None)


def _replay(recognizer, audio: np.ndarray) -> tuple[object, str]:
    """On the asr worker: a fresh session that has heard `audio` (streaming equals whole-clip)."""
    session = recognizer.new_session()
    return session, session.accept(audio) if len(audio) else ""


class UtteranceTask:
    """One utterance: streaming recognition, partials, the final, the command.

    At a pause (SpeechPaused) the final decoding starts at once on what was said
    so far, while the endpointer still waits out its hangover; if the endpoint
    follows, that final is used (the beam search is then mostly done). If speech
    resumes instead, the speculative result is dropped and a fresh session
    replays the utterance's audio, so nothing said is lost.
    """

    def __init__(self, ctx: PipelineContext, source_id: str, user: str, utterance: str, first_audio: np.ndarray):
        self.ctx = ctx
        self.source_id = source_id
        self.user = user
        self.utterance = utterance
        self.chunk = SAMPLE_RATE_HZ * ctx.chunk_ms // 1000
        self.inbox: asyncio.Queue[np.ndarray | _Pause | _Resume | _End] = asyncio.Queue()  # bounded by max_utterance_ms
        self.inbox.put_nowait(first_audio)
        self.heard: list[np.ndarray] = []    # all audio so far, for a replay after a false pause
        self.pending: list[np.ndarray] = []  # audio not yet given to the session
        self.decoded = 0                     # samples given to the session
        self.session = None
        self.speculation: asyncio.Future | None = None
        self.speculated = 0                  # samples the speculative final covers
        self.second: asyncio.Future | None = None  # the second pass's hypothesis for the same audio
        self.second_cancel: threading.Event | None = None
        self.voice: asyncio.Future | None = None   # who is speaking (assistant.voices.identify.Identification)
        self.last_partial = ""
        self.task = asyncio.create_task(self.run(), name=f"utterance-{utterance}")

    async def run(self) -> None:
        ctx = self.ctx
        try:
            await self._recognize()
        except asyncio.CancelledError:  # the source ended abruptly, or the daemon stops: a second pass in flight stops too
            self._drop_second()
            raise
        except Exception as exc:  # noqa: BLE001 - one failed utterance must not stop the source
            log.exception("utterance %s failed", self.utterance)
            ctx.metrics.utterances.inc(1, "failed")
            ctx.hub.publish(p.ErrorEvent(code=p.E_INTERNAL, message=f"recognition failed: {type(exc).__name__}: {exc}",
                                         source=self.source_id, utterance=self.utterance))

    async def _recognize(self) -> None:
        ctx = self.ctx
        if ctx.recognizer is None and ctx.loading_done is not None:
            await ctx.loading_done.wait()  # meanwhile the inbox keeps the audio (SourcePipeline bounds it)
        rec = ctx.recognizer
        if rec is not None:
            self.session = await ctx.asr.call(rec.new_session)
        while True:
            item = await self.inbox.get()
            if isinstance(item, _End):
                await self._end(item)
                return
            if rec is None:
                continue  # nothing to recognize with; the end reports it
            if isinstance(item, _Pause):
                self._speculate()
            elif isinstance(item, _Resume):
                await self._resume()
            else:
                self.heard.append(item)
                self.pending.append(item)
                if self.speculation is None:
                    await self._stream()

    def _take_pending(self, n: int | None = None) -> np.ndarray:
        buf = np.concatenate(self.pending) if self.pending else np.zeros(0, dtype=np.float32)
        n = len(buf) if n is None else n
        self.pending = [buf[n:]] if n < len(buf) else []
        return buf[:n]

    def _pending_samples(self) -> int:
        return sum(len(a) for a in self.pending)

    async def _stream(self) -> None:
        """Every whole chunk of pending audio through the session, each giving a partial transcript."""
        ctx = self.ctx
        while self._pending_samples() >= self.chunk:
            step = self._take_pending(self.chunk)
            t = time.perf_counter()
            text = await ctx.asr.call(self.session.accept, step)
            ctx.metrics.asr_step.observe(time.perf_counter() - t)
            self.decoded += len(step)
            self._partial(text)

    def _partial(self, text: str) -> None:
        self.last_partial = text
        self.ctx.hub.publish(p.TranscriptPartial(source=self.source_id, utterance=self.utterance, text=text,
                                                 audio_ms=self.decoded * 1000 // SAMPLE_RATE_HZ))

    def _speculate(self) -> None:
        if self.speculation is not None:
            return
        rest = self._take_pending()
        self.speculated = self.decoded + len(rest)
        self.speculation = asyncio.ensure_future(self.ctx.asr.call(_finish, self.session, rest))
        self.session = None  # finished: a resumption needs a new one
        self._start_second()

    def _start_voice(self) -> None:
        """Who is speaking, on the voices worker, over all audio heard so far (beside the second pass)."""
        ctx = self.ctx
        if ctx.voices is None or ctx.voices_worker is None or not self.heard:
            return  # (with nobody enrolled, identify only looks for voices another process enrolled)
        self.voice = asyncio.ensure_future(ctx.voices_worker.call(ctx.voices.identify, np.concatenate(self.heard)))
        self.voice.add_done_callback(lambda f: f.cancelled() or f.exception())  # a failure is logged in _speaker

    async def _speaker(self):
        """The identification started at the pause, or None (none started, failed, or later than VOICE_WAIT_S)."""
        if self.voice is None:
            return None
        try:
            speaker = await asyncio.wait_for(asyncio.shield(self.voice), VOICE_WAIT_S)
            if self.ctx.commands.voices is not None:
                self.ctx.commands.voices.on_change()  # status.voices, when `assistant voices add` changed them
            return speaker
        except TimeoutError:
            log.warning("speaker of utterance %s not identified within %.1f s: the source's profile is used",
                        self.utterance, VOICE_WAIT_S)
        except Exception:  # noqa: BLE001 - the utterance goes on with the source's profile
            log.exception("speaker identification of utterance %s failed", self.utterance)
        return None

    def _start_second(self) -> None:
        """The second pass over all audio heard so far, beside the first pass's final decoding."""
        ctx = self.ctx
        self._start_voice()
        sp = ctx.second_pass
        if sp is None or ctx.final_pass is None or ctx.final_pass.pending >= MAX_PENDING_SECOND_PASSES:
            return  # none configured, or earlier passes still busy: the end reports "busy"
        audio = np.concatenate(self.heard) if self.heard else np.zeros(0, dtype=np.float32)
        cancel = threading.Event()
        self.second = asyncio.ensure_future(ctx.final_pass.call(sp.hypothesis, audio, self.last_partial, cancel))
        self.second_cancel = cancel

    def _drop_second(self) -> None:
        if self.second is not None:
            self.second_cancel.set()
            self.second.add_done_callback(lambda f: f.cancelled() or f.exception())  # result unused
            self.second = self.second_cancel = None

    def _drop_speculation(self) -> None:
        self.speculation.add_done_callback(lambda f: f.cancelled() or f.exception())  # result unused
        self.speculation = None
        self.ctx.metrics.speculative_finals.inc(1, "discarded")
        self._drop_second()

    async def _second_final(self, ctc_text: str, deadline: float, scorer=None) -> tuple[str, tuple]:
        """The second pass's final if it is ready by `deadline` (monotonic), else the CTC final; `scorer` is the
        first pass's CTC log-likelihood of a text (the choice rule's acoustic vote and the catalog rescoring).
        Also the catalog names the rescoring put in (assistant.asr.rescore.NameChoice)."""
        ctx = self.ctx
        if ctx.second_pass is None:
            return ctc_text, ()
        if self.second is None:
            ctx.metrics.final_pass.inc(1, "busy")
            return ctc_text, ()
        second = self.second
        try:
            result = await asyncio.wait_for(asyncio.shield(second), max(0.0, deadline - time.monotonic()))
            # on the second pass's worker: the choice rescores catalog names with its decoder (tens of ms)
            t_choice = time.perf_counter()
            choice = await ctx.final_pass.call(ctx.second_pass.decide, ctc_text, result, scorer)
            ctx.metrics.final_choice_seconds.observe(time.perf_counter() - t_choice)
        except TimeoutError:
            self._drop_second()
            ctx.metrics.final_pass.inc(1, "budget")
            return ctc_text, ()
        except Exception:  # noqa: BLE001 - a failed second pass must not lose the utterance
            log.exception("second pass of utterance %s failed", self.utterance)
            self.second = self.second_cancel = None
            ctx.metrics.final_pass.inc(1, "failed")
            return ctc_text, ()
        self.second = self.second_cancel = None
        ctx.metrics.final_pass.inc(1, choice.source)
        if choice.whisper is not None:
            ctx.metrics.final_pass_seconds.observe(choice.whisper.seconds)
        return choice.text, tuple(getattr(choice, "names", ()))

    async def _resume(self) -> None:
        if self.speculation is None:
            return
        self._drop_speculation()
        audio = np.concatenate(self.heard)
        aligned = len(audio) // self.chunk * self.chunk
        self.session, text = await self.ctx.asr.call(_replay, self.ctx.recognizer, audio[:aligned])
        self.decoded = aligned
        self.pending = [audio[aligned:]]
        if aligned:
            self._partial(text)
        await self._stream()

    async def _end(self, end: _End) -> None:
        ctx = self.ctx
        deadline = time.monotonic() + ctx.final_pass_budget_ms / 1000
        if not end.event.accepted:
            ctx.metrics.utterances.inc(1, "too_short")
            if self.speculation is not None:
                self._drop_speculation()
            return
        if ctx.recognizer is None:
            ctx.metrics.utterances.inc(1, "failed")
            ctx.hub.publish(p.ErrorEvent(code=p.E_UNAVAILABLE, message=f"speech not recognized: {ctx.asr_unavailable}",
                                         source=self.source_id, utterance=self.utterance))
            return
        if self.speculation is not None:
            ctx.metrics.speculative_finals.inc(1, "used")
            (text, scorer), samples = await self.speculation, self.speculated
        else:
            rest = self._take_pending()
            self._start_second()
            text, scorer = await ctx.asr.call(_finish, self.session, rest)  # one trip to the worker
            samples = self.decoded + len(rest)
        text, names = await self._second_final(text, deadline, scorer)
        await self._final(text, samples, end.t_speech_end, names)

    async def _final(self, text: str, audio_samples: int, t_speech_end: float, names: tuple = ()) -> None:
        ctx = self.ctx
        decision = ctx.policy.decide(self.source_id, text, time.monotonic())
        if not decision.command and ctx.commands.voices is not None and ctx.commands.voices.expecting(self.source_id):
            decision = Decision(True, text or "...")  # an enrolment sentence needs no wake phrase, nor words
        speaker = await self._speaker()
        user = speaker.user if speaker is not None and speaker.recognized else self.user
        ctx.hub.publish(p.TranscriptFinal(source=self.source_id, utterance=self.utterance, text=text,
                                          command=decision.command, accepted=decision.accepted,
                                          audio_ms=audio_samples * 1000 // SAMPLE_RATE_HZ,
                                          names=[n.to_dict() for n in names],
                                          speaker=None if speaker is None else {
                                              "user": user, "recognized": speaker.recognized,
                                              "score": round(speaker.score, 3), "nearest": speaker.best}))
        ctx.metrics.final_latency.observe(time.monotonic() - t_speech_end)
        if not decision.accepted or not decision.command:
            ctx.metrics.utterances.inc(1, "ignored" if not decision.accepted else "wake_phrase")
            return
        ctx.metrics.utterances.inc(1, "command")
        await ctx.commands.run(decision.command, Origin(utterance=self.utterance, user=user, source=self.source_id,
                                                        t0=t_speech_end, audio=np.concatenate(self.heard) if self.heard else None))


class SourcePipeline:
    """Runs one source until it ends (or the task is cancelled)."""

    def __init__(self, ctx: PipelineContext, source: AudioSource, user: str, endpointer: Endpointer | None = None):
        self.ctx = ctx
        self.source = source
        self.user = user
        self.endpointer = endpointer or Endpointer(ctx.vad)
        self.current: UtteranceTask | None = None
        self.tasks: set[asyncio.Task] = set()
        self.held_samples = 0      # speech kept while the recognizer loads
        self.overflowed = False    # more than startup_buffer_s came before it was ready: dropped until then

    async def run(self) -> None:
        kind = self.source.kind
        try:
            async for block in self.source.blocks():
                self.ctx.metrics.audio_seconds.inc(len(block) / SAMPLE_RATE_HZ, kind)
                now = time.monotonic()
                for event in self.endpointer.push(block):
                    self._on(event, now)
            for event in self.endpointer.flush():
                self._on(event, time.monotonic())
            if self.tasks:
                await asyncio.wait(set(self.tasks))
        finally:
            for t in self.tasks:
                t.cancel()

    def _starting(self) -> bool:
        return self.ctx.loading_done is not None and not self.ctx.loading_done.is_set()

    def _hold(self, event: EndpointEvent) -> bool:
        """While the recognizer loads: whether `event` is kept (its speech counted against the startup buffer)."""
        if self.overflowed:
            return False
        if isinstance(event, (SpeechStarted, SpeechAudio)):
            self.held_samples += len(event.audio)
            if self.held_samples > self.ctx.startup_buffer_s * SAMPLE_RATE_HZ:
                self._overflow()
                return False
        return True

    def _overflow(self) -> None:
        """Too much speech before the recognizer was ready: the open utterance is dropped, and so is what
        follows until it is ready; the clients are told once."""
        ctx, source = self.ctx, self.source.source_id
        self.overflowed = True
        utt, self.current = self.current, None
        if utt is not None:
            utt.task.cancel()  # its audio is freed
        ctx.metrics.utterances.inc(1, "startup_dropped")
        ctx.hub.publish(p.ErrorEvent(
            code=p.E_STARTUP_BUFFER_FULL, source=source, utterance=utt.utterance if utt else None,
            message=f"the daemon is still starting: more than {ctx.startup_buffer_s:g} s of speech from {source} came "
                    "before the recognizer was ready ([server] startup_buffer_s); it was dropped, send it again once "
                    "status says ready"))

    def _on(self, event: EndpointEvent, now: float) -> None:
        ctx = self.ctx
        if self._starting():
            if not self._hold(event):
                return
        elif self.current is None and not isinstance(event, SpeechStarted):
            return  # the rest of an utterance dropped at startup
        if isinstance(event, SpeechAudio):
            self.current.inbox.put_nowait(event.audio)
        elif isinstance(event, SpeechPaused):
            self.current.inbox.put_nowait(_Pause())
        elif isinstance(event, SpeechResumed):
            self.current.inbox.put_nowait(_Resume())
        elif isinstance(event, SpeechStarted):
            utt = UtteranceTask(ctx, self.source.source_id, self.user, ctx.next_utterance_id(), event.audio)
            self.current = utt
            self.tasks.add(utt.task)
            utt.task.add_done_callback(self.tasks.discard)
            ctx.hub.publish(p.VadStart(source=self.source.source_id, utterance=utt.utterance,
                                       speech_start_ms=event.speech_start_ms))
        else:
            utt, self.current = self.current, None
            ctx.hub.publish(p.VadEnd(source=self.source.source_id, utterance=utt.utterance,
                                     speech_end_ms=event.speech_end_ms, duration_ms=event.duration_ms,
                                     reason=event.reason, accepted=event.accepted))
            # the block that completed the endpoint arrived `now`; its last sample is at position_ms
            t_speech_end = now - (self.endpointer.position_ms - event.speech_end_ms) / 1000
            utt.inbox.put_nowait(_End(event, t_speech_end))
