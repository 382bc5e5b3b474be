"""The MPD backend against a real, private `mpd` (tests/mpd_server.py), checked through MPD's own status.

The daemon runs in-process with the real recommender on a catalog of the
generated music folder only (model-free "hashing" embedder, so it loads in a
second) and the fake recognizer of test_server where speech is needed
(ducking). Typed queries drive it like spoken ones: the same command path.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from assistant.config import PlayerConfig, PreferencesConfig, RecommendConfig
from assistant.daemon import Daemon, DaemonOptions
from mpd_server import SONGS, MpdServer, MusicSong, make_music, make_song
from test_server import WAIT_S, FakeRecognizer, make_config, room, speak, speechlike

TIMEOUT_S = 240  # a whole test, on a loaded machine


def daemon_config(tmp_path, mpd: MpdServer, music, **player):
    cfg = make_config()
    return dataclasses.replace(
        cfg,
        recommend=RecommendConfig(use_default_catalog=False, music_folders=(str(music),), embed_model="hashing",
                                  cache_dir=str(tmp_path / "cache")),
        preferences=PreferencesConfig(db_path=str(tmp_path / "prefs.sqlite3")),
        player=PlayerConfig(backend="mpd", port=mpd.port, password=mpd.password, duck_volume=20,
                            reconnect_interval_s=0.2, timeout_s=2.0, **player))


@contextlib.asynccontextmanager
async def mpd_daemon(cfg, final: str = "what is playing"):
    d = Daemon(cfg, DaemonOptions(input="none"), recognizer_factory=lambda c: FakeRecognizer(final))
    task = asyncio.create_task(d.run())
    await asyncio.wait_for(asyncio.shield(d.ready.wait()), 120)
    d.url = f"ws://127.0.0.1:{d.server.port}/ws"
    try:
        yield d
    finally:
        d.stop()
        await asyncio.wait_for(task, 20)


class Client:
    """A WebSocket client that keeps every event, so tests can wait for conditions on what arrived."""

    def __init__(self, ws):
        self.ws = ws
        self.events: list[dict] = []
        self.status: dict = {}
        self.reader = asyncio.create_task(self._read())

    async def _read(self):
        with contextlib.suppress(ConnectionClosed):
            await self._read_all()

    async def _read_all(self):
        async for text in self.ws:
            msg = json.loads(text)
            if msg["type"] == "hello":
                msg = msg["snapshot"]["status"]
            if msg["type"] == "status":
                self.status = msg
            self.events.append(msg)

    async def query(self, text: str, rid: str) -> None:
        await self.ws.send(json.dumps({"type": "query", "id": rid, "text": text}))

    def errors(self) -> list[dict]:
        return [e for e in self.events if e["type"] == "error"]


async def until(check, what: str, timeout: float = WAIT_S):
    """Poll `check()` (sync) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def mpd_status(mpd: MpdServer) -> dict:
    c = mpd.client()
    try:
        return {**c.status(), "file": c.currentsong().get("file")}
    finally:
        c.disconnect()


def events_of(d: Daemon, kind: str) -> list[tuple[str, str]]:
    """(song title, kind) of the default user's preference events of `kind`, oldest first."""
    store = d.commands.music.service.store
    return [(e.title, e.kind) for e in reversed(store.events("default")) if e.kind == kind]


def test_play_controls_ducking_and_played_skipped_through_mpd(tmp_path):
    songs = make_music(tmp_path / "music")
    by_title = {s.title: s for s in songs}

    async def main():
        with MpdServer(tmp_path / "mpd", tmp_path / "music") as mpd:
            async with mpd_daemon(daemon_config(tmp_path, mpd, tmp_path / "music")) as d:
                async with connect(d.url) as ws:
                    c = Client(ws)
                    await until(lambda: c.status.get("player", {}).get("connected"), "the player to connect")

                    # "play ...": MPD's queue is the playable list and the named song plays
                    await c.query("play rolling in the deep by adele", "q1")
                    st = await until(lambda: (s := mpd_status(mpd))["state"] == "play" and s["playlistlength"] == str(len(songs)) and s,
                                     "MPD to play the whole list")
                    assert st["file"] == by_title["Rolling in the Deep"].file
                    await until(lambda: ("Rolling in the Deep", "played") in events_of(d, "played"), "played feedback")
                    song = (await until(lambda: (c.status["player"].get("song") or {}).get("id") and c.status["player"]["song"],
                                        "status.player.song"))
                    assert song["title"] == "Rolling in the Deep" and song["artist"] == "Adele"
                    assert c.status["player"]["state"] == "play" and not c.status["player"]["error"]

                    # player controls act on MPD
                    for text, check in (("pause", lambda s: s["state"] == "pause"),
                                        ("resume", lambda s: s["state"] == "play"),
                                        ("turn the volume down", lambda s: s["volume"] == "90"),
                                        ("turn it up", lambda s: s["volume"] == "100")):
                        await c.query(text, text)
                        await until(lambda: check(mpd_status(mpd)), f"MPD after {text!r}")

                    # "more like this" knows what MPD plays; "like this song" is recorded for it
                    await c.query("i like this song", "like")
                    await until(lambda: ("Rolling in the Deep", "liked") in events_of(d, "liked"), "liked feedback")

                    # ducking while someone speaks (remote audio through the pipeline), restored after
                    volumes = []
                    watcher = asyncio.create_task(watch_volume(mpd, volumes))
                    await ws.send(json.dumps({"type": "audio.start", "id": "mic"}))
                    await until(lambda: any(e["type"] == "ack" and e.get("request") == "mic" for e in c.events), "audio.start ack")
                    await speak(ws, __import__("numpy").concatenate([room(300), speechlike(1500) + room(1500, 1), room(800, 2)]))
                    await ws.send(json.dumps({"type": "audio.end"}))
                    await until(lambda: any(e["type"] == "vad.end" for e in c.events), "vad.end")
                    await until(lambda: mpd_status(mpd)["volume"] == "100", "the volume restored")
                    watcher.cancel()
                    assert "20" in volumes, volumes
                    assert volumes[0] == "100" and volumes[-1] == "100"

                    # another MPD client skips: noticed as a skip of the song that played, the next one as played
                    playing = mpd_status(mpd)["file"]
                    other = mpd.client()
                    other.next()
                    other.disconnect()
                    skipped_title = next(s.title for s in songs if s.file == playing)
                    await until(lambda: (skipped_title, "skipped") in events_of(d, "skipped"), "skipped feedback")
                    now = mpd_status(mpd)["file"]
                    now_title = next(s.title for s in songs if s.file == now)
                    await until(lambda: (now_title, "played") in events_of(d, "played"), "played feedback for the next song")

                    # a spoken/typed "next" plays another song (recorded as skipped by the recommender)
                    await c.query("next song", "next")
                    await until(lambda: mpd_status(mpd)["file"] != now, "another song")
                    assert (now_title, "skipped") in events_of(d, "skipped")

                    await c.query("stop", "stop")
                    await until(lambda: mpd_status(mpd)["state"] == "stop", "MPD stopped")
                    assert not c.errors(), c.errors()

    asyncio.run(asyncio.wait_for(main(), TIMEOUT_S))


async def watch_volume(mpd: MpdServer, out: list) -> None:
    """MPD's volume as its own idle notifications report it (every change, none missed)."""
    from mpd.asyncio import MPDClient

    c = MPDClient()
    await c.connect("127.0.0.1", mpd.port)
    try:
        out.append((await c.status())["volume"])
        async for _ in c.idle(["mixer"]):
            out.append((await c.status())["volume"])
    finally:
        c.disconnect()


def test_mpd_restarted_mid_song_is_reported_retried_and_played_again(tmp_path):
    make_music(tmp_path / "music")

    async def main():
        mpd = MpdServer(tmp_path / "mpd", tmp_path / "music")
        with mpd:
            async with mpd_daemon(daemon_config(tmp_path, mpd, tmp_path / "music")) as d:
                async with connect(d.url) as ws:
                    c = Client(ws)
                    await until(lambda: c.status.get("player", {}).get("connected"), "the player to connect")
                    await c.query("play someone like you", "q1")
                    await until(lambda: mpd_status(mpd)["state"] == "play", "MPD to play")
                    mpd.stop()
                    down = await until(lambda: c.status["player"]["connected"] is False and c.status["player"], "the loss reported")
                    assert "retrying every 0.2 s" in down["error"] and d.health()["status"] == "ok"
                    await c.query("play shape of you", "q2")
                    error = await until(lambda: next((e for e in c.errors() if e["code"] == "player"), None), "a player error")
                    assert "cannot play" in error["message"] and "MPD at 127.0.0.1" in error["message"]
                    mpd.start()
                    await until(lambda: c.status["player"]["connected"] and not c.status["player"]["error"], "the player to reconnect")
                    await c.query("play shape of you", "q3")
                    await until(lambda: (s := mpd_status(mpd))["state"] == "play" and s["file"] == "Ed Sheeran/Shape of You.ogg",
                                "MPD to play after the restart")

    asyncio.run(asyncio.wait_for(main(), TIMEOUT_S))


def test_wrong_password_and_no_mpd_are_reported_and_nothing_crashes(tmp_path):
    make_music(tmp_path / "music")

    async def main():
        with MpdServer(tmp_path / "mpd", tmp_path / "music", password="right-password") as mpd:
            cfg = daemon_config(tmp_path, mpd, tmp_path / "music")
            cfg = dataclasses.replace(cfg, player=dataclasses.replace(cfg.player, password="wrong-password"))
            async with mpd_daemon(cfg) as d:
                async with connect(d.url) as ws:
                    c = Client(ws)
                    st = await until(lambda: (c.status.get("player") or {}).get("error", "").find("refused") >= 0 and c.status["player"],
                                     "the refusal reported")
                    assert "incorrect password" in st["error"] and "[player] password" in st["error"] and not st["connected"]
                    await c.query("play someone like you", "q1")
                    error = await until(lambda: next((e for e in c.errors() if e["code"] == "player"), None), "a player error")
                    assert "incorrect password" in error["message"]
                    # the rest of the daemon is unaffected: the request got its recommendations
                    assert any(e["type"] == "recommendations" for e in c.events)
            cfg = dataclasses.replace(cfg, player=dataclasses.replace(cfg.player, password=""))
            async with mpd_daemon(cfg) as d:
                async with connect(d.url) as ws:
                    c = Client(ws)
                    st = await until(lambda: "password" in ((c.status.get("player") or {}).get("error") or "") and c.status["player"],
                                     "the missing password reported")
                    assert "MPD wants a password" in st["error"]
        free = MpdServer(tmp_path / "none", tmp_path / "music")  # never started: nothing listens on its port
        async with mpd_daemon(daemon_config(tmp_path, free, tmp_path / "music")) as d:
            async with connect(d.url) as ws:
                c = Client(ws)
                st = await until(lambda: "connection refused" in ((c.status.get("player") or {}).get("error") or "") and c.status["player"],
                                 "the refused connection reported")
                assert "is MPD running" in st["error"]

    asyncio.run(asyncio.wait_for(main(), TIMEOUT_S))


def test_song_missing_from_mpds_database_is_named_and_the_rest_plays(tmp_path):
    make_music(tmp_path / "music")

    async def main():
        with MpdServer(tmp_path / "mpd", tmp_path / "music") as mpd:
            # a song added to the music folder after MPD's last database update: the catalog has it, MPD does not
            make_song(tmp_path / "music", MusicSong("Adele", "Hello", "25", "Pop", 5, 262))
            async with mpd_daemon(daemon_config(tmp_path, mpd, tmp_path / "music")) as d:
                async with connect(d.url) as ws:
                    c = Client(ws)
                    await until(lambda: c.status.get("player", {}).get("connected"), "the player to connect")
                    await c.query("play hello by adele", "q1")
                    error = await until(lambda: next((e for e in c.errors() if e["code"] == "player"), None), "a player error")
                    st = await until(lambda: (s := mpd_status(mpd))["state"] == "play" and s["playlistlength"] == str(len(SONGS)) and s,
                                     "MPD to play the others")
        assert "“Hello”" in error["message"] and "Adele/Hello.ogg" in error["message"] and "mpc update" in error["message"]
        assert error["utterance"] == "q1" and st["file"] != "Adele/Hello.ogg"

    asyncio.run(asyncio.wait_for(main(), TIMEOUT_S))


def test_player_without_music_folders_says_what_to_set_and_maps_paths(tmp_path):
    from assistant.player.mpd import MpdPlayer, _mpd_message
    from assistant.server import protocol as p

    async def main():
        published = []

        async def resolve(ids):
            return {}

        async def feedback(user, song_id, kind):
            return None

        player = MpdPlayer(PlayerConfig(backend="mpd"), (), publish=published.append, resolve=resolve, feedback=feedback)
        actions = asyncio.create_task(player._run_actions())
        player.on_event(p.Recommendations(utterance="q1", intent="play", items=[{"id": "s1", "title": "X", "playable": False}]))
        await until(lambda: published, "an error event")
        actions.cancel()
        return published[0], MpdPlayer(PlayerConfig(backend="mpd", music_directory=str(tmp_path)), (), publish=published.append,
                                       resolve=resolve, feedback=feedback)

    error, rooted = asyncio.run(main())
    assert error.code == "player" and "[recommend] music_folders" in error.message and error.utterance == "q1"
    assert rooted._uri(tmp_path / "Adele" / "Hello.ogg") == "Adele/Hello.ogg"
    assert rooted._uri(tmp_path.parent / "elsewhere.ogg") is None
    from mpd.base import CommandError

    assert _mpd_message(CommandError("[50@0] {addid} No such song")) == "No such song"
