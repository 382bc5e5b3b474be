"""A private Music Player Daemon for tests and benchmarks: its own config, port, database and music folder.

    songs = make_music(tmp / "music")                  # short generated songs, tagged (sox + mutagen)
    with MpdServer(tmp / "mpd", tmp / "music") as mpd:  # mpd --no-daemon on a free port, database updated
        c = mpd.client()                                # python-mpd2 (sync), to check MPD's own status
        mpd.stop(); mpd.start()                         # a restart keeps the port, queue and state file

The audio output is MPD's "null" output (plays in real time, no sound card)
with a software mixer, so volume and elapsed time behave as on a real player.
Every mpd is started with Popen and reaped with wait() (PID 1 here does not reap).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class MusicSong:
    artist: str
    title: str
    album: str
    genre: str
    seconds: float
    tone_hz: int

    @property
    def file(self) -> str:
        """The song's path in MPD's music directory (= relative to the music folder)."""
        return f"{self.artist}/{self.title}.ogg"


SONGS = (
    MusicSong("Adele", "Rolling in the Deep", "21", "Pop", 20, 330),
    MusicSong("Adele", "Someone Like You", "21", "Pop", 20, 392),
    MusicSong("Ed Sheeran", "Shape of You", "Divide", "Pop", 20, 440),
    MusicSong("Queen", "Bohemian Rhapsody", "A Night at the Opera", "Rock", 20, 494),
)


def need_mpd() -> None:
    if shutil.which("mpd") is None or shutil.which("sox") is None:
        pytest.skip("mpd and sox are needed (scripts/setup.sh installs them)")


def make_song(folder: Path, song: MusicSong) -> Path:
    """A quiet tone of `song.seconds` in Ogg Vorbis with title, artist, album and genre tags."""
    from mutagen.oggvorbis import OggVorbis

    path = folder / song.file
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["sox", "-n", "-r", "22050", "-c", "1", str(path), "synth", str(song.seconds), "sine", str(song.tone_hz),
                    "vol", "0.2"], check=True, capture_output=True)
    tags = OggVorbis(path)
    tags.update({"title": song.title, "artist": song.artist, "album": song.album, "genre": song.genre})
    tags.save()
    return path


def make_music(folder: Path, songs=SONGS) -> list[MusicSong]:
    need_mpd()
    for song in songs:
        make_song(folder, song)
    return list(songs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MpdServer:
    def __init__(self, root: Path, music: Path, password: str = "", port: int | None = None):
        need_mpd()
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "playlists").mkdir(exist_ok=True)
        self.music = Path(music)
        self.password = password
        self.port = port or free_port()
        self.conf = self.root / "mpd.conf"
        auth = (f'password "{password}@read,add,control,admin"\ndefault_permissions ""\n' if password else "")
        self.conf.write_text(f'''music_directory "{self.music}"
playlist_directory "{self.root / 'playlists'}"
db_file "{self.root / 'database'}"
state_file "{self.root / 'state'}"
log_file "{self.root / 'mpd.log'}"
bind_to_address "127.0.0.1"
port "{self.port}"
auto_update "no"
zeroconf_enabled "no"
{auth}audio_output {{
  type "null"
  name "test output"
  mixer_type "software"
}}
''', encoding="utf-8")
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 15.0) -> "MpdServer":
        with open(self.root / "stderr.log", "ab") as err:
            self.proc = subprocess.Popen(["mpd", "--no-daemon", "--stderr", str(self.conf)], stdout=err, stderr=err,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mpd exited with {self.proc.returncode}: {(self.root / 'stderr.log').read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(100).startswith(b"OK MPD"):
                        return self
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"mpd did not listen on {self.port}") from None
                time.sleep(0.05)

    def client(self):
        from mpd import MPDClient

        c = MPDClient()
        c.timeout = 5
        c.connect("127.0.0.1", self.port)
        if self.password:
            c.password(self.password)
        return c

    def update(self, timeout_s: float = 15.0) -> None:
        """Rescan the music folder and wait until MPD's database has it."""
        c = self.client()
        try:
            c.update()
            deadline = time.monotonic() + timeout_s
            while "updating_db" in c.status():
                if time.monotonic() > deadline:
                    raise RuntimeError("mpd database update did not finish")
                time.sleep(0.05)
        finally:
            c.disconnect()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> "MpdServer":
        self.start()
        self.update()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
