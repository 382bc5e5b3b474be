"""Shared pieces of the daemon benchmarks: commands, the daemon subprocess, a paced player.

Not a benchmark itself; `daemon_latency.py` and `daemon_load.py` use it.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # tests/pulse.py: the virtual microphone

from pulse import SINK, VirtualMic  # noqa: E402

RATE = 16000
SHIPPED_MODEL = REPO / "models" / "asr.pt"

COMMANDS = [
    "play something sad by adele", "hello suggest me a sad song", "more like this", "skip",
    "play shape of you by ed sheeran", "pause", "resume the music", "next song",
    "i want to hear some jazz", "recommend me something upbeat", "play bohemian rhapsody by queen",
    "what is playing", "turn it up", "turn the volume down", "i like this song", "i don't like this",
    "play some rock from the eighties", "suggest a happy song for the morning", "play rolling in the deep",
    "play taylor swift", "something calm to study", "play the latest song by drake", "stop the music",
    "play billie jean by michael jackson", "put on some relaxing piano", "i'm in the mood for dance music",
    "play blinding lights by the weeknd", "previous song", "play hip hop", "suggest me a love song",
    "play songs like someone like you", "play despacito",
]
VOICES = [("en-us", 150), ("en", 160), ("en-us+f3", 145), ("en-us+m3", 170)]


def synthesize(out_dir: Path, commands: list[str]) -> list[tuple[str, np.ndarray, float]]:
    """espeak-ng each command -> (text, 16 kHz float32 audio, speech end in seconds)."""
    from assistant.audio.io import load_audio

    out_dir.mkdir(parents=True, exist_ok=True)
    result = []
    for i, text in enumerate(commands):
        voice, speed = VOICES[i % len(VOICES)]
        wav = out_dir / f"cmd{i:02d}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), text], check=True, capture_output=True)
        audio = load_audio(wav)
        result.append((text, audio, speech_end_s(audio)))
    return result


def speech_end_s(audio: np.ndarray) -> float:
    """End of the last 10 ms frame louder than -40 dB relative to the loudest frame."""
    frames = audio[: len(audio) // 160 * 160].reshape(-1, 160)
    rms = np.sqrt((frames ** 2).mean(axis=1) + 1e-12)
    loud = np.flatnonzero(rms > rms.max() * 0.01)
    return (loud[-1] + 1) * 160 / RATE


def ensure_model(tmp: Path, override: str | None = None) -> tuple[Path, str]:
    """`override`, else the shipped model, else a randomly initialized one of the default size (same compute, noise text)."""
    if override:
        return Path(override).resolve(), override
    if SHIPPED_MODEL.is_file():
        return SHIPPED_MODEL, "models/asr.pt"
    import torch

    from assistant.asr.checkpoint import save_checkpoint
    from assistant.asr.features import FeatureExtractor
    from assistant.asr.network import ModelConfig, StreamingCTC

    torch.manual_seed(0)
    path = tmp / "random_default_size.pt"
    save_checkpoint(path, StreamingCTC(ModelConfig()).eval(), FeatureExtractor.create())
    return path, "random weights, default size (models/asr.pt not present)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DaemonProcess:
    """`assistant serve` as a subprocess with a private config."""

    def __init__(self, tmp: Path, model: Path, env: dict, extra_args: list[str] = (), extra_config: str = "",
                 cwd: Path = REPO):
        """`cwd`: the checkout whose `assistant` package runs (another commit's export, say)."""
        self.port = free_port()
        cfg = tmp / "config.toml"
        cfg.write_text(f'[asr]\nmodel_path = "{model}"\n[server]\nport = {self.port}\n'
                       f'[preferences]\ndb_path = "{tmp / "prefs.sqlite3"}"\n{extra_config}', encoding="utf-8")
        self.log = tmp / "daemon.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "assistant", "--config", str(cfg), "serve", *extra_args],
                                         cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.url = f"ws://127.0.0.1:{self.port}/ws"

    async def wait_ready(self, need_listening: bool = True, timeout_s: float = 300) -> None:
        from websockets.asyncio.client import connect

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited:\n{self.log.read_text()[-3000:]}")
            try:
                async with connect(self.url) as ws:
                    status = json.loads(await ws.recv())["snapshot"]["status"]
                    while not (status["asr"]["ready"] and status["recommender"]["ready"]
                               and (status["listening"] or not need_listening)):
                        msg = json.loads(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))
                        status = msg if msg["type"] == "status" else status
                    return
            except OSError:
                await asyncio.sleep(0.3)
        raise RuntimeError("daemon not ready in time")

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory_mb(self) -> dict:
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        get = lambda key: int(re.search(rf"^{key}:\s+(\d+) kB", text, re.M).group(1)) / 1024  # noqa: E731
        return {"rss_mb": round(get("VmRSS"), 1), "peak_rss_mb": round(get("VmHWM"), 1)}

    def metrics(self) -> str:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            return r.read().decode()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()


class PacedPlayer:
    """Writes audio into the virtual microphone's sink in real time through one long-lived `pacat`.

    Between utterances it plays quiet room noise. For each utterance it records
    when the speech-end sample becomes audible: the time that sample was written,
    plus the audio still ahead of it in the pipe (FIONREAD), plus the stream's
    measured playback latency.
    """

    CHUNK = RATE // 100  # 10 ms

    def __init__(self, vm: VirtualMic, noise_level: float = 0.003):
        self.vm = vm
        self.proc = subprocess.Popen(["pacat", "--playback", "--raw", "--format=s16le", f"--rate={RATE}", "--channels=1",
                                      "--latency-msec=10", f"--device={SINK}", "--client-name=bench-player"],
                                     env={**os.environ, **vm.env}, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        self.rng = np.random.default_rng(0)
        self.noise_level = noise_level
        self.pending: list[tuple[int, np.ndarray, int]] = []   # (id, audio, end sample)
        self.ends: dict[int, float] = {}                          # id -> monotonic audible time of the speech end
        self.done: dict[int, threading.Event] = {}
        self.lock = threading.Lock()
        self.stream_latency_s = 0.0
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def measure_stream_latency(self) -> float:
        text = self.vm.pactl("list", "sink-inputs")
        blocks = text.split("Sink Input #")
        for b in blocks:
            if "bench-player" in b:
                buf = int(re.search(r"Buffer Latency: (\d+) usec", b).group(1))
                sink = int(re.search(r"Sink Latency: (\d+) usec", b).group(1))
                self.stream_latency_s = (buf + sink) / 1e6
        return self.stream_latency_s

    def play(self, uid: int, audio: np.ndarray, end_s: float) -> threading.Event:
        ev = threading.Event()
        with self.lock:
            self.done[uid] = ev
            self.pending.append((uid, audio, int(end_s * RATE)))
        return ev

    def _pipe_bytes(self) -> int:
        return int.from_bytes(fcntl.ioctl(self.proc.stdin.fileno(), termios.FIONREAD, b"\0\0\0\0"), "little")

    def _run(self) -> None:
        current: tuple[int, np.ndarray, int] | None = None
        pos = 0
        t_next = time.monotonic()
        while self.running:
            if current is None:
                with self.lock:
                    current = self.pending.pop(0) if self.pending else None
                pos = 0
            if current is None:
                chunk = (self.noise_level * self.rng.standard_normal(self.CHUNK)).astype(np.float32)
            else:
                uid, audio, end = current
                chunk = audio[pos:pos + self.CHUNK]
                if len(chunk) < self.CHUNK:
                    chunk = np.concatenate([chunk, np.zeros(self.CHUNK - len(chunk), np.float32)])
                chunk = chunk + (self.noise_level * self.rng.standard_normal(self.CHUNK)).astype(np.float32)
            data = (np.clip(chunk, -1, 1) * 32767).astype("<i2").tobytes()
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
            if current is not None:
                uid, audio, end = current
                if pos <= end < pos + self.CHUNK:
                    after_end = (pos + self.CHUNK - end) * 2
                    ahead_s = (self._pipe_bytes() - after_end) / (2 * RATE)
                    self.ends[uid] = time.monotonic() + max(0.0, ahead_s) + self.stream_latency_s
                pos += self.CHUNK
                if pos >= len(audio):
                    self.done[uid].set()
                    current = None
            t_next += self.CHUNK / RATE
            delay = t_next - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def close(self) -> None:
        self.running = False
        self.thread.join(timeout=2)
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait()


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores"
