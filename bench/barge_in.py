"""Commands while the music plays: the VAD, echo cancellation and the daemon with music in the room.

The room is simulated at the microphone: what the speakers play (real music
from Debian game-music packages, optionally with "vocals": real read speech of
LibriSpeech training speakers mixed under it at 0 dB) reaches the microphone
through a playback delay and a room impulse response; a spoken command (the
synthetic voices of bench/spoken_audio.py) is added at a speech-to-music ratio
measured at the microphone (the speech's active power over the echo's mean
power). The reference is the music exactly as played.

Two parts:

- `vad` (no daemon, seconds per condition): each VAD engine on the microphone
  signal and on the echo-cancelled signal (assistant/audio/echo.py): commands
  found, start/end error against the known speech span, ducking delay (stream
  time of SpeechStarted after the speech onset), and utterances started per 10
  minutes of music alone, with and without vocals.
- `daemon`: starts `assistant serve --input none` (like bench/spoken_e2e.py)
  and streams each clip as remote audio, as a stereo stream with the reference
  channel (echo cancelled in the daemon) or as the microphone alone (no
  reference): commands right end to end (bench/spoken_score.py: the named song
  first, or the artist, or the "like" name), and music alone streamed for a
  few minutes: utterances, accepted finals and commands.

    .venv/bin/python bench/barge_in.py vad --voices train --music tune      # tuning set (training voices, other tracks)
    .venv/bin/python bench/barge_in.py vad                                  # held-out voices and tracks
    .venv/bin/python bench/barge_in.py daemon --engine silero              # end to end, held-out
    .venv/bin/python bench/barge_in.py report                              # the RESULTS.md section from the saved runs

Music (decoded once to 16 kHz under runs/barge_in/music, never committed):
held-out figures use hyperrogue-music (CC BY-SA 3.0: Shawn Parrotte, Lincoln
Domina, Will Savino), tuning uses singularity-music (CC BY-SA 3.0, Max
McCracken). `apt-get install hyperrogue-music singularity-music`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from spoken_audio import RATE_HZ, ClipMaker, VoiceSetting, active_power, voice_settings  # noqa: E402
from spoken_commands import Command, load_catalog, make_commands  # noqa: E402

MUSIC_DIRS = {"heldout": Path("/usr/share/hyperrogue/music"), "tune": Path("/usr/share/games/singularity/music")}
MUSIC_PACKAGES = {"heldout": "hyperrogue-music", "tune": "singularity-music"}
LIBRISPEECH = REPO.parent / "shared" / "data" / "speech" / "librispeech-train-clean-100-sample"
DEFAULT_CATALOG = REPO / "index" / "default_catalog.csv"
OUT_DIR = REPO / "runs" / "barge_in"
MUSIC_CACHE = OUT_DIR / "music"
SPEECH_CACHE = REPO / "runs" / "spoken_cache"
RESULTS_MD = REPO / "bench" / "RESULTS.md"
SECTION = "## Commands while music plays"

HELDOUT_SEED, TUNE_SEED = 19, 1919
SNRS_DB = (10.0, 0.0, -5.0)
ECHO_DELAY_MS = 30            # playback buffer + speaker-to-microphone distance
ECHO_RT60_S = 0.3             # a living room
VOCALS_DB = 0.0               # vocals' active power over the accompaniment's mean power
LEAD_S, TRAIL_S = 4.0, 1.0    # music alone before the command (the canceller adapts, the VAD settles) and after it
TAIL_S = 2.5                  # more music streamed while an utterance is still open
MUSIC_ALONE_S = 600           # the VAD part's music alone, per condition (10 minutes)
FRAME_MS = 20
ALONE_RMS = 0.1               # music alone at the microphone: -20 dBFS


# --------------------------------------------------------------------------- material

def music_tracks(kind: str) -> list[Path]:
    d = MUSIC_DIRS[kind]
    tracks = sorted(d.glob("*.ogg")) if d.is_dir() else []
    if not tracks:
        raise SystemExit(f"error: no music in {d}: apt-get install {MUSIC_PACKAGES[kind]}")
    return tracks


def load_music(kind: str) -> np.ndarray:
    """Every track of the set, decoded to 16 kHz mono, loudness-normalized, one after another (cached)."""
    from assistant.training.augment import load_audio_16k

    MUSIC_CACHE.mkdir(parents=True, exist_ok=True)
    parts = []
    for path in music_tracks(kind):
        cache = MUSIC_CACHE / (hashlib.sha1(str(path).encode()).hexdigest()[:16] + ".npy")
        if cache.is_file():
            x = np.load(cache)
        else:
            x = load_audio_16k(path)
            x = (x * (0.1 / max(np.sqrt(np.mean(x.astype(np.float64) ** 2)), 1e-6))).astype(np.float32)
            np.save(cache, x)
        parts.append(x)
    return np.concatenate(parts)


def load_vocals(seconds: float, seed: int) -> np.ndarray:
    """Real read speech (LibriSpeech train-clean-100 sample, training speakers) back to back, `seconds` long."""
    from assistant.training.augment import load_audio_16k

    files = sorted(LIBRISPEECH.rglob("*.flac"))
    if not files:
        raise SystemExit(f"error: no LibriSpeech sample under {LIBRISPEECH} (vocals are made from it)")
    rng = np.random.default_rng(seed)
    out, n = [], 0
    for i in rng.permutation(len(files)):
        x = load_audio_16k(files[i])
        out.append(x)
        n += len(x)
        if n >= seconds * RATE_HZ:
            break
    return np.concatenate(out)[: int(seconds * RATE_HZ)]


def with_vocals(music: np.ndarray, vocals: np.ndarray) -> np.ndarray:
    v = np.resize(vocals, len(music))
    g = np.sqrt(np.mean(music.astype(np.float64) ** 2) * 10 ** (VOCALS_DB / 10) / max(active_power(v), 1e-12))
    return (music + g * v).astype(np.float32)


@dataclass(frozen=True)
class EchoPath:
    rir: np.ndarray
    delay: int

    @classmethod
    def make(cls, seed: int) -> "EchoPath":
        from assistant.training.augment import impulse_response

        return cls(impulse_response(ECHO_RT60_S, np.random.default_rng(seed)).astype(np.float32),
                   RATE_HZ * ECHO_DELAY_MS // 1000)

    def __call__(self, played: np.ndarray) -> np.ndarray:
        from scipy.signal import fftconvolve

        y = fftconvolve(played, self.rir)[: len(played)]
        return np.concatenate([np.zeros(self.delay, np.float32), y[: len(played) - self.delay]]).astype(np.float32)


@dataclass(frozen=True)
class Scene:
    mic: np.ndarray         # what the microphone hears
    reference: np.ndarray   # what the speakers play
    onset_s: float          # the speech span in the scene
    offset_s: float


def make_scene(speech: np.ndarray, played: np.ndarray, echo: EchoPath, snr_db: float | None,
               lead_s: float = LEAD_S, trail_s: float = TRAIL_S) -> Scene:
    """`speech` after `lead_s` of music, `trail_s` after it; the echo of `played` (as long as the scene)
    scaled to `snr_db` of speech over echo at the microphone (None: no music)."""
    lead, trail = int(lead_s * RATE_HZ), int(trail_s * RATE_HZ)
    n = lead + len(speech) + trail
    placed = np.zeros(n, np.float32)
    placed[lead: lead + len(speech)] = speech
    played = played[:n].astype(np.float32)
    if snr_db is None:
        mic, played = placed, np.zeros(n, np.float32)
    else:
        e = echo(played)
        g = np.sqrt(active_power(speech) / max(float(np.mean(e.astype(np.float64) ** 2)) * 10 ** (snr_db / 10), 1e-12))
        mic, played = placed + g * e, played * np.float32(g)
    peak = max(float(np.max(np.abs(mic))), 1e-9)
    scale = np.float32(min(1.0, 0.95 / peak))
    return Scene(mic * scale, played * scale, lead / RATE_HZ, (lead + len(speech)) / RATE_HZ)


def music_alone(played: np.ndarray, echo: EchoPath) -> Scene:
    """Music and no speech: its echo at ALONE_RMS at the microphone (speech at about -20 dBFS is as loud)."""
    e = echo(played)
    g = np.float32(ALONE_RMS / max(float(np.sqrt(np.mean(e.astype(np.float64) ** 2))), 1e-9))
    return Scene(e * g, played * g, 0.0, 0.0)


def music_offset(seed: int, key: str, length: int, need: int) -> int:
    h = int(hashlib.sha1(f"{seed}/{key}".encode()).hexdigest()[:12], 16)
    return int(np.random.default_rng(h).integers(0, max(1, length - need)))


# --------------------------------------------------------------------------- the VAD part

def endpoints(engine: str, audio: np.ndarray, block: int = 480) -> list[dict]:
    """Utterances the Endpointer finds in `audio` (stream times in s): start, end, accepted, emitted_at (when
    SpeechStarted came out, i.e. when ducking could start). `engine`: "webrtc", "silero" or "silero:<threshold>"."""
    from assistant.audio.vad import Endpointer, SpeechEnded, SpeechStarted
    from assistant.config import VadConfig

    name, _, threshold = engine.partition(":")
    ep = Endpointer(VadConfig(engine=name, **({"silero_threshold": float(threshold)} if threshold else {})))
    out: list[dict] = []
    for i in range(0, len(audio), block):
        for ev in ep.push(audio[i:i + block]):
            if isinstance(ev, SpeechStarted):
                out.append({"start": ev.speech_start_ms / 1000, "emitted_at": ep.position_ms / 1000})
            elif isinstance(ev, SpeechEnded):
                out[-1].update(end=ev.speech_end_ms / 1000, accepted=ev.accepted, reason=ev.reason)
    for ev in ep.flush():
        if isinstance(ev, SpeechEnded):
            out[-1].update(end=ev.speech_end_ms / 1000, accepted=ev.accepted, reason=ev.reason)
    return out


def cancel(scene: Scene) -> np.ndarray:
    from assistant.audio.echo import EchoCanceller

    aec = EchoCanceller()
    out = [aec.process(scene.mic[i:i + 480], scene.reference[i:i + 480]) for i in range(0, len(scene.mic), 480)]
    return np.concatenate(out + [aec.flush()])


def vad_part(args) -> dict:
    voices = voice_settings(args.voices)
    seed = HELDOUT_SEED if args.voices == "heldout" else TUNE_SEED
    commands = make_commands(load_catalog(args.catalog), args.commands, seed, prefix="b")
    music = load_music(args.music)
    vocals_track = with_vocals(music, load_vocals(min(len(music) / RATE_HZ, 900), seed))
    echo = EchoPath.make(seed)
    maker = ClipMaker(SPEECH_CACHE, None, seed)
    engines = args.engine.split(",")
    rows: dict[str, dict] = {}
    t0 = time.monotonic()
    for snr in [*SNRS_DB, None]:
        for k, c in enumerate(commands):
            voice = voices[k % len(voices)]
            speech = maker.speech(voice, c.text)
            need = int((LEAD_S + TRAIL_S) * RATE_HZ) + len(speech)
            played = music[(o := music_offset(seed, c.id, len(music), need)): o + need]
            scene = make_scene(speech, played, echo, snr)
            for cond in ("mic", "cancelled") if snr is not None else ("mic",):
                audio = scene.mic if cond == "mic" else cancel(scene)
                for engine in engines:
                    found = endpoints(engine, audio)
                    key = f"{engine}|{cond}|{'clean' if snr is None else f'{snr:g}'}"
                    r = rows.setdefault(key, {"n": 0, "found": 0, "start_err": [], "end_err": [], "duck": [],
                                              "extra": 0, "split": 0})
                    r["n"] += 1
                    over = [u for u in found if u.get("end", 1e9) > scene.onset_s and u["start"] < scene.offset_s]
                    r["extra"] += len(found) - len(over)
                    if over:
                        r["found"] += 1
                        r["split"] += len(over) > 1
                        r["start_err"].append(over[0]["start"] - scene.onset_s)
                        r["end_err"].append(over[-1].get("end", len(audio) / RATE_HZ) - scene.offset_s)
                        r["duck"].append(over[0]["emitted_at"] - scene.onset_s)
        print(f"  commands at {snr} dB done ({time.monotonic() - t0:.0f} s)", flush=True)
    # music alone, with and without vocals, its echo at ALONE_RMS at the microphone
    alone: dict[str, dict] = {}
    n = min(len(music), int(args.music_alone_s * RATE_HZ))
    start = music_offset(seed, "alone", len(music), n)
    for label, track in (("music", music), ("music+vocals", vocals_track)):
        scene = music_alone(track[start:start + n], echo)
        for cond in ("mic", "cancelled"):
            t_aec = time.process_time()
            audio = scene.mic if cond == "mic" else cancel(scene)
            aec_pct = 100 * (time.process_time() - t_aec) / (len(audio) / RATE_HZ) if cond == "cancelled" else 0.0
            for engine in engines:
                t_vad = time.process_time()
                found = endpoints(engine, audio)
                vad_pct = 100 * (time.process_time() - t_vad) / (len(audio) / RATE_HZ)
                per10 = 600 / (len(audio) / RATE_HZ)
                alone[f"{engine}|{cond}|{label}"] = {"seconds": round(len(audio) / RATE_HZ), "started": len(found),
                                                     "vad_cpu_pct": round(vad_pct, 2), "aec_cpu_pct": round(aec_pct, 2),
                                                     "accepted": sum(u.get("accepted", False) for u in found),
                                                     "started_per_10min": round(len(found) * per10, 1),
                                                     "accepted_per_10min": round(sum(u.get("accepted", False) for u in found) * per10, 1)}
        print(f"  {label} alone done ({time.monotonic() - t0:.0f} s)", flush=True)
    return {"commands": rows, "alone": alone, "voices": [v.label for v in voices], "n_commands": len(commands)}


def summarize_vad(rows: dict) -> dict:
    from daemon_common import percentile

    out = {}
    for key, r in rows.items():
        s = {"n": r["n"], "found": r["found"], "extra": r["extra"], "split": r["split"]}
        for name in ("start_err", "end_err", "duck"):
            v = [x * 1000 for x in r[name]]
            s[name + "_ms"] = {"median": round(percentile(v, 50)), "p90": round(percentile(v, 90))} if v else None
        out[key] = s
    return out


# --------------------------------------------------------------------------- the daemon part

async def stream(conn, fmt: dict, pcm: bytes, main_frames: int, bytes_per_frame_20ms: int, speed: float,
                 timeout_s: float, k: int) -> tuple[str, dict]:
    """Stream `pcm` as one remote audio stream (the tail only while an utterance is open); (source, utterances)."""
    from spoken_e2e import _settled, _utterances

    ws = conn.ws
    await ws.send(json.dumps({"type": "audio.start", "id": f"a{k}", "format": fmt}))
    ack = await conn.wait_for(lambda e: e.get("type") in ("ack", "error") and e.get("request") == f"a{k}", 30)
    if ack is None or ack["type"] != "ack":
        raise RuntimeError(f"audio.start refused: {ack}")
    source = ack["source"]
    n_all = -(-len(pcm) // bytes_per_frame_20ms)
    t0 = time.monotonic()
    for i in range(n_all):
        if i >= main_frames:
            utts = _utterances(conn.of_source(source))
            if all("end" in u for u in utts.values()):
                break
        delay = t0 + i * FRAME_MS / 1000 / speed - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await ws.send(pcm[i * bytes_per_frame_20ms:(i + 1) * bytes_per_frame_20ms])
    await ws.send(json.dumps({"type": "audio.end", "id": f"e{k}"}))
    await conn.wait_for(lambda e: e.get("request") == f"e{k}", 30)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not _settled(_utterances(conn.of_source(source))):
        await conn.wait_for(lambda e: e.get("source") == source, deadline - time.monotonic(), since=len(conn.events))
    await ws.send(json.dumps({"type": "ping", "id": f"p{k}"}))
    await conn.wait_for(lambda e: e.get("type") == "pong" and e.get("request") == f"p{k}", 30)
    return source, _utterances(conn.of_source(source))


def pcm_of(scene_mic: np.ndarray, reference: np.ndarray | None) -> tuple[dict, bytes, int]:
    """(format, bytes, bytes per 20 ms): the microphone alone, or microphone + reference as 2 channels."""
    fmt = {"encoding": "pcm_s16le", "sample_rate_hz": RATE_HZ, "channels": 1}
    x = scene_mic[:, None]
    if reference is not None:
        fmt = {**fmt, "channels": 2, "echo_reference_channel": 1}
        x = np.stack([scene_mic, reference], axis=1)
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()
    return fmt, pcm, RATE_HZ * FRAME_MS // 1000 * 2 * x.shape[1]


async def daemon_part(args) -> dict:
    from spoken_e2e import _collect, _open
    from spoken_score import score

    from daemon_common import DaemonProcess, ensure_model

    voices = voice_settings(args.voices)
    seed = HELDOUT_SEED if args.voices == "heldout" else TUNE_SEED
    commands = make_commands(load_catalog(args.catalog), args.commands, seed, prefix="b")
    music = load_music(args.music)
    echo = EchoPath.make(seed)
    maker = ClipMaker(SPEECH_CACHE, None, seed)
    snrs = [None if s == "clean" else float(s) for s in args.snr.split(",")]
    records, alone = [], []
    with tempfile.TemporaryDirectory(prefix="barge-in-") as td:
        tmp = Path(td)
        model, model_name = ensure_model(tmp, args.model)
        daemon = DaemonProcess(tmp, model, {**os.environ, "PYTHONUNBUFFERED": "1"}, extra_args=["--input", "none"],
                               extra_config=f'[vad]\nengine = "{args.engine}"\n')
        conn = None
        try:
            await daemon.wait_ready(need_listening=False, timeout_s=600)
            conn = await _open(daemon.url)
            cpu0, t_run = daemon.cpu_s(), time.monotonic()
            k = 0
            for snr in snrs:
                for i, c in enumerate(commands):
                    voice = voices[i % len(voices)]
                    speech = maker.speech(voice, c.text)
                    need = int((LEAD_S + TRAIL_S + TAIL_S) * RATE_HZ) + len(speech)
                    played = music[(o := music_offset(seed, c.id, len(music), need)): o + need]
                    full = make_scene(speech, played, echo, snr, trail_s=TRAIL_S + TAIL_S)
                    main = int((LEAD_S + TRAIL_S) * RATE_HZ) + len(speech)
                    for cond in (("cancelled", "no_reference") if snr is not None else ("clean",)):
                        fmt, pcm, per = pcm_of(full.mic, full.reference if cond == "cancelled" else None)
                        source, utts = await stream(conn, fmt, pcm, -(-main // (per // (2 * fmt["channels"]))), per,
                                                    args.speed, args.timeout_s, k)
                        k += 1
                        got = _collect(utts, 0.0, False, 0.0)
                        o_ = score(c.to_dict(), got["transcript"], got["intent"], got["items"])
                        starts = [u["start"].get("speech_start_ms") for u in utts.values() if "start" in u]
                        records.append({"id": c.id, "text": c.text, "kind": c.kind, "voice": voice.label,
                                        "snr": "clean" if snr is None else f"{snr:g}", "cond": cond,
                                        "transcript": got["transcript"], "intent": got["intent"],
                                        "first": (got["items"] or [None])[0], "hit": o_.hit, "miss": o_.miss,
                                        "utterances": got["utterances"], "speech_start_ms": starts,
                                        "onset_ms": round(1000 * full.onset_s)})
                        r = records[-1]
                        print(f"[{k}] {'HIT ' if r['hit'] else 'miss'} {r['snr']:>5} {cond:<12} {voice.label:<26} "
                              f"{c.text!r} -> {r['transcript']!r}", flush=True)
            cmd_cpu = (daemon.cpu_s() - cpu0, time.monotonic() - t_run)
            # music alone through the daemon, with and without vocals, with and without the reference
            n = int(args.daemon_music_s * RATE_HZ)
            start = music_offset(seed, "daemon-alone", len(music), n)
            vocals = with_vocals(music[start:start + n], load_vocals(args.daemon_music_s, seed + 1))
            for label, played in (("music", music[start:start + n]), ("music+vocals", vocals)):
                scene = music_alone(played, echo)
                for cond in ("cancelled", "no_reference"):
                    fmt, pcm, per = pcm_of(scene.mic, scene.reference if cond == "cancelled" else None)
                    c0, t0 = daemon.cpu_s(), time.monotonic()
                    source, utts = await stream(conn, fmt, pcm, 10 ** 9, per, args.speed, args.timeout_s, k)
                    k += 1
                    finals = [u["final"]["text"] for u in utts.values() if "final" in u and u["final"].get("accepted")]
                    cmds = [u["intent"]["name"] for u in utts.values() if "intent" in u and u["intent"].get("name") != "none"]
                    alone.append({"music": label, "cond": cond, "seconds": args.daemon_music_s, "utterances": len(utts),
                                  "starts_s": sorted(u["start"]["speech_start_ms"] / 1000 for u in utts.values() if "start" in u),
                                  "accepted_finals": finals, "commands": cmds,
                                  "cpu_share": round((daemon.cpu_s() - c0) / (time.monotonic() - t0), 3)})
                    print(f"  {label} alone, {cond}: {len(utts)} utterances, finals {finals}, commands {cmds}", flush=True)
        finally:
            if conn is not None:
                conn.task.cancel()
                await conn.ws.close()
            daemon.stop()
    return {"records": records, "alone": alone, "model": model_name, "engine": args.engine,
            "voices": [v.label for v in voices], "speed": args.speed,
            "commands_cpu_s": round(cmd_cpu[0], 1), "commands_wall_s": round(cmd_cpu[1], 1)}


# --------------------------------------------------------------------------- PulseAudio's echo canceller

PULSE_EC_ARGS = "analog_gain_control=0 digital_gain_control=0 noise_suppression=0"


def _level_db(x: np.ndarray) -> float:
    return 10 * float(np.log10(np.mean(x.astype(np.float64) ** 2) + 1e-12))


def _ser(x: np.ndarray, music_only: slice, with_speech: slice) -> float:
    """Speech-to-echo ratio (dB) of a recording: the speech window's extra power over the music-only power."""
    p_music = float(np.mean(x[music_only].astype(np.float64) ** 2))
    p_all = float(np.mean(x[with_speech].astype(np.float64) ** 2))
    return 10 * float(np.log10(max(p_all - p_music, 1e-12) / max(p_music, 1e-12)))


def _speech_db(x: np.ndarray, music_only: slice, with_speech: slice) -> float:
    """The speech window's extra power over the music-only power, in dB."""
    extra = float(np.mean(x[with_speech].astype(np.float64) ** 2) - np.mean(x[music_only].astype(np.float64) ** 2))
    return 10 * float(np.log10(max(extra, 1e-12)))


def pulse_part(args) -> dict:
    """module-echo-cancel (webrtc) in a private PulseAudio against the in-process canceller, on the same sound.

    Null sink `speakers` plays the music (played into the canceller's sink, as an application would); a loopback
    carries it into the microphone's room (the tests' `vmic` sink) with 30 ms latency; a command is played into
    the room at `speech_at_s`. Recorded at once: the room (the raw microphone), the speakers (the reference) and
    the canceller's source. The in-process canceller then runs on the raw microphone and the reference, aligned
    by cross-correlation. The loopback is a pure delay (no room response)."""
    import subprocess

    sys.path.insert(0, str(REPO / "tests"))
    from pulse import VirtualMic, missing_tools

    from assistant.audio.echo import EchoCanceller

    if missing_tools():
        raise SystemExit(f"error: PulseAudio tools missing: {', '.join(missing_tools())}")
    seconds, speech_at_s = args.pulse_s, args.pulse_s / 2
    music = load_music(args.music)
    played = music[(o := music_offset(HELDOUT_SEED, "pulse", len(music), int(seconds * RATE_HZ))): o + int(seconds * RATE_HZ)]
    voices = voice_settings(args.voices)
    commands = make_commands(load_catalog(args.catalog), 1, HELDOUT_SEED, prefix="p")
    speech = ClipMaker(SPEECH_CACHE, None, HELDOUT_SEED).speech(voices[0], commands[0].text)
    speech = speech * np.float32(np.sqrt(np.mean(played ** 2) / active_power(speech)))  # about 0 dB against the music
    from spoken_audio import write_wav

    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="barge-pulse-") as td:
        tmp = Path(td)
        write_wav(tmp / "music.wav", played)
        write_wav(tmp / "speech.wav", speech)
        vm = VirtualMic(tmp / "pa").start()
        procs = []
        try:
            vm.pactl("load-module", "module-null-sink", "sink_name=speakers", "rate=16000", "channels=1", "format=s16le")
            vm.pactl("load-module", "module-loopback", "source=speakers.monitor", "sink=vmic", "latency_msec=30")
            vm.pactl("load-module", "module-echo-cancel", "source_master=vmic.monitor", "sink_master=speakers",
                     "aec_method=webrtc", "source_name=ec_source", "sink_name=ec_sink", "rate=16000", "channels=1",
                     f'aec_args="{PULSE_EC_ARGS}"')
            env = {**os.environ, **vm.env}
            rec = {}
            for name, dev in (("mic", "vmic.monitor"), ("reference", "speakers.monitor"), ("pulse_ec", "ec_source")):
                f = open(tmp / f"{name}.raw", "wb")
                procs.append(subprocess.Popen(["parec", f"--device={dev}", "--format=s16le", "--rate=16000", "--channels=1",
                                               "--latency-msec=20"], env=env, stdout=f, stderr=subprocess.DEVNULL))
                rec[name] = tmp / f"{name}.raw"
            cpu0 = _proc_cpu_s(vm.server.pid)
            t0 = time.monotonic()
            music_play = subprocess.Popen(["paplay", "--device=ec_sink", str(tmp / "music.wav")], env=env,
                                          stderr=subprocess.DEVNULL)
            time.sleep(speech_at_s)
            vm.play(tmp / "speech.wav")
            music_play.wait(timeout=seconds + 30)
            time.sleep(0.5)
            wall = time.monotonic() - t0
            out["pulseaudio_cpu_pct"] = round(100 * (_proc_cpu_s(vm.server.pid) - cpu0) / wall, 1)
        finally:
            for p in procs:
                p.terminate()
                p.wait()
            vm.stop()
        x = {k: np.frombuffer(v.read_bytes(), "<i2").astype(np.float32) / 32768 for k, v in rec.items()}
    n = min(len(v) for v in x.values())
    mic, ref, pec = x["mic"][:n], x["reference"][:n], x["pulse_ec"][:n]
    # align: the reference should lead the microphone by a little (the canceller's filter looks back, not ahead)
    from scipy.signal import fftconvolve

    def lag_in(a_s: float, b_s: float) -> int:
        win = slice(int(a_s * RATE_HZ), int(b_s * RATE_HZ))
        corr = fftconvolve(mic[win], ref[win][::-1])
        return int(np.argmax(np.abs(corr))) - (len(ref[win]) - 1)  # mic[t] ~ ref[t - lag]

    lag = lag_in(2.0, min(speech_at_s - 0.5, 7.0))
    lags_ms = [round(1000 * lag_in(a, a + 3.0) / RATE_HZ) for a in np.arange(2.0, speech_at_s - 3.0, 3.0)]
    shift = lag - RATE_HZ * 10 // 1000                          # keep 10 ms of lead
    ref_aligned = np.concatenate([np.zeros(shift, np.float32), ref[: n - shift]]) if shift > 0 else ref[-shift:].copy()
    ref_aligned = np.resize(ref_aligned, n)
    aec = EchoCanceller()
    t = time.process_time()
    ours = np.concatenate([aec.process(mic[i:i + 480], ref_aligned[i:i + 480]) for i in range(0, n, 480)] + [aec.flush()])[:n]
    ours_pct = 100 * (time.process_time() - t) / (n / RATE_HZ)
    # the speech's window in the recordings: where the raw microphone gets louder than the music around it
    s0 = int((speech_at_s - 0.0) * RATE_HZ)
    speech_win = slice(s0 + RATE_HZ // 2, s0 + len(speech) - RATE_HZ // 4)
    music_only = slice(int(max(3.0, speech_at_s - 5.0) * RATE_HZ), s0 - RATE_HZ // 2)
    for name, sig in (("pulse_webrtc", pec), ("in_process_speex", ours)):
        out[name] = {"erle_db": round(_level_db(mic[music_only]) - _level_db(sig[music_only]), 1),
                     "ser_in_db": round(_ser(mic, music_only, speech_win), 1),
                     "ser_out_db": round(_ser(sig, music_only, speech_win), 1),
                     "speech_gain_db": round(_speech_db(sig, music_only, speech_win) - _speech_db(mic, music_only, speech_win), 1)}
    out["in_process_speex"]["cpu_pct_one_core"] = round(ours_pct, 2)
    out.update(seconds=seconds, speech_at_s=speech_at_s, reference_lag_ms=round(1000 * lag / RATE_HZ), reference_lags_ms=lags_ms,
               voice=voices[0].label, text=commands[0].text)
    return out


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- report

def _ms(x: dict | None) -> str:
    return "-" if not x else f"{x['median']:+d} ({x['p90']:+d})"


def vad_tables(res: dict) -> list[str]:
    summ, alone = res["summary"], res["alone"]
    engines = sorted({k.split("|")[0] for k in summ}, key=lambda e: (e != "webrtc", e))
    levels = ["clean", "10", "0", "-5"]
    lines = ["| engine | signal | " + " | ".join(f"{lv if lv == 'clean' else lv + ' dB'}: found, start, end, ducking (ms)"
                                              for lv in levels) + " |",
             "|---|---|" + "---|" * len(levels)]
    for e in engines:
        for cond in ("mic", "cancelled"):
            cells = []
            for lv in levels:
                r = summ.get(f"{e}|{cond}|{lv}")
                cells.append("" if r is None else f"{r['found']}/{r['n']}, {_ms(r['start_err_ms'])}, {_ms(r['end_err_ms'])}, "
                             f"{_ms(r['duck_ms'])}")
            lines.append(f"| {e} | {'microphone' if cond == 'mic' else 'echo cancelled'} | " + " | ".join(cells) + " |")
    lines += ["", "| engine | signal | music: started / accepted per 10 min | music + vocals: started / accepted | "
              "VAD CPU, % of one core | canceller CPU |", "|---|---|---|---|---|---|"]
    for e in engines:
        for cond in ("mic", "cancelled"):
            m, v = alone.get(f"{e}|{cond}|music"), alone.get(f"{e}|{cond}|music+vocals")
            if not m:
                continue
            lines.append(f"| {e} | {'microphone' if cond == 'mic' else 'echo cancelled'} | {m['started_per_10min']:g} / "
                         f"{m['accepted_per_10min']:g} | {v['started_per_10min']:g} / {v['accepted_per_10min']:g} | "
                         f"{m.get('vad_cpu_pct', '?')} | {m.get('aec_cpu_pct', 0) or '-'} |")
    return lines


def daemon_table(runs: list[dict]) -> list[str]:
    lines = ["| VAD | clean | +10 dB cancelled | +10 dB no reference | 0 dB cancelled | 0 dB no reference | "
             "-5 dB cancelled | -5 dB no reference |", "|---|" + "---|" * 7]
    for res in runs:
        def cell(snr: str, cond: str) -> str:
            rs = [r for r in res["records"] if r["snr"] == snr and r["cond"] == cond]
            return f"{sum(r['hit'] for r in rs)}/{len(rs)} ({100 * sum(r['hit'] for r in rs) / max(1, len(rs)):.0f} %)" if rs else "-"
        lines.append(f"| {res['engine']} | {cell('clean', 'clean')} | " + " | ".join(
            cell(snr, cond) for snr in ("10", "0", "-5") for cond in ("cancelled", "no_reference")) + " |")
    lines += ["", "| VAD | music alone, 2 x 2 min | utterances | accepted finals | commands | daemon CPU, % of one core |",
              "|---|---|---|---|---|---|"]
    for res in runs:
        for a in res["alone"]:
            lines.append(f"| {res['engine']} | {a['music']}, {'echo cancelled' if a['cond'] == 'cancelled' else 'no reference'} "
                         f"| {a['utterances']} | {len(a['accepted_finals'])} | {len(a['commands'])} | {100 * a['cpu_share']:.1f} |")
    return lines


def targets(daemons: list[dict], vad: dict) -> list[str]:
    d = next((x for x in daemons if x["engine"] == "silero"), daemons[0])

    def right(snr: str, cond: str) -> tuple[int, int]:
        rs = [r for r in d["records"] if r["snr"] == snr and r["cond"] == cond]
        return sum(r["hit"] for r in rs), len(rs)

    def pct(hn: tuple[int, int]) -> str:
        return f"{100 * hn[0] / max(1, hn[1]):.0f} % ({hn[0]}/{hn[1]})"

    clean = right("clean", "clean")
    voc = vad["alone"].get("silero|cancelled|music+vocals", {})
    voc_mic = vad["alone"].get("silero|mic|music+vocals", {})
    alone = [a for a in d["alone"] if a["music"] == "music+vocals"]
    cpu = [vad["alone"].get(f"silero|cancelled|{m}", {}) for m in ("music", "music+vocals")]
    return [
        f"- Commands right with the echo cancelled, >= 90 % at 0 dB: {pct(right('0', 'cancelled'))}; >= 80 % at -5 dB: "
        f"{pct(right('-5', 'cancelled'))}" + (f" (the same commands in a quiet room: {pct(clean)})" if clean[1] else "") + ".",
        f"- Without a reference, >= 80 % at +10 dB: {pct(right('10', 'no_reference'))}.",
        f"- <= 1 false utterance per 10 minutes of music with vocals: {voc.get('started_per_10min', '?'):g} with the echo "
        f"cancelled ({voc_mic.get('started_per_10min', '?'):g} without a reference: sung or spoken, a voice is a voice); "
        "through the daemon: " + ", ".join(f"{a['utterances']} utterances in {a['seconds']:g} s "
                                             f"{'cancelled' if a['cond'] == 'cancelled' else 'without reference'}"
                                             for a in alone)
        + f"; commands from music alone: {sum(len(a['commands']) for a in d['alone'])}.",
        f"- CPU added while music plays (<= 10 % of one core): Silero {max(c.get('vad_cpu_pct', 0) for c in cpu):g} % "
        f"+ the canceller {max(c.get('aec_cpu_pct', 0) for c in cpu):g} % of one core (webrtcvad: "
        f"{vad['alone'].get('webrtc|mic|music', {}).get('vad_cpu_pct', '?')} %).",
    ]


def median_pulse(runs: list[dict]) -> dict | None:
    """Several `pulse` runs as one: each figure's median, the runs' loads and lags kept."""
    if not runs:
        return None
    from statistics import median

    out = dict(runs[-1])
    for side in ("pulse_webrtc", "in_process_speex"):
        out[side] = {k: round(median(r[side][k] for r in runs), 1) for k in runs[0][side]}
    out["pulseaudio_cpu_pct"] = round(median(r["pulseaudio_cpu_pct"] for r in runs), 1)
    out["load_avg"] = ", ".join(r["load_avg"] for r in runs)
    out["reference_lags_ms"] = [r.get("reference_lags_ms") for r in runs]
    out["runs"] = len(runs)
    return out


def report(paths: dict[str, Path]) -> str:
    """The bench/RESULTS.md section from the saved runs (any missing part is left out)."""
    load = lambda p: json.loads(p.read_text()) if p and p.is_file() else None  # noqa: E731
    vad, vad_t = load(paths.get("vad")), load(paths.get("vad_tune"))
    pulse = median_pulse([load(p) for p in sorted(OUT_DIR.glob("pulse-heldout-*.json"))]) or load(paths.get("pulse"))
    daemons = []
    for engine in ("silero", "webrtc"):
        d = load(paths.get(f"daemon_{engine}"))
        clean = load(paths.get(f"daemon_{engine}_clean"))
        if d and clean:  # the quiet-room clips from their own run (--snr clean)
            d = {**d, "records": d["records"] + clean["records"]}
        if d:
            daemons.append(d)
    out = [SECTION, ""]
    out.append("Issue 19. The room is simulated at the microphone: what the speakers play reaches it through a "
               f"{ECHO_DELAY_MS} ms delay and a room response (RT60 {ECHO_RT60_S:g} s, `assistant.training.augment."
               "impulse_response`); a spoken command is added at a speech-to-music ratio measured at the microphone "
               "(the speech's active power over the echo's mean power); the reference is the music as played. "
               "Music: real tracks from Debian packages, decoded once to 16 kHz under `runs/barge_in/music` (never "
               "committed): reported figures use `hyperrogue-music` (17 tracks, CC BY-SA 3.0: Shawn Parrotte, "
               "Lincoln Domina, Will Savino), tuning used `singularity-music` (13 tracks, CC BY-SA 3.0, Max "
               "McCracken); `fb-music-high` (GPL-2, one tracker module) and `nexuiz-music` were not used. \"music + "
               "vocals\": real read speech of LibriSpeech train-clean-100 speakers (../shared/data, training "
               f"speakers) mixed under the music at {VOCALS_DB:g} dB. Commands: `bench/spoken_commands.py`, seed "
               f"{HELDOUT_SEED}, spoken by the held-out voices (mbrola us3, flite rms, festival ked_diphone, espeak-ng "
               f"en-gb-scotland, each at 0.9 and 1.15 speed), {LEAD_S:g} s of music before each command and "
               f"{TRAIL_S:g} s after it.")
    if vad:
        out += ["", f"### The VAD and the canceller alone (`{vad['command_line']}`)", "",
                f"{vad['date']}, {vad['machine']}, load average {vad['load_avg']} (other engineers' jobs). "
                f"{vad['n_commands']} commands at each level; the Endpointer with its defaults (30 ms frames, 90 ms "
                "trigger, 400 ms hangover) on the microphone signal and on the in-process canceller's output "
                "(speexdsp, 300 ms filter, a fresh canceller per clip). Found: an utterance overlaps the speech. "
                "Start and end: the utterance's edges minus the speech's (median, p90 in brackets); ducking: when "
                "`vad.start` comes out (the stream position at SpeechStarted) after the speech onset, the earliest "
                "the player could duck. Music alone: 10 minutes of each, its echo at -20 dBFS.", ""]
        out += vad_tables(vad)
    if vad_t:
        silero_keys = sorted({k.split("|")[0] for k in vad_t["alone"] if k.startswith("silero")})
        parts = [f"{k.replace('silero:', 'threshold ').replace('silero', 'threshold 0.5')}: "
                 f"{vad_t['alone'][k + '|cancelled|music+vocals']['started_per_10min']:g} false starts per 10 min "
                 f"(music + vocals, echo cancelled), commands at -5 dB on the microphone found "
                 f"{vad_t['summary'][k + '|mic|-5']['found']}/{vad_t['summary'][k + '|mic|-5']['n']}, ducking "
                 f"{vad_t['summary'][k + '|mic|-5']['duck_ms']['median']} ms" for k in silero_keys]
        out += ["", f"Silero's threshold was chosen on the tuning set (training voices over singularity-music, "
                f"`{vad_t['command_line']}`): " + "; ".join(parts) + ". 0.7 is the default (`[vad] silero_threshold`)."]
    if daemons:
        d0 = daemons[0]
        out += ["", f"### End to end through the daemon (`{d0['command_line']}`)", "",
                f"{d0['date']}, {d0['machine']}, load average {d0['load_avg']} at the start, "
                f"{d0.get('load_avg_end', '?')} at the end (other engineers' jobs and training). The script starts "
                f"`assistant serve --input none` (shipped models: {d0['model']}) and streams each clip as remote audio "
                f"over `/ws` at {d0['speed']:g}x real time: \"cancelled\" as 2 channels, the microphone and the "
                "reference (`echo_reference_channel`, cancelled in the daemon), \"no reference\" as the microphone "
                "alone (music from another device). Right: the named song first (the artist for artist-only "
                "requests, the name in the slots for \"like X\"; `bench/spoken_score.py`, as in \"Spoken end to "
                "end\").", ""]
        out += daemon_table(daemons)
    if daemons and vad:
        out += ["", "Against the issue's targets (held-out voices and music, the default Silero VAD):", ""] + targets(daemons, vad)
    if pulse:
        pw, sp = pulse["pulse_webrtc"], pulse["in_process_speex"]
        out += ["", f"### PulseAudio's module-echo-cancel against the in-process canceller (`{pulse['command_line']}`)", "",
                f"{pulse['date']}, load average {pulse['load_avg']}; medians of {pulse.get('runs', 1)} runs. A private PulseAudio: the music is played into "
                "module-echo-cancel's sink (webrtc method; gain control and noise suppression off), whose master "
                "sink's monitor is looped back into the microphone's room (30 ms, a pure delay: no room response); "
                f"a command ({pulse['voice']}) is played into the room at about 0 dB after {pulse['speech_at_s']:g} s. "
                "Recorded together: the microphone, the speakers (reference) and the canceller's source; the "
                "in-process canceller then ran on the recorded microphone and reference, aligned by "
                "cross-correlation.", "",
                "| canceller | echo reduction, music alone | speech-to-echo in -> out | speech level change | CPU |",
                "|---|---|---|---|---|",
                f"| PulseAudio module-echo-cancel (webrtc) | {pw['erle_db']:g} dB | {pw['ser_in_db']:+g} -> {pw['ser_out_db']:+g} dB "
                f"| {pw['speech_gain_db']:+g} dB | pulseaudio process {pulse['pulseaudio_cpu_pct']:g} % (with the loopback and 3 recordings) |",
                f"| in-process speexdsp on the separately recorded reference | {sp['erle_db']:g} dB | {sp['ser_in_db']:+g} -> "
                f"{sp['ser_out_db']:+g} dB | {sp['speech_gain_db']:+g} dB | {sp['cpu_pct_one_core']:g} % |",
                "", "The in-process canceller needs the reference sample-aligned with the microphone: the lag between the "
                f"two separately captured recordings, measured every 3 s, was {pulse.get('reference_lags_ms')} ms "
                "(the loopback's and the recorders' buffering), which no fixed filter follows. PulseAudio's module "
                "aligns the streams itself. Hence: the in-process canceller for devices that send the microphone and "
                "what they play as one sample-aligned stream; module-echo-cancel (PulseAudio or PipeWire) when this "
                "machine plays and records."]
    return "\n".join(out) + "\n"


def write_section(text: str, section: str) -> str:
    """`section` in place of the existing one, or before '## Reliability' (else at the end)."""
    if SECTION in text:
        start = text.index(SECTION)
        nxt = text.find("\n## ", start + len(SECTION))
        return text[:start] + section + ("\n" + text[nxt + 1:] if nxt >= 0 else "")
    at = text.find("\n## Reliability")
    if at < 0:
        return text.rstrip("\n") + "\n\n" + section
    return text[:at + 1] + section + "\n" + text[at + 1:]


# --------------------------------------------------------------------------- main

def _meta(args) -> dict:
    from daemon_common import machine

    return {"command_line": "bench/barge_in.py " + " ".join(sys.argv[1:]), "machine": machine(),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "load_avg": f"{os.getloadavg()[0]:.1f}",
            "voices_kind": args.voices, "music": args.music}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("part", choices=("vad", "daemon", "pulse", "report"))
    ap.add_argument("--write-results", action="store_true", help="report: replace the section in bench/RESULTS.md")
    ap.add_argument("--voices", choices=("heldout", "train"), default="heldout")
    ap.add_argument("--music", choices=("heldout", "tune"), default=None, help="default: tune with --voices train")
    ap.add_argument("--engine", default=None, help="VAD engine(s): vad part 'webrtc,silero', daemon part one of them")
    ap.add_argument("--commands", type=int, default=24)
    ap.add_argument("--snr", default="10,0,-5", help="daemon part: speech-to-music ratios (dB, or 'clean')")
    ap.add_argument("--music-alone-s", type=float, default=MUSIC_ALONE_S, help="vad part: music alone per condition")
    ap.add_argument("--daemon-music-s", type=float, default=120.0, help="daemon part: music alone per condition")
    ap.add_argument("--pulse-s", type=float, default=30.0, help="pulse part: seconds of music (the command halfway)")
    ap.add_argument("--speed", type=float, default=1.0, help="daemon part: times real time (max 1.5)")
    ap.add_argument("--timeout-s", type=float, default=30.0)
    ap.add_argument("--catalog", default=str(DEFAULT_CATALOG))
    ap.add_argument("--model", help="recognizer checkpoint (default: the shipped one)")
    ap.add_argument("--out", help="results JSON (default runs/barge_in/<part>-<voices>[-<engine>].json)")
    args = ap.parse_args(argv)
    args.music = args.music or ("tune" if args.voices == "train" else "heldout")
    if args.voices == "heldout" and args.music != "heldout":
        print("note: held-out voices over the tuning music", file=sys.stderr)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    meta = _meta(args)
    if args.part == "report":
        paths = {"vad": OUT_DIR / "vad-heldout.json", "vad_tune": OUT_DIR / "vad-train.json",
                 "daemon_silero": OUT_DIR / "daemon-heldout-silero.json", "daemon_webrtc": OUT_DIR / "daemon-heldout-webrtc.json",
                 "daemon_silero_clean": OUT_DIR / "daemon-heldout-silero-clean.json",
                 "daemon_webrtc_clean": OUT_DIR / "daemon-heldout-webrtc-clean.json",
                 "pulse": OUT_DIR / "pulse-heldout.json"}
        section = report(paths)
        print(section)
        if args.write_results:
            RESULTS_MD.write_text(write_section(RESULTS_MD.read_text(encoding="utf-8"), section), encoding="utf-8")
        return 0
    if args.part == "pulse":
        res = pulse_part(args)
        out = Path(args.out or OUT_DIR / f"pulse-{args.voices}.json")
        out.write_text(json.dumps({**meta, **res}, indent=1), encoding="utf-8")
        print(json.dumps(res, indent=1))
        return 0
    if args.part == "vad":
        args.engine = args.engine or "webrtc,silero"
        t0 = time.monotonic()
        res = vad_part(args)
        res["summary"] = summarize_vad(res.pop("commands"))
        res["wall_s"] = round(time.monotonic() - t0)
        out = Path(args.out or OUT_DIR / f"vad-{args.voices}.json")
    else:
        args.engine = args.engine or "silero"
        if args.engine not in ("webrtc", "silero"):
            raise SystemExit(f"error: --engine: the daemon part runs one engine, 'webrtc' or 'silero', got {args.engine!r}")
        res = asyncio.run(daemon_part(args))
        out = Path(args.out or OUT_DIR / f"daemon-{args.voices}-{args.engine}.json")
    res = {**meta, **res, "load_avg_end": f"{os.getloadavg()[0]:.1f}"}
    out.write_text(json.dumps(res, indent=1), encoding="utf-8")
    print(json.dumps(res.get("summary", {}), indent=1) if args.part == "vad" else "", flush=True)
    if args.part == "vad":
        print(json.dumps(res["alone"], indent=1))
    else:
        print(json.dumps(daemon_summary(res), indent=1))
    print(f"saved {out}")
    return 0


def daemon_summary(res: dict) -> dict:
    out: dict[str, str] = {}
    for r in res["records"]:
        key = f"{r['snr']}|{r['cond']}"
        h, n = map(int, out.get(key, "0/0").split("/"))
        out[key] = f"{h + r['hit']}/{n + 1}"
    return {"right": out, "alone": [{k: a[k] for k in ("music", "cond", "utterances", "cpu_share")}
                                    | {"finals": len(a["accepted_finals"]), "commands": len(a["commands"])}
                                    for a in res["alone"]]}


if __name__ == "__main__":
    sys.exit(main())
