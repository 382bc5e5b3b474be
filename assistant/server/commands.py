"""Command text -> intent and recommendations events, the same for speech and typed queries.

The music side (intent parser, recommender, preference store) is reached
through the `MusicService` protocol, run on the "music" worker thread; the
daemon provides the adapter to the real implementation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from assistant.errors import AssistantError, StorageError
from assistant.server import protocol as p
from assistant.server.hub import Hub
from assistant.server.metrics import DaemonMetrics
from assistant.server.workers import Worker

log = logging.getLogger(__name__)

MAX_NOW_PLAYING_USERS = 1000  # users whose playing song is remembered ("more like this")


@dataclass(frozen=True)
class CommandResult:
    intent: str                    # protocol intent name; "none" when nothing was understood
    slots: dict = field(default_factory=dict)
    confidence: float | None = None
    items: list[dict] | None = None  # None: not a request for songs (player control, none)
    answer: dict | None = None     # a question about the music: {"question", "text", "song"}
    matches: dict = field(default_factory=dict)  # name slot -> catalog match (IntentEvent.matches)


class MusicService(Protocol):
    """Runs on the music worker thread only."""

    def handle(self, text: str, user: str, now_playing: str | None) -> CommandResult: ...

    def feedback(self, user: str, song_id: str, kind: str) -> None: ...

    def bias_phrases(self) -> list[str]:
        """Catalog names (titles, artists, genres) the recognizer should favour."""

    def media_path(self, song_id: str):
        """The song's audio file when it lies inside a configured music folder, else None."""

    def close(self) -> None: ...


@dataclass
class Origin:
    """Where a command came from, for the ids on its events and its latency metric."""

    utterance: str
    user: str
    source: str | None = None     # audio source; None for a typed query
    request: str | None = None    # the query's id
    t0: float = 0.0               # monotonic time latency is measured from (end of speech / query arrival)
    audio: object = None          # the utterance's 16 kHz audio (spoken commands): voice enrolment takes it
    reply: Callable[[p.ServerEvent], None] | None = None  # errors go only to the asking client when set


class CommandRunner:
    def __init__(self, hub: Hub, worker: Worker, metrics: DaemonMetrics):
        self.hub = hub
        self.worker = worker
        self.metrics = metrics
        self.music: MusicService | None = None
        self.unavailable = "the recommender is still loading"
        self.loading_done: asyncio.Event | None = None  # set once the music service's load is over; commands wait for it
        self.now_playing: dict[str, str] = {}  # user -> song id of the latest `played` feedback
        self.voices = None  # assistant.server.voice_commands.VoiceDialog: voice commands, taken before the parser

    async def run(self, text: str, origin: Origin) -> None:
        if self.voices is not None and await self.voices.intercept(text, origin):
            return
        if self.music is None and self.loading_done is not None:
            await self.loading_done.wait()  # a command said or typed while the daemon starts is answered once it can be
        if self.music is None:
            self._error(p.E_UNAVAILABLE, f"cannot handle {text!r}: {self.unavailable}", origin)
            return
        try:
            result = await self.worker.call(self.music.handle, text, origin.user, self.now_playing.get(origin.user))
        except StorageError as exc:  # "i like this" on a full disk, say
            self._error(p.E_STORAGE, str(exc), origin)
            return
        except AssistantError as exc:
            self._error(p.E_BAD_MESSAGE, str(exc), origin)
            return
        except Exception as exc:  # noqa: BLE001 - a bug in the music side must not take the daemon down
            log.exception("handling %r failed", text)
            self._error(p.E_INTERNAL, f"handling {text!r} failed: {type(exc).__name__}: {exc}", origin)
            return
        self.hub.publish(p.IntentEvent(utterance=origin.utterance, name=result.intent, slots=result.slots,
                                       confidence=result.confidence, text=text, matches=result.matches,
                                       source=origin.source, request=origin.request, user=origin.user))
        if result.items is not None and result.intent != "none":
            self.hub.publish(p.Recommendations(utterance=origin.utterance, intent=result.intent, items=result.items,
                                               source=origin.source, request=origin.request, user=origin.user))
            hist = self.metrics.recs_latency if origin.source is not None else self.metrics.query_latency
            hist.observe(time.monotonic() - origin.t0)
        if result.answer is not None:
            self.hub.publish(p.AnswerEvent(utterance=origin.utterance, question=result.answer["question"],
                                           text=result.answer["text"], song=result.answer.get("song"),
                                           source=origin.source, request=origin.request, user=origin.user))

    async def feedback(self, user: str, song_id: str, kind: str) -> None:
        if self.music is None:
            raise p.ProtocolError(p.E_UNAVAILABLE, f"feedback not recorded: {self.unavailable}")
        try:
            await self.worker.call(self.music.feedback, user, song_id, kind)
        except StorageError as exc:
            raise p.ProtocolError(p.E_STORAGE, str(exc)) from None
        self.metrics.feedback.inc(1, kind)
        if kind == "played":
            self.now_playing.pop(user, None)
            self.now_playing[user] = song_id  # newest last; user ids come from clients, so the oldest are let go
            while len(self.now_playing) > MAX_NOW_PLAYING_USERS:
                del self.now_playing[next(iter(self.now_playing))]

    def _error(self, code: str, message: str, origin: Origin) -> None:
        event = p.ErrorEvent(code=code, message=message, request=origin.request, source=origin.source, utterance=origin.utterance)
        (origin.reply or self.hub.publish)(event)
