"""A virtual microphone for end-to-end tests and benchmarks: a private PulseAudio server.

    with VirtualMic(tmp_dir) as vm:          # skips the test when PulseAudio is missing
        env = {**os.environ, **vm.env}       # give this to the daemon subprocess
        vm.play(wav_path)                    # paplay into the null sink
        vm.unload_sink(); vm.load_sink()     # the microphone disappears and returns

The server runs as the current user (root works: no --system, `-n` skips the
default script, modules are loaded on the command line), listens on a unix
socket in `tmp_dir`, and has one null sink at 16 kHz mono whose monitor is the
default source. ALSA's "default" device goes through libasound2-plugins'
pulse plugin to that server (PULSE_SERVER), so PortAudio's default input hears
whatever is played into the sink. A `pacat` of /dev/zero keeps the sink running;
`start` waits until the sink's latency is under 100 ms, otherwise the first
150 ms of the first command would be lost.

Every child is started with Popen and reaped with wait() (PID 1 here does not reap).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

SINK = "vmic"
RATE_HZ = 16000
MAX_LATENCY_US = 100_000
TOOLS = ("pulseaudio", "pactl", "pacat", "paplay")


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


class VirtualMic:
    def __init__(self, tmp_dir: str | os.PathLike):
        self.dir = Path(tmp_dir)
        self.socket = self.dir / "native"
        self.env = {"PULSE_SERVER": f"unix:{self.socket}", "XDG_RUNTIME_DIR": str(self.dir / "run"),
                    "PULSE_COOKIE": str(self.dir / "cookie")}
        self.server: subprocess.Popen | None = None
        self.keepalive: subprocess.Popen | None = None
        self.log_path = self.dir / "pulseaudio.log"

    def _run_env(self) -> dict:
        return {**os.environ, **self.env}

    def pactl(self, *args: str) -> str:
        return subprocess.run(["pactl", *args], env=self._run_env(), capture_output=True, text=True, check=True, timeout=10).stdout

    def start(self) -> "VirtualMic":
        (self.dir / "run").mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")
        self.server = subprocess.Popen(
            ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit", "--use-pid-file=no",
             "--log-target=stderr", "--log-level=warning",
             f"--load=module-native-protocol-unix socket={self.socket} auth-anonymous=1",
             f"--load=module-null-sink sink_name={SINK} rate={RATE_HZ} channels=1 format=s16le"],
            env=self._run_env(), stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 15
        while True:
            if self.server.poll() is not None:
                raise RuntimeError(f"pulseaudio exited: {self.log_path.read_text(errors='replace')[-2000:]}")
            if self.socket.exists():
                try:
                    self.pactl("info")
                    break
                except subprocess.CalledProcessError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError("pulseaudio did not start within 15 s")
            time.sleep(0.05)
        self._use_sink()
        return self

    def _use_sink(self) -> None:
        """The sink as default output, its monitor as default input, kept running by a pacat of silence."""
        self.pactl("set-default-sink", SINK)
        self.pactl("set-default-source", f"{SINK}.monitor")
        if self.keepalive is not None and self.keepalive.poll() is None:
            self.keepalive.terminate()
            self.keepalive.wait()
        self.keepalive = subprocess.Popen(
            ["pacat", "--playback", "--raw", "--format=s16le", f"--rate={RATE_HZ}", "--channels=1", "--latency-msec=20", "/dev/zero"],
            env=self._run_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait_low_latency()

    def unload_sink(self) -> None:
        """The microphone goes away: the null sink, and with it its monitor (the default input), is unloaded."""
        for line in self.pactl("list", "short", "modules").splitlines():
            index, name, *_ = line.split("\t")
            if name == "module-null-sink":
                self.pactl("unload-module", index)

    def load_sink(self) -> None:
        """The microphone comes back: the null sink is loaded again and made the default."""
        self.pactl("load-module", "module-null-sink", f"sink_name={SINK}", f"rate={RATE_HZ}", "channels=1", "format=s16le")
        self._use_sink()

    def sink_latency_us(self) -> int | None:
        m = re.search(r"^\s+Latency: (\d+) usec", self.pactl("list", "sinks"), flags=re.M)
        return int(m.group(1)) if m else None

    def wait_low_latency(self, timeout_s: float = 20.0) -> None:
        """Until the sink's latency has been under 100 ms three readings in a row."""
        deadline = time.monotonic() + timeout_s
        good = 0
        while good < 3:
            latency = self.sink_latency_us()
            good = good + 1 if latency is not None and latency < MAX_LATENCY_US else 0
            if time.monotonic() > deadline:
                raise RuntimeError(f"sink latency stayed at {latency} us (want < {MAX_LATENCY_US})")
            time.sleep(0.2)

    def play(self, wav: str | os.PathLike, wait: bool = True) -> subprocess.Popen:
        """paplay a file into the sink (the microphone hears it)."""
        proc = subprocess.Popen(["paplay", f"--device={SINK}", str(wav)], env=self._run_env(),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if wait:
            _, err = proc.communicate(timeout=60)
            if proc.returncode:
                raise RuntimeError(f"paplay failed: {err.decode(errors='replace')}")
        return proc

    def stop(self) -> None:
        for proc in (self.keepalive, self.server):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.keepalive = self.server = None

    def __enter__(self) -> "VirtualMic":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
