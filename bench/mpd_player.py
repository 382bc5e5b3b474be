"""The MPD backend: final transcript -> MPD playing, and vad.start -> MPD's volume ducked.

    nice -n 5 .venv/bin/python bench/mpd_player.py [--rounds 4] [--model PATH]

A private `mpd` (tests/mpd_server.py: null audio output, software mixer)
plays a music folder of six generated, tagged 60 s songs named after hits of
the default catalog. `assistant serve --input none` runs with `[player]
backend = "mpd"`, the shipped model and that folder as the whole catalog
(`use_default_catalog = false`, the default embedding model, `exclude_recent
= 0` so songs played a minute ago may come back), so that every command the
recognizer turns into a "play" request has playable songs, however badly it
heard the names; ranking on the 3,162-song default catalog costs a
few milliseconds more (see the Recommender section).
One WebSocket client streams espeak-ng commands in real time as remote audio
("play shape of you by ed sheeran", ...), 3 s of room noise apart; the bench
watches MPD itself over a raw MPD connection (`idle player mixer`, re-armed
at once after each change) and the daemon's events, all timestamped on
arrival in this process:

    final -> playing   transcript.final of a "play ..." command -> MPD reports state
                       play with a new queue entry (a command after which MPD did not
                       change within 3 s is counted as a miss, with its transcript and
                       intent); split at the recommendations event into the recommender's
                       part and the player's (recommendations -> MPD playing)
    ducking            vad.start -> MPD reports volume == duck_volume (only for
                       utterances that began while MPD was playing)

Nothing here is asserted; the figures go to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from daemon_common import RATE, REPO, DaemonProcess, ensure_model, machine, percentile, speech_end_s

sys.path.insert(0, str(REPO / "tests"))
from mpd_server import MpdServer, MusicSong, make_song  # noqa: E402

SONGS = [MusicSong("Ed Sheeran", "Shape of You", "Divide", "Pop", 60, 440),
         MusicSong("Queen", "Bohemian Rhapsody", "A Night at the Opera", "Rock", 60, 330),
         MusicSong("Adele", "Rolling in the Deep", "21", "Pop", 60, 392),
         MusicSong("Michael Jackson", "Billie Jean", "Thriller", "Pop", 60, 262),
         MusicSong("The Weeknd", "Blinding Lights", "After Hours", "Pop", 60, 494),
         MusicSong("Luis Fonsi", "Despacito", "Vida", "Latin", 60, 294)]
COMMANDS = ["play shape of you by ed sheeran", "play bohemian rhapsody by queen", "play rolling in the deep by adele",
            "play billie jean by michael jackson", "play blinding lights by the weeknd", "play despacito by luis fonsi"]
VOICES = [("en-us", 150), ("en", 160), ("en-us+f3", 145), ("en-us+m3", 170)]
DUCK_VOLUME = 20
FRAME = RATE * 20 // 1000
MUSIC = Path(tempfile.gettempdir()) / "bench-mpd-music"  # fixed, so the catalog index is built once and cached


class MpdWatch:
    """A raw MPD connection in idle mode: (arrival time, status) after every player or mixer change."""

    def __init__(self, port: int):
        self.port = port
        self.log: list[tuple[float, dict]] = []
        self.task: asyncio.Task | None = None

    async def _status(self, reader, writer) -> dict:
        writer.write(b"status\n")
        await writer.drain()
        status = {}
        while (line := (await reader.readline()).decode().rstrip("\n")) != "OK":
            key, _, value = line.partition(": ")
            status[key] = value
        return status

    async def run(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        await reader.readline()  # OK MPD x.y.z
        self.log.append((time.monotonic(), await self._status(reader, writer)))
        try:
            while True:
                writer.write(b"idle player mixer\n")
                await writer.drain()
                while (await reader.readline()).decode().rstrip("\n") != "OK":
                    pass
                t = time.monotonic()
                self.log.append((t, await self._status(reader, writer)))
        finally:
            writer.close()

    def state_at(self, t: float) -> dict:
        last = {}
        for ts, status in self.log:
            if ts > t:
                break
            last = status
        return last


async def speak_all(url: str, clips: list, result: dict) -> None:
    from websockets.asyncio.client import connect

    rng = np.random.default_rng(1)
    noise = lambda n: (0.003 * rng.standard_normal(n)).astype(np.float32)  # noqa: E731
    parts = [noise(2 * RATE)]
    for text, audio in clips:
        parts += [audio + noise(len(audio)), noise(3 * RATE)]
    pcm = (np.clip(np.concatenate(parts), -1, 1) * 32767).astype("<i2").tobytes()
    events: list[tuple[float, dict]] = []
    async with connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "audio.start", "id": "s"}))

        async def reader():
            async for raw in ws:
                events.append((time.monotonic(), json.loads(raw)))

        task = asyncio.create_task(reader())
        t0 = time.monotonic()
        for k, i in enumerate(range(0, len(pcm) // 2, FRAME)):
            delay = t0 + k * FRAME / RATE - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await ws.send(pcm[2 * i:2 * (i + FRAME)])
        await ws.send(json.dumps({"type": "audio.end"}))
        await asyncio.sleep(3.0)
        task.cancel()
    result["events"] = events


def synthesize(tmp: Path, rounds: int) -> list[tuple[str, np.ndarray]]:
    import subprocess

    from assistant.audio.io import load_audio

    out = []
    for r in range(rounds):
        for i, text in enumerate(COMMANDS):
            voice, speed = VOICES[(r + i) % len(VOICES)]
            wav = tmp / f"cmd{r}_{i}.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), text], check=True, capture_output=True)
            audio = load_audio(wav)
            out.append((text, audio[: int(speech_end_s(audio) * RATE) + 1600]))
    return out


async def run(args) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-mpd-"))
    model, model_desc = ensure_model(tmp, args.model)
    for song in SONGS:
        if not (MUSIC / song.file).is_file():
            make_song(MUSIC, song)
    clips = synthesize(tmp, args.rounds)
    with MpdServer(tmp / "mpd", MUSIC) as mpd:
        d = DaemonProcess(tmp, model, dict(os.environ), ["--input", "none"],
                          f'[player]\nbackend = "mpd"\nport = {mpd.port}\nduck_volume = {DUCK_VOLUME}\n'
                          f'[recommend]\nuse_default_catalog = false\nmusic_folders = ["{MUSIC}"]\nexclude_recent = 0\n')
        try:
            await d.wait_ready(need_listening=False, timeout_s=900)
            watch = MpdWatch(mpd.port)
            watch.task = asyncio.create_task(watch.run())
            await asyncio.sleep(1.0)
            result: dict = {}
            await speak_all(d.url, clips, result)
            watch.task.cancel()
            return {"events": result["events"], "mpd": watch.log, "model": model_desc, "clips": clips}
        finally:
            d.stop()


def analyse(r: dict) -> dict:
    events, log = r["events"], r["mpd"]
    watch = MpdWatch(0)
    watch.log = log
    to_playing, recs_to_playing, misses, ducks, duck_misses = [], [], [], [], []
    finals = [(t, e) for t, e in events if e["type"] == "transcript.final"]
    for t, e in finals:
        before = watch.state_at(t)
        change = next(((ts, s) for ts, s in log if ts > t and s.get("state") == "play" and s.get("songid") != before.get("songid")), None)
        recs = next((ts for ts, r in events if r["type"] == "recommendations" and r.get("utterance") == e["utterance"]), None)
        intent = next((r["name"] for ts, r in events if r["type"] == "intent" and r.get("utterance") == e["utterance"]), "?")
        if change and change[0] - t < 3.0:
            to_playing.append(1000 * (change[0] - t))
            if recs is not None:
                recs_to_playing.append(1000 * (change[0] - recs))
        else:
            misses.append(f"{e['text']} ({intent})")
    for t, e in events:
        if e["type"] != "vad.start":
            continue
        before = watch.state_at(t)
        if before.get("state") != "play":
            continue
        if before.get("volume") == str(DUCK_VOLUME):
            continue  # still ducked from the utterance before
        duck = next((ts for ts, s in log if ts > t - 0.5 and s.get("volume") == str(DUCK_VOLUME)), None)
        if duck is not None and duck - t < 2.0:
            ducks.append(1000 * (duck - t))
        else:
            duck_misses.append(e["utterance"])
    return {"to_playing": to_playing, "recs_to_playing": recs_to_playing, "misses": misses, "ducks": ducks, "duck_misses": duck_misses, "finals": len(finals)}


def report(r: dict, a: dict, args) -> str:
    tp, dk = a["to_playing"], a["ducks"]
    fmt = lambda v: f"{len(v)} | {percentile(v, 50):.0f} | {percentile(v, 95):.0f} | {max(v) if v else float('nan'):.0f}"  # noqa: E731
    lines = [f"Machine: {machine()}, load average {os.getloadavg()[0]:.1f} at the end. Model: {r['model']}. "
             f"{len(r['clips'])} spoken \"play ...\" commands ({args.rounds} rounds of {len(COMMANDS)}), remote audio in real time.", "",
             "| from -> to | n | p50 ms | p95 ms | max ms |", "|---|---|---|---|---|",
             f"| transcript.final -> MPD playing the new song | {fmt(tp)} |",
             f"| of which recommendations -> MPD playing (the player) | {fmt(a['recs_to_playing'])} |",
             f"| vad.start -> MPD volume at duck_volume | {fmt(dk)} |", "",
             f"Finals: {a['finals']} of {len(r['clips'])} commands; MPD did not change song after {len(a['misses'])}"
             f"{': ' + '; '.join(repr(m) for m in a['misses'][:6]) if a['misses'] else ''}. "
             f"Ducking missed for {len(a['duck_misses'])} utterances that began while MPD played."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--model", default=None, help="recognizer checkpoint (default: the shipped model)")
    ap.add_argument("--dump", default=None, help="write the raw timestamped events and MPD states here (JSON)")
    args = ap.parse_args()
    r = asyncio.run(run(args))
    if args.dump:
        Path(args.dump).write_text(json.dumps({"events": r["events"], "mpd": r["mpd"]}))
    print(report(r, analyse(r), args))


if __name__ == "__main__":
    main()
