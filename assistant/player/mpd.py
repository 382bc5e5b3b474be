"""The MPD backend: the assistant's choices play on a Music Player Daemon (python-mpd2, asyncio).

    player = MpdPlayer(config.player, music_folders, publish=hub.publish, resolve=..., feedback=..., on_change=...)
    hub.listeners.append(player.on_event)      # reacts to the daemon's own events
    task = asyncio.create_task(player.run())   # connects, watches MPD, reconnects
    player.state()                             # for status.player
    await player.close()

What it does with the events every client sees (the web player's rules, on MPD):

    recommendations for play / next / similar   MPD's queue becomes the playable songs (music-folder
                                                songs, by their path in MPD's music directory) and the
                                                first one plays; "next" with nothing playable skips
                                                within MPD's queue
    intent pause, resume, stop, previous,       the same MPD command; volume moves by VOLUME_STEP
    volume_up, volume_down
    vad.start / vad.end                         MPD's volume ducks to [player] duck_volume while anyone
                                                speaks and is restored after (unless someone changed it
                                                meanwhile); a lost vad.end un-ducks after DUCK_MAX_S

and what it reports: a song the assistant queued that starts playing is `played`
feedback (so "more like this" and "like this song" know it); one that is left for
another song well before its end, by anything but the assistant itself (another MPD
client's "next"), is `skipped` (a spoken "next" is recorded by the recommender).

Everything is on the event loop and never awaited by the audio path: the hub
listener only schedules work. An unreachable MPD, a refused password or a lost
connection is `state()["error"]` (status) and retried every
`reconnect_interval_s`; a request meanwhile gets a `player` error event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from mpd.asyncio import MPDClient
from mpd.base import CommandError, MPDError

from assistant.config import PlayerConfig, resolve_path
from assistant.server import protocol as p

log = logging.getLogger(__name__)

AUTOPLAY_INTENTS = frozenset({"play", "next", "similar"})  # their recommendations start playing
CONTROL_INTENTS = frozenset({"pause", "resume", "stop", "previous", "volume_up", "volume_down"})
VOLUME_STEP = 10
DUCK_MAX_S = 30.0         # a lost vad.end never leaves the music ducked longer than this
END_MARGIN_S = 2.0        # a song left earlier than this before its end was skipped
OWN_CHANGE_S = 1.5        # song changes this soon after the assistant's own command are not skips
IDLE_SUBSYSTEMS = ("player", "mixer", "playlist")


class PlayerUnavailable(Exception):
    """MPD is not connected; the message says why."""


class MpdPlayer:
    def __init__(self, cfg: PlayerConfig, music_folders: Sequence[str | Path], *,
                 publish: Callable[[p.ServerEvent], None],
                 resolve: Callable[[list[str]], Awaitable[dict[str, Path | None]]],
                 feedback: Callable[[str, str, str], Awaitable[None]],  # (user, song id, protocol kind: "played" | "skip")
                 on_change: Callable[[], None] = lambda: None,
                 default_user: str = "default"):
        self.cfg = cfg
        self.roots = ([resolve_path(cfg.music_directory).resolve()] if cfg.music_directory
                      else [resolve_path(str(f)).resolve() for f in music_folders])
        self.has_music_folders = bool(music_folders)
        self.publish = publish
        self.resolve = resolve            # song ids -> their audio files (None: not playable)
        self.feedback = feedback          # (user, song_id, kind)
        self.on_change = on_change
        self.default_user = default_user
        self.where = cfg.host if cfg.host.startswith(("/", "@")) else f"{cfg.host}:{cfg.port}"
        self.client: MPDClient | None = None
        self.error: str | None = f"connecting to MPD at {self.where}"
        # MPD's state, as of the last refresh
        self.mpd_state: str | None = None
        self.song: dict | None = None
        self.songid: str | None = None
        self.volume: int | None = None
        self.elapsed_s = 0.0
        self.duration_s = 0.0
        self.status_at = 0.0
        # the assistant's own bookkeeping
        self.ids_by_file: dict[str, str] = {}   # MPD file -> catalog song id, for songs the assistant queued
        self.list_user = default_user           # who asked for what is queued (gets the played/skipped feedback)
        self.latest: p.Recommendations | None = None  # the latest list not played (for "resume" on an empty MPD)
        self.reported_songid: str | None = None
        self.own_change_until = 0.0
        self.speaking: set[str] = set()
        self.duck_base: int | None = None       # the volume before ducking; None when not ducked
        self.ducked_to: int | None = None
        self.duck_timer: asyncio.TimerHandle | None = None
        self.t_duck_applied: float | None = None  # monotonic time of the last duck (benchmarks)
        self.t_playing: float | None = None       # monotonic time MPD last reported a song playing (benchmarks)
        self._actions: asyncio.Queue = asyncio.Queue()
        self._volume_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()
        self._closed = False
        self._no_mixer_logged = False
        self._last_logged: str | None = None

    # -- status ------------------------------------------------------------

    def state(self) -> dict:
        return {"backend": "mpd", "connected": self.client is not None, "error": self.error,
                "state": self.mpd_state, "song": self.song, "ducked": self.duck_base is not None}

    def _problem(self, message: str, utterance: str | None = None, source: str | None = None) -> None:
        log.warning("player: %s", message)
        self.publish(p.ErrorEvent(code=p.E_PLAYER, message=message, utterance=utterance, source=source))

    # -- events (hub listener: schedules, never waits) ------------------------

    def on_event(self, event: p.ServerEvent) -> None:
        if isinstance(event, p.VadStart):
            self.speaking.add(event.utterance)
            if self.duck_timer is not None:
                self.duck_timer.cancel()
            self.duck_timer = asyncio.get_running_loop().call_later(DUCK_MAX_S, self._duck_expired)
            self._spawn(self._apply_volume())
        elif isinstance(event, p.VadEnd):
            self.speaking.discard(event.utterance)
            if not self.speaking and self.duck_timer is not None:
                self.duck_timer.cancel()
                self.duck_timer = None
            self._spawn(self._apply_volume())
        elif isinstance(event, p.Recommendations):
            if event.intent in AUTOPLAY_INTENTS:
                self._actions.put_nowait((self._play_list, event))
            elif event.items:
                self.latest = event
        elif isinstance(event, p.IntentEvent) and event.name in CONTROL_INTENTS:
            self._actions.put_nowait((self._control, event))

    def _duck_expired(self) -> None:
        self.duck_timer = None
        self.speaking.clear()
        self._spawn(self._apply_volume())

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- lifecycle -----------------------------------------------------------

    async def run(self) -> None:
        """Connect, follow MPD's changes, reconnect when it goes away; runs the action queue beside."""
        actions = asyncio.create_task(self._run_actions(), name="mpd-actions")
        try:
            while not self._closed:
                client = MPDClient()
                try:
                    await self._connect(client)
                    async for _changed in client.idle(IDLE_SUBSYSTEMS):
                        await self._refresh()
                    raise ConnectionError("MPD closed the connection")
                except (MPDError, OSError, TimeoutError, PlayerUnavailable) as exc:
                    self._lost(client, exc)
                await asyncio.sleep(self.cfg.reconnect_interval_s)
        finally:
            actions.cancel()

    async def _connect(self, client: MPDClient) -> None:
        try:
            async with asyncio.timeout(self.cfg.timeout_s):
                await client.connect(self.cfg.host, self.cfg.port)
        except TimeoutError:
            raise PlayerUnavailable(f"no answer within {self.cfg.timeout_s:g} s") from None
        try:
            async with asyncio.timeout(self.cfg.timeout_s):
                if self.cfg.password:
                    await client.password(self.cfg.password)
                await client.status()
        except CommandError as exc:
            hint = "check [player] password" if self.cfg.password else "MPD wants a password: set [player] password"
            raise PlayerUnavailable(f"MPD refused us ({_mpd_message(exc)}); {hint}") from None
        was_error = self.error
        self.client = client
        self.error = None
        await self._refresh()
        log.info("player: connected to MPD %s at %s%s", client.mpd_version, self.where,
                 f" (after: {was_error})" if was_error and not was_error.startswith("connecting") else "")
        self.on_change()
        if self.speaking or self.duck_base is not None:
            self._spawn(self._apply_volume())

    def _lost(self, client: MPDClient, exc: BaseException) -> None:
        with contextlib.suppress(Exception):
            client.disconnect()
        connected = self.client is not None
        self.client = None
        reason = str(exc) if isinstance(exc, PlayerUnavailable) else _describe(exc)
        self.error = f"MPD at {self.where}: {reason}; retrying every {self.cfg.reconnect_interval_s:g} s"
        if connected:
            log.warning("player: lost MPD: %s", self.error)
        elif self._last_logged != self.error:
            log.warning("player: %s", self.error)
        self._last_logged = self.error
        self.mpd_state = None
        self.on_change()

    async def close(self) -> None:
        """Un-duck (best effort), stop the connection."""
        self._closed = True
        if self.duck_timer is not None:
            self.duck_timer.cancel()
        self.speaking.clear()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.cfg.timeout_s):
                await self._apply_volume()
        for task in list(self._tasks):
            task.cancel()
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.disconnect()
            self.client = None

    # -- MPD calls -------------------------------------------------------------

    async def _call(self, command: str, *args):
        client = self.client
        if client is None:
            raise PlayerUnavailable(self.error or f"MPD at {self.where} is not connected")
        try:
            async with asyncio.timeout(self.cfg.timeout_s):
                return await getattr(client, command)(*args)
        except TimeoutError:
            with contextlib.suppress(Exception):
                client.disconnect()  # the watcher sees the connection end and reconnects
            raise PlayerUnavailable(f"MPD at {self.where} did not answer '{command}' within {self.cfg.timeout_s:g} s") from None
        except MPDError as exc:
            if isinstance(exc, CommandError):
                raise
            raise PlayerUnavailable(f"MPD at {self.where}: {_describe(exc)}") from None

    async def _refresh(self) -> None:
        status = await self._call("status")
        current = await self._call("currentsong") if status.get("songid") else {}
        now = time.monotonic()
        songid, state = status.get("songid"), status.get("state")
        if songid != self.songid and self.song is not None and self.mpd_state == "play" and state == "play":
            self._maybe_skipped(now)
        self.mpd_state = state
        self.songid = songid
        volume = int(status.get("volume", -1))
        self.volume = volume if volume >= 0 else None
        self.elapsed_s = float(status.get("elapsed", 0) or 0)
        self.duration_s = float(status.get("duration", 0) or current.get("duration", 0) or 0)
        self.status_at = now
        if current:
            file = current.get("file", "")
            self.song = {"id": self.ids_by_file.get(file), "file": file,
                         "title": _tag(current, "title") or Path(file).stem, "artist": _tag(current, "artist")}
        else:
            self.song = None
        if state == "play" and songid and songid != self.reported_songid:
            self.reported_songid = songid
            self.t_playing = now
            if self.song and self.song["id"]:
                self._spawn(self._report(self.song["id"], "played"))
        self.on_change()

    def _maybe_skipped(self, now: float) -> None:
        """The playing song changed: a skip when it was far from its end and the assistant did not do it."""
        if now < self.own_change_until or not self.song.get("id") or not self.duration_s:
            return
        elapsed = self.elapsed_s + (now - self.status_at)
        if elapsed < self.duration_s - END_MARGIN_S:
            self._spawn(self._report(self.song["id"], "skip"))

    async def _report(self, song_id: str, kind: str) -> None:
        try:
            await self.feedback(self.list_user, song_id, kind)
        except Exception as exc:  # noqa: BLE001 - feedback is best effort; the music keeps playing
            log.warning("player: %s feedback for %s not recorded: %s", kind, song_id, getattr(exc, "message", exc))

    # -- actions (one at a time, in order) --------------------------------------

    async def _run_actions(self) -> None:
        while True:
            handler, event = await self._actions.get()
            try:
                await handler(event)
            except PlayerUnavailable as exc:
                what = event.name.replace("_", " ") if isinstance(event, p.IntentEvent) else "play the songs"
                self._problem(f"cannot {what}: {exc}", event.utterance, event.source)
            except CommandError as exc:
                self._problem(f"MPD refused: {_mpd_message(exc)}", event.utterance, event.source)
            except Exception:  # noqa: BLE001 - one failed action must not stop the player
                log.exception("player: action for %s failed", event.type)

    def _uri(self, path: Path) -> str | None:
        """A song file -> its path in MPD's music directory."""
        path = Path(path)
        for root in self.roots:
            if path.is_relative_to(root):
                return path.relative_to(root).as_posix()
        return None

    async def _play_list(self, event: p.Recommendations) -> None:
        playable = [item for item in event.items if item.get("playable")]
        if not playable and not self.has_music_folders and event.intent == "play":
            self._problem("nothing to play: no song has a file MPD can play; set [recommend] music_folders to the "
                          "folder MPD plays from", event.utterance, event.source)
            return
        if not playable:
            if event.intent == "next" and self.client is not None:
                status = await self._call("status")
                if status.get("nextsongid"):
                    self.own_change_until = time.monotonic() + OWN_CHANGE_S
                    await self._call("next")  # nothing new to play: go on in MPD's queue
            return
        if self.client is None:
            raise PlayerUnavailable(self.error)
        paths = await self.resolve([item["id"] for item in playable])
        problems, queued = [], 0
        self.own_change_until = time.monotonic() + OWN_CHANGE_S
        await self._call("clear")
        for item in playable:
            path = paths.get(item["id"])
            uri = self._uri(path) if path else None
            if uri is None:
                problems.append(f"“{item['title']}” ({path or 'no file'} is not under "
                                f"{'[player] music_directory' if self.cfg.music_directory else 'a [recommend] music folder'})")
                continue
            try:
                mpd_id = await self._call("addid", uri)
            except CommandError as exc:
                problems.append(f"“{item['title']}” ('{uri}': {_mpd_message(exc)})")
                continue
            self.ids_by_file[uri] = item["id"]
            if queued == 0:
                self.list_user = event.user or self.default_user
                self.own_change_until = time.monotonic() + OWN_CHANGE_S
                await self._call("playid", mpd_id)
            queued += 1
        if problems:
            self._problem(f"MPD cannot play {len(problems)} of {len(playable)} songs: {'; '.join(problems[:5])}"
                          f"{' …' if len(problems) > 5 else ''}. Update MPD's database (mpc update) or check "
                          f"that MPD's music_directory holds the music folder ([player] music_directory)",
                          event.utterance, event.source)
        if queued:
            self.latest = None

    async def _control(self, event: p.IntentEvent) -> None:
        name = event.name
        if name in ("volume_up", "volume_down"):
            await self._change_volume(VOLUME_STEP if name == "volume_up" else -VOLUME_STEP)
        elif name == "pause":
            await self._call("pause", 1)
        elif name == "stop":
            await self._call("stop")
        elif name == "previous":
            self.own_change_until = time.monotonic() + OWN_CHANGE_S
            await self._call("previous")
        elif name == "resume":
            status = await self._call("status")  # fresh: the last idle refresh may not have seen a change just made
            state, queued = status.get("state"), int(status.get("playlistlength", 0))
            if state == "pause":
                await self._call("pause", 0)
            elif state == "stop" and queued:
                await self._call("play")
            elif self.latest is not None:
                await self._play_list(p.Recommendations(utterance=event.utterance, intent="play", items=self.latest.items,
                                                        source=event.source, user=self.latest.user))
            elif state != "play":
                self._problem("nothing to play yet: ask for some music first", event.utterance, event.source)

    # -- volume ----------------------------------------------------------------

    async def _change_volume(self, delta: int) -> None:
        async with self._volume_lock:
            base = self.duck_base if self.duck_base is not None else self.volume
            if base is None:
                raise PlayerUnavailable("MPD reports no volume (its audio output has no mixer)")
            new = max(0, min(100, base + delta))
            if self.duck_base is not None:
                self.duck_base = new  # applied when the ducking ends
            else:
                await self._call("setvol", new)
                self.volume = new

    async def _apply_volume(self) -> None:
        """Bring MPD's volume in line with whether anyone speaks (level-triggered, so calls may pile up safely)."""
        async with self._volume_lock:
            if self.client is None:
                return
            try:
                if self.speaking and self.duck_base is None and self.mpd_state == "play":
                    if self.volume is None:
                        if not self._no_mixer_logged:
                            self._no_mixer_logged = True
                            log.warning("player: MPD reports no volume (no mixer); ducking is off")
                        return
                    target = min(self.volume, self.cfg.duck_volume)
                    self.duck_base, self.ducked_to = self.volume, target
                    if target != self.volume:
                        await self._call("setvol", target)
                        self.volume = target
                    self.t_duck_applied = time.monotonic()
                    self.on_change()
                elif not self.speaking and self.duck_base is not None:
                    base, to = self.duck_base, self.ducked_to
                    self.duck_base = self.ducked_to = None
                    if self.volume == to and base != to:  # nobody moved it meanwhile
                        await self._call("setvol", base)
                        self.volume = base
                    self.on_change()
            except (PlayerUnavailable, CommandError) as exc:
                log.warning("player: volume not changed: %s", exc)


def _tag(song: dict, key: str) -> str | None:
    value = song.get(key)
    if isinstance(value, list):  # MPD repeats a tag with several values
        value = value[0]
    return value or None


def _mpd_message(exc: CommandError) -> str:
    """'[50@0] {addid} No such song' -> 'No such song'."""
    text = str(exc)
    return text.split("} ", 1)[1] if "} " in text else text


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is MPD running? check [player] host and port)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
