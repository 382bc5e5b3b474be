"""The daemon: wiring and lifecycle only.

    Daemon(config, options).run()
      1. listen (HTTP + WebSocket on one port; refuses off-loopback without a token)
      2. start the local input (microphone, file, or none); remote inputs come
         and go with WebSocket and Wyoming clients. Until the recognizer is
         loaded their speech is kept (up to [server] startup_buffer_s per
         source) and recognized once it is; commands wait for the recommender
      3. load the recognizer on the "asr" worker and the music service on the
         "music" worker, in parallel; bias the recognizer towards the catalog
      4. sd_notify READY (`status.ready`, /readyz), then WATCHDOG while the workers answer
      5. on SIGTERM/SIGINT: STOPPING, drop the work in flight (open utterances,
         second passes, queued commands), stop inputs, close clients with 1001,
         close the music service (the preference store), all within
         SHUTDOWN_S; `serve` then ends the process at once, without waiting
         for a job that still runs on a worker thread (a decode inside a C call)

A component that fails to load leaves the daemon serving with the reason in
`status` (and `unavailable` errors), rather than exiting in a restart loop.
Everything specific to the recommender's API is in `MusicAdapter`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import NoReturn
from dataclasses import dataclass
from pathlib import Path

from assistant import __version__
from assistant.asr.features import SAMPLE_RATE_HZ
from assistant.audio.blocks import InputState
from assistant.audio.capture import Microphone
from assistant.audio.file_source import FileSource
from assistant.audio.echo import EchoCanceller, EchoOptions
from assistant.audio.remote import RemoteSource
from assistant.config import Config, resolve_path
from assistant.errors import AssistantError
from assistant.server import protocol as p
from assistant.server import systemd
from assistant.server.commands import CommandResult, CommandRunner, MusicService, Origin
from assistant.server.hub import Hub
from assistant.server.listening import ListenPolicy
from assistant.server.metrics import DaemonMetrics
from assistant.server.pipeline import PipelineContext, SourcePipeline
from assistant.server.security import check_bind
from assistant.server.voice_commands import VoiceDialog
from assistant.server.workers import Worker
from assistant.server.wyoming_asr import WyomingServer, check_wyoming_bind
from assistant.server.ws import WsServer

log = logging.getLogger(__name__)

SHUTDOWN_S = 3.0  # SIGTERM to the end of run(): what is not done by then is abandoned (systemd waits 20 s; we aim at 5)
CLOSE_STEP_S = 1.0  # of which closing the servers and clients may take at most this
WORKER_STOP_S = 1.0  # and a worker's job in flight (told to stop) this much more before it is abandoned


@dataclass(frozen=True)
class DaemonOptions:
    input: str = "mic"              # "mic", "none", or an audio file path
    realtime: bool = True           # play a file input at real-time speed
    wait_for_client: bool = False   # hold a file input until the first WebSocket client has connected
    exit_after_input: bool = False  # stop once a file input is played and its commands answered
    loop_input: bool = False        # play a file input again and again (soak runs, demos)


class _TranscribeOnly:
    """In place of the command runner for sources whose speech is transcribed only ([wyoming] run_commands = false)."""

    async def run(self, text: str, origin: Origin) -> None:
        return None


class MusicAdapter:
    """The one place that knows the intent parser's and recommender's API (assistant.recommend.service)."""

    FEEDBACK_EVENTS = {"like": "liked", "dislike": "disliked", "skip": "skipped", "played": "played"}

    def __init__(self, service, music_folders: tuple[str, ...] = ()):
        self.service = service
        self.music_folders = [resolve_path(f).resolve() for f in music_folders]

    @classmethod
    def load(cls, config: Config) -> "MusicAdapter":
        from assistant.recommend.service import RecommendService  # the embedding model loads here

        return cls(RecommendService(config), config.recommend.music_folders)

    def media_path(self, song_id: str) -> Path | None:
        song = self.service.song(song_id)
        if song is None or not song.source or "://" in song.source:
            return None
        path = Path(song.source).expanduser().resolve()
        if not path.is_file() or not any(path.is_relative_to(folder) for folder in self.music_folders):
            return None
        return path

    def bias_phrases(self) -> list[str]:
        names: set[str] = set()
        for song in self.service.catalog.songs:
            names.update((song.title, *song.artists, *song.genres))
        return sorted(n for n in names if n)

    def handle(self, text: str, user: str, now_playing: str | None) -> CommandResult:
        intent, rec = self.service.handle_text(text, user=user, now_playing=now_playing)
        items = None if rec is None else [self._item(r) for r in rec.items]
        answer = self.service.answer(intent, now_playing)
        slots = dict(intent.slots)
        if intent.exclude:
            slots["exclude"] = dict(intent.exclude)
        return CommandResult(intent.intent, slots, round(float(intent.confidence), 3), items,
                             answer.to_dict() if answer is not None else None, matches=intent.matches)

    def _item(self, ranked) -> dict:
        song = ranked.song
        playable = self.media_path(song.id) is not None
        return {"id": song.id, "title": song.title, "artist": song.artist, "album": song.album or None,
                "year": song.year, "genres": list(song.genres), "score": round(float(ranked.score), 4),
                "reasons": list(ranked.reasons), "playable": playable,
                "media_url": f"/media/{song.id}" if playable else None}

    def feedback(self, user: str, song_id: str, kind: str) -> None:
        self.service.feedback(user, song_id, self.FEEDBACK_EVENTS[kind])

    def refile(self, from_user: str, to_user: str, feedback: list[dict]) -> int:
        """An utterance was another person's: its feedback events move to them; how many moved."""
        return sum(self.service.store.move_latest_event(from_user, to_user, f["song_id"], self.FEEDBACK_EVENTS[f["kind"]])
                   for f in feedback)

    def close(self) -> None:
        self.service.close()


def load_recognizer(config: Config):
    from assistant.asr.recognizer import Recognizer  # torch is imported here, on the asr worker

    return Recognizer.load(config.asr)


def load_second_pass(config: Config):
    from assistant.asr.second_pass_factory import load_second_pass as load  # on the final_pass worker

    second = load(config.asr)  # [asr] second_pass_model, else stock Whisper tiny.en (`load_notice` says why)
    second.set_rescore(config.rescore)  # catalog names in finals by acoustic evidence
    return second


def _load_error(component: str, exc: Exception) -> str:
    """Log why a component did not load; the one-line reason for `status` (a bug's type and text, its traceback logged)."""
    if isinstance(exc, AssistantError):
        log.error("%s unavailable: %s", component, exc)
        return str(exc)
    log.exception("%s failed to load", component)
    return f"failed to load ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"


class Daemon:
    def __init__(self, config: Config, options: DaemonOptions = DaemonOptions(),
                 recognizer_factory: Callable[[Config], object] = load_recognizer,
                 music_factory: Callable[[Config], MusicService] = MusicAdapter.load,
                 second_pass_factory: Callable[[Config], object] | None = None):
        self.config = config
        self.options = options
        self.recognizer_factory = recognizer_factory
        self.music_factory = music_factory
        # The Whisper second pass by default; a stand-in recognizer (tests) brings its own second pass or none.
        if second_pass_factory is None and recognizer_factory is load_recognizer:
            second_pass_factory = load_second_pass
        self.second_pass_factory = second_pass_factory
        self.metrics = DaemonMetrics()
        self.hub = Hub(config.server.client_queue_events, self.metrics)
        self.asr = Worker("asr")
        self.music_worker = Worker("music")
        # The second pass has its own thread, so a slow or stuck one never delays the first pass.
        self.final_pass_worker = (Worker("final_pass") if config.asr.final_pass == "whisper" and second_pass_factory is not None
                                  else None)
        self.commands = CommandRunner(self.hub, self.music_worker, self.metrics)
        self._utterance_ids = itertools.count(1)
        self._query_ids = itertools.count(1)
        self.ctx = PipelineContext(
            hub=self.hub, asr=self.asr, recognizer=None, asr_unavailable="the speech recognizer is still loading",
            chunk_ms=config.asr.chunk_ms, vad=config.vad, policy=ListenPolicy(config.listen),
            commands=self.commands, metrics=self.metrics, next_utterance_id=lambda: f"u{next(self._utterance_ids)}",
            final_pass=self.final_pass_worker, final_pass_budget_ms=config.asr.final_pass_budget_ms,
            loading_done=asyncio.Event(), startup_buffer_s=config.server.startup_buffer_s)
        self.commands.loading_done = asyncio.Event()
        # Voice profiles (issue 18): the store opens while loading; identification runs once a voice is enrolled.
        self.voices_worker = Worker("voices")
        self.voice_dialog = VoiceDialog(None, self.voices_worker, self.hub, config.preferences.default_user,
                                        on_change=self.publish_status)
        self.commands.voices = self.voice_dialog
        self.ctx.voices_worker = self.voices_worker
        self.server = WsServer(config.server, self.hub, self, self.metrics, self.health)
        self.wyoming = (WyomingServer(config.wyoming, config.asr, self, config.audio.queue_blocks,
                                      lambda: self.metrics.dropped_frames.inc(1, "wyoming"), self.metrics)
                        if config.wyoming.enabled else None)
        self.player = self._make_player()
        self._first_client = asyncio.Event()
        self._stop = asyncio.Event()
        self.ready = asyncio.Event()  # set when loading is over and inputs run (READY=1)
        self.local_source = self._make_local_source()
        self.input_state = self.local_source.state if self.local_source else InputState("none", "", "off")
        self.asr_state = {"ready": False, "error": None}
        self.final_pass_state = {"final_pass": "ctc", "final_pass_error": None}  # until the second pass has loaded
        self.music_state = {"ready": False, "error": None}
        self.remote: dict[str, tuple[RemoteSource, asyncio.Task]] = {}
        self._remote_counts: dict[str, int] = {}
        self._last_status: dict | None = None
        self._started_s = time.monotonic()
        self.abandoned: list[str] = []  # workers whose job in flight was left running at shutdown
        self._register_gauges()

    # -- construction helpers --------------------------------------------

    def _make_local_source(self):
        spec = self.options.input
        if spec == "none":
            return None
        if spec == "mic":
            return Microphone(self.config.audio, self._set_input_state, lambda: self.metrics.dropped_frames.inc(1, "microphone"))
        source = FileSource(spec, self.config.audio.block_ms, self.options.realtime,
                            start=self._first_client if self.options.wait_for_client else None, on_state=self._set_input_state,
                            repeat=self.options.loop_input)
        source.load()  # a missing or unreadable file is an error now, not later
        return source

    def _make_player(self):
        if self.config.player.backend != "mpd":
            return None
        from assistant.player.mpd import MpdPlayer

        player = MpdPlayer(self.config.player, self.config.recommend.music_folders, publish=self.hub.publish,
                           resolve=self._media_paths, feedback=self.commands.feedback, on_change=self.publish_status,
                           default_user=self.config.preferences.default_user)
        self.hub.listeners.append(player.on_event)
        return player

    async def _media_paths(self, song_ids: list[str]) -> dict[str, Path | None]:
        music = self.commands.music
        if music is None:
            return {}
        return await self.music_worker.call(lambda: {i: music.media_path(i) for i in song_ids})

    def _register_gauges(self) -> None:
        m = self.metrics
        m.gauge("assistant_clients", "Connected WebSocket clients.", lambda: len(self.hub.clients))
        m.gauge("assistant_remote_sources", "Open remote audio streams.", lambda: len(self.remote))
        m.gauge("assistant_queue_depth", "Items waiting, by queue.", lambda: {
            ("asr_worker",): self.asr.pending, ("music_worker",): self.music_worker.pending,
            ("final_pass_worker",): self.final_pass_worker.pending if self.final_pass_worker else 0,
            ("microphone",): len(self.local_source.queue) if isinstance(self.local_source, Microphone) and self.local_source.queue else 0,
            ("remote_max",): max((len(s.queue) for s, _ in self.remote.values()), default=0),
            ("client_max",): self.hub.max_queue_depth()}, ["queue"])
        m.gauge("assistant_up_seconds", "Seconds since the daemon started.", lambda: round(time.monotonic() - self._started_s, 1))

    # -- status ------------------------------------------------------------

    def _set_input_state(self, state: InputState) -> None:
        self.input_state = state
        self.publish_status()

    def status(self) -> p.Status:
        return p.Status(voices=self.voice_dialog.state(), player=self.player.state() if self.player else {"backend": self.config.player.backend},
                        listening=self.input_state.state == "open", mode=self.config.listen.mode, ready=self.state() == "ready",
                        input=self.input_state.to_dict(), remote_sources=len(self.remote),
                        asr={**self.asr_state, **self.final_pass_state}, recommender=dict(self.music_state), clients=len(self.hub.clients),
                        echo_cancel=self._echo_status())

    def _echo_status(self) -> dict:
        sources = {sid: st for sid, (src, _) in self.remote.items() if (st := src.echo_status()) is not None}
        return {"enabled": self.config.audio.echo_cancel, "sources": sources}

    def publish_status(self) -> None:
        event = self.status()
        body = {k: v for k, v in event.to_dict().items() if k != "ts"}
        if body != self._last_status:
            self._last_status = body
            self.hub.publish(event)

    def state(self) -> str:
        """"starting" (loading; audio is kept for later), "ready", "degraded" (loading is over but the
        recognizer failed to load: `asr.error` says why) or "stopping"."""
        if self._stop.is_set():
            return "stopping"
        if not self.ready.is_set():
            return "starting"
        return "ready" if self.asr_state["ready"] else "degraded"

    def starting(self) -> bool:
        return self.state() == "starting"

    def health(self) -> dict:
        state = self.state()
        return {"status": "ok", "version": __version__, "state": state, "ready": state == "ready",
                "listening": self.input_state.state == "open",
                "input": self.input_state.state, "asr": self.asr_state["ready"], "recommender": self.music_state["ready"],
                "clients": len(self.hub.clients), "uptime_s": round(time.monotonic() - self._started_s, 1)}

    # -- Backend (what the WebSocket transport calls) ------------------------

    def hello_config(self) -> dict:
        c = self.config
        return {"mode": c.listen.mode, "wake_phrase": c.listen.wake_phrase, "sample_rate_hz": SAMPLE_RATE_HZ,
                "chunk_ms": c.asr.chunk_ms, "hangover_ms": c.vad.hangover_ms, "max_message_bytes": c.server.max_message_bytes,
                "audio_encodings": list(p.AUDIO_ENCODINGS), "feedback_kinds": list(p.FEEDBACK_KINDS),
                "default_user": c.preferences.default_user, "player": c.player.backend}

    def clients_changed(self, count: int) -> None:
        if count:
            self._first_client.set()
        self.publish_status()

    async def query(self, msg: p.Query, session: str) -> None:
        self.metrics.queries.inc()
        origin = Origin(utterance=f"q{next(self._query_ids)}", user=msg.user or self.config.preferences.default_user,
                        request=msg.id, t0=time.monotonic(), reply=lambda e: self.hub.send(session, e))
        await self.commands.run(msg.text, origin)

    async def feedback(self, msg: p.Feedback, session: str) -> None:
        try:
            await self.commands.feedback(msg.user or self.config.preferences.default_user, msg.song_id, msg.kind)
        except p.ProtocolError as exc:
            exc.request = msg.id
            raise
        except AssistantError as exc:  # an unknown song id, say: answered with the feedback's id
            raise p.ProtocolError(p.E_BAD_MESSAGE, str(exc), msg.id) from None

    async def voice(self, msg: p.ClientMessage, session: str) -> None:
        if isinstance(msg, p.VoiceEnrol):
            await self.voice_dialog.enrol(msg)
        elif isinstance(msg, p.VoiceForget):
            await self.voice_dialog.forget(msg.name.strip(), request=msg.id)
        else:  # voice.correct: the page says whose utterance it was; the feedback given for it follows
            if self.commands.music is None:
                raise p.ProtocolError(p.E_UNAVAILABLE, f"voice.correct: {self.commands.unavailable}", msg.id)
            try:
                moved = await self.music_worker.call(self.commands.music.refile, msg.from_user, msg.user, msg.feedback)
            except AssistantError as exc:
                raise p.ProtocolError(p.E_STORAGE, f"voice.correct: {exc}", msg.id) from None
            self.hub.send(session, p.VoiceEvent(action="correct", state="corrected", name=msg.user, utterance=msg.utterance,
                                                request=msg.id, enrolled=list(self.voice_dialog.state()["enrolled"]),
                                                message=f"{msg.utterance} is {msg.user}'s now ({moved} feedback moved)"))

    def open_remote(self, msg: p.AudioStart, session: str) -> RemoteSource:
        for gone in [s for s in self._remote_counts if s not in self.hub.clients]:  # bounded by the clients connected
            del self._remote_counts[gone]
        n = self._remote_counts[session] = self._remote_counts.get(session, 0) + 1
        audio = self.config.audio
        echo = (EchoCanceller(EchoOptions(audio.echo_filter_ms))
                if audio.echo_cancel and msg.format.echo_reference_channel is not None else None)
        source = RemoteSource(f"remote-{session}-{n}", msg.format, audio.queue_blocks,
                              lambda: self.metrics.dropped_frames.inc(1, "remote"), echo=echo, on_echo_state=self.publish_status)
        self.start_source(source, user=msg.user)
        return source

    # -- what the Wyoming service calls (it also uses start_source) ---------------

    def add_listener(self, listener: Callable[[p.ServerEvent], None]) -> None:
        self.hub.listeners.append(listener)

    def remove_listener(self, listener: Callable[[p.ServerEvent], None]) -> None:
        with contextlib.suppress(ValueError):
            self.hub.listeners.remove(listener)

    def start_source(self, source: RemoteSource, run_commands: bool = True, user: str | None = None) -> asyncio.Task:
        """Run a remote source (WebSocket or Wyoming stream) through the pipeline until it ends."""
        ctx = self.ctx if run_commands else dataclasses.replace(self.ctx, commands=_TranscribeOnly())
        task = asyncio.create_task(self._run_remote(source, user or self.config.preferences.default_user, ctx),
                                   name=source.source_id)
        self.remote[source.source_id] = (source, task)
        self.publish_status()
        return task

    async def media_path(self, song_id: str) -> Path | None:
        music = self.commands.music
        return None if music is None else await self.music_worker.call(music.media_path, song_id)

    async def _run_remote(self, source: RemoteSource, user: str, ctx: PipelineContext) -> None:
        try:
            await SourcePipeline(ctx, source, user).run()
        except Exception:  # noqa: BLE001
            log.exception("remote source %s failed", source.source_id)
        finally:
            self.remote.pop(source.source_id, None)
            self.publish_status()

    # -- lifecycle -----------------------------------------------------------

    async def _load(self) -> None:
        async def recognizer() -> None:
            try:
                self.ctx.recognizer = await self.asr.call(self.recognizer_factory, self.config)
                self.asr_state = {"ready": True, "error": None}
            except Exception as exc:  # noqa: BLE001 - a bug too is reported, and the rest keeps serving
                self.ctx.asr_unavailable = _load_error("speech recognizer", exc)
                self.asr_state = {"ready": False, "error": self.ctx.asr_unavailable}

        async def music() -> None:
            try:
                self.commands.music = await self.music_worker.call(self.music_factory, self.config)
                self.music_state = {"ready": True, "error": None}
            except Exception as exc:  # noqa: BLE001
                self.commands.unavailable = _load_error("recommender", exc)
                self.music_state = {"ready": False, "error": self.commands.unavailable}
            finally:
                self.commands.loading_done.set()

        async def second_pass() -> None:
            if self.final_pass_worker is None:
                return
            try:
                second = await self.final_pass_worker.call(self.second_pass_factory, self.config)
            except AssistantError as exc:  # missing, damaged or foreign model: said once, CTC finals
                self.final_pass_state = {"final_pass": "ctc", "final_pass_error": str(exc)}
                log.error("Whisper second pass unavailable, finals come from the CTC beam: %s", exc)
                return
            self.ctx.second_pass = second
            self.final_pass_state = {"final_pass": "whisper", "final_pass_error": getattr(second, "load_notice", None),
                                     "final_pass_model": getattr(second, "model_name", None)}

        async def voices() -> None:
            if not self.config.voices.enabled:
                return
            from assistant.voices.service import VoiceService

            try:
                service = await self.voices_worker.call(VoiceService.from_config, self.config.voices, self.config.preferences)
            except Exception as exc:  # noqa: BLE001 - without voices every utterance uses the default profile
                _load_error("voice profiles", exc)
                return
            self.voice_dialog.service = self.ctx.voices = service

        async def vad() -> None:
            """Silero's ONNX session (about a second with onnxruntime's import) is made off the event loop, so the
            first remote stream's endpointer does not hold the loop; without silero-vad the endpointer says so."""
            if self.config.vad.engine == "silero":
                from assistant.audio.silero import SileroUnavailable, shared_session

                with contextlib.suppress(SileroUnavailable):
                    await asyncio.to_thread(shared_session)

        try:
            await asyncio.gather(recognizer(), music(), second_pass(), voices(), vad())
            rec, music_service = self.ctx.recognizer, self.commands.music
            if rec is not None and music_service is not None:
                phrases = await self.music_worker.call(music_service.bias_phrases)
                if self.config.listen.mode == "wake_phrase":
                    phrases.append(self.config.listen.wake_phrase)
                await self.asr.call(rec.set_bias, phrases)
                log.info("recognizer biased towards %d catalog names", len(phrases))
                if self.ctx.second_pass is not None:
                    await self.final_pass_worker.call(self.ctx.second_pass.set_names, phrases)
        finally:  # the audio kept meanwhile is recognized now, with the catalog's names (or told why not)
            self.ctx.loading_done.set()
        self.publish_status()

    async def _run_local(self) -> None:
        if self.local_source is None:
            return
        await SourcePipeline(self.ctx, self.local_source, self.config.preferences.default_user).run()
        if self.options.exit_after_input:  # a file input ended (a microphone never does)
            self._stop.set()

    async def _watchdog(self, interval_s: float, ready: asyncio.Event) -> None:
        while True:
            await asyncio.sleep(interval_s)
            if not ready.is_set() or (await self.asr.responsive(interval_s) and await self.music_worker.responsive(interval_s)):
                systemd.notify("WATCHDOG=1")
            else:
                log.error("a worker did not answer within %.1f s; withholding the watchdog ping", interval_s)

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> int:
        check_bind(self.config.server)
        check_wyoming_bind(self.config.wyoming)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)
        interval = systemd.watchdog_interval_s()
        watchdog = asyncio.create_task(self._watchdog(interval, self.ready)) if interval else None
        await self.server.start()
        log.info("listening on http://%s:%d/ (WebSocket /ws)", self.config.server.host, self.server.port)
        systemd.notify("STATUS=loading the recognizer and the catalog")
        local: asyncio.Task | None = None
        player: asyncio.Task | None = None
        try:
            if self.wyoming is not None:
                await self.wyoming.start()
                log.info("Wyoming speech-to-text on tcp://%s:%d", self.config.wyoming.host, self.wyoming.port)
            if self.player is not None:
                player = asyncio.create_task(self.player.run(), name="player")
            self.publish_status()
            local = asyncio.create_task(self._run_local(), name="local-input")  # kept until the recognizer is ready
            loader = asyncio.create_task(self._load())
            stopper = asyncio.create_task(self._stop.wait())
            await asyncio.wait({loader, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if not self._stop.is_set():
                self.ready.set()
                self.publish_status()
                log.info("ready (%.1f s after start)", time.monotonic() - self._started_s)
                systemd.notify(f"READY=1\nSTATUS=serving on {self.config.server.host}:{self.server.port}, input {self.options.input}")
                await self._stop.wait()
            loader.cancel()
            stopper.cancel()
        finally:
            log.info("stopping")
            systemd.notify("STOPPING=1")
            if watchdog:
                watchdog.cancel()
            await self._shutdown(local, player)
        return 0

    async def _shutdown(self, local: asyncio.Task | None, player: asyncio.Task | None = None) -> None:
        """Within SHUTDOWN_S, whatever the load: work in flight is dropped, not finished."""
        deadline = time.monotonic() + SHUTDOWN_S
        # 1. Drop the work in flight: every source's utterances (their second passes are told to stop, their
        #    queued worker jobs cancelled), so the preference store's close is next on the music worker.
        tasks = [t for _, t in self.remote.values()] + ([local] if local else [])
        for t in tasks:
            t.cancel()
        step_s = min(CLOSE_STEP_S, deadline - time.monotonic())
        closing = [self.server.close(step_s)] + ([self.wyoming.close(step_s)] if self.wyoming is not None else [])
        if player is not None:
            closing.append(self.player.close())  # un-ducks MPD
        await self._bounded(asyncio.gather(*closing, return_exceptions=True), step_s + 0.5, "closing the servers and clients")
        if player is not None:
            player.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()))  # their finally blocks (the microphone's process)
        # 2. The preference store, closed on its own thread (SQLite) once the job in flight there is done.
        if self.commands.music is not None:
            self.music_worker.drop_queued()  # commands still waiting (a query burst) are not answered
            closed = await self._bounded(self.music_worker.call(self.commands.music.close), deadline - time.monotonic(),
                                         "closing the preference store")
            if closed:
                log.info("preference store closed")
        # 3. The workers: queued jobs dropped; one still running (a decode) is abandoned.
        workers = [w for w in (self.asr, self.final_pass_worker, self.music_worker, self.voices_worker) if w is not None]
        wait_s = max(0.0, min(WORKER_STOP_S, deadline - time.monotonic()))
        done = await asyncio.gather(*(w.stop(wait_s) for w in workers))
        self.abandoned = [w.name for w, ok in zip(workers, done) if not ok]

    @staticmethod
    async def _bounded(aw, timeout_s: float, what: str) -> bool:
        try:
            await asyncio.wait_for(aw, max(0.0, timeout_s))
            return True
        except TimeoutError:
            log.warning("%s took longer than the shutdown allows; going on", what)
        except Exception:  # noqa: BLE001 - a failure here must not stop the rest of the shutdown
            log.exception("%s failed", what)
        return False


def serve(daemon: Daemon) -> NoReturn:
    """Run `daemon` until SIGTERM/SIGINT (or its input ends), then end the process at once with its exit status.

    Once run() has returned, everything worth keeping is saved (the preference store closed, every
    client told); the logs are flushed and the process ends with os._exit, without Python's own teardown:
    unloading torch, faiss and the models takes about 2 s in C on a busy 2-core machine, and a worker
    thread still running a dropped job (a decode inside a C call) would be waited for.
    """
    code = asyncio.run(daemon.run())
    if daemon.abandoned:
        log.warning("exiting without waiting for the job in flight on: %s", ", ".join(daemon.abandoned))
    log.info("exiting (status %d)", code)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
