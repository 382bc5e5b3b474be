"""One audio source through endpointer, recognizer and commands, as events.

    SourcePipeline.run()        reads the source's blocks, runs the Endpointer on
                                the event loop (cheap), publishes vad.start /
                                vad.end at once, and feeds each open utterance
    UtteranceTask.run()         one recognizer session per utterance: audio in
                                `chunk_ms` steps -> transcript.partial; at the
                                endpoint finish() -> transcript.final; then the
                                listening policy and the command runner

Recognizer calls go through the single "asr" worker that owns the model, so
several sources share it; an utterance's queue decouples the audio path from
inference, so a slow step never stalls capture.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from assistant.asr.features import SAMPLE_RATE_HZ
from assistant.audio.blocks import AudioSource
from assistant.audio.vad import Endpointer, SpeechAudio, SpeechEnded, SpeechStarted
from assistant.config import VadConfig
from assistant.server import protocol as p
from assistant.server.commands import CommandRunner, Origin
from assistant.server.hub import Hub
from assistant.server.listening import ListenPolicy
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


@dataclass(frozen=True)
class _End:
    event: SpeechEnded
    t_speech_end: float  # monotonic estimate of when the last voiced sample was captured


def _finish(session, rest: np.ndarray) -> str:
    """On the asr worker: the last partial chunk, then the lookahead flush and the biased final decoding."""
    if len(rest):
        session.accept(rest)
    return session.finish()


class UtteranceTask:
    def __init__(self, ctx: PipelineContext, source_id: str, user: str, utterance: str, first_audio: np.ndarray):
        self.ctx = ctx
        self.source_id = source_id
        self.user = user
        self.utterance = utterance
        self.inbox: asyncio.Queue[np.ndarray | _End] = asyncio.Queue()  # bounded by max_utterance_ms
        self.inbox.put_nowait(first_audio)
        self.task = asyncio.create_task(self.run(), name=f"utterance-{utterance}")

    async def run(self) -> None:
        ctx = self.ctx
        try:
            await self._recognize()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - one failed utterance must not stop the source
            log.exception("utterance %s failed", self.utterance)
            ctx.metrics.utterances.inc(1, "failed")
            ctx.hub.publish(p.ErrorEvent(code=p.E_INTERNAL, message=f"recognition failed: {type(exc).__name__}: {exc}",
                                         source=self.source_id, utterance=self.utterance))

    async def _recognize(self) -> None:
        ctx = self.ctx
        rec = ctx.recognizer
        session = await ctx.asr.call(rec.new_session) if rec is not None else None
        chunk = SAMPLE_RATE_HZ * ctx.chunk_ms // 1000
        pending: list[np.ndarray] = []
        n_pending = 0
        audio_samples = 0
        while True:
            item = await self.inbox.get()
            if isinstance(item, np.ndarray):
                pending.append(item)
                n_pending += len(item)
                while n_pending >= chunk and session is not None:
                    buf = np.concatenate(pending)
                    step, rest = buf[:chunk], buf[chunk:]
                    pending, n_pending = [rest], len(rest)
                    t = time.perf_counter()
                    text = await ctx.asr.call(session.accept, step)
                    ctx.metrics.asr_step.observe(time.perf_counter() - t)
                    audio_samples += len(step)
                    ctx.hub.publish(p.TranscriptPartial(source=self.source_id, utterance=self.utterance, text=text,
                                                        audio_ms=audio_samples * 1000 // SAMPLE_RATE_HZ))
                continue
            end = item.event
            if not end.accepted:
                ctx.metrics.utterances.inc(1, "too_short")
                return
            if session is None:
                ctx.metrics.utterances.inc(1, "failed")
                ctx.hub.publish(p.ErrorEvent(code=p.E_UNAVAILABLE, message=f"speech not recognized: {ctx.asr_unavailable}",
                                             source=self.source_id, utterance=self.utterance))
                return
            rest = np.concatenate(pending) if pending else np.zeros(0, dtype=np.float32)
            text = await ctx.asr.call(_finish, session, rest)  # one trip to the worker
            await self._final(text, audio_samples + n_pending, item.t_speech_end)
            return

    async def _final(self, text: str, audio_samples: int, t_speech_end: float) -> None:
        ctx = self.ctx
        decision = ctx.policy.decide(self.source_id, text, time.monotonic())
        ctx.hub.publish(p.TranscriptFinal(source=self.source_id, utterance=self.utterance, text=text,
                                          command=decision.command, accepted=decision.accepted,
                                          audio_ms=audio_samples * 1000 // SAMPLE_RATE_HZ))
        ctx.metrics.final_latency.observe(time.monotonic() - t_speech_end)
        if not decision.accepted or not decision.command:
            ctx.metrics.utterances.inc(1, "ignored" if not decision.accepted else "wake_phrase")
            return
        ctx.metrics.utterances.inc(1, "command")
        await ctx.commands.run(decision.command, Origin(utterance=self.utterance, user=self.user,
                                                        source=self.source_id, t0=t_speech_end))


class SourcePipeline:
    """Runs one source until it ends (or the task is cancelled)."""

    def __init__(self, ctx: PipelineContext, source: AudioSource, user: str, endpointer: Endpointer | None = None):
        self.ctx = ctx
        self.source = source
        self.user = user
        self.endpointer = endpointer or Endpointer(ctx.vad)
        self.current: UtteranceTask | None = None
        self.tasks: set[asyncio.Task] = set()

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

    def _on(self, event: SpeechStarted | SpeechAudio | SpeechEnded, now: float) -> None:
        ctx = self.ctx
        if isinstance(event, SpeechAudio):
            self.current.inbox.put_nowait(event.audio)
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
