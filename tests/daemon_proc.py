"""`assistant serve` as a subprocess, for end-to-end tests (virtual microphone, browser).

    proc, port, log = start_daemon(tmp_dir, env, model, extra_config="[recommend]\\n...", args=("--input", "none"))
    ws, status = await wait_ready(f"ws://127.0.0.1:{port}/ws", proc, log)   # a WebSocket client, once ready
    wait_healthy(port, proc, log)        # the same through /healthz, without connecting a client (fails at once
                                         # when the log says a needed component did not load)
    stop_daemon(proc)                    # SIGTERM, then the exit status

Every daemon is started with Popen and reaped with wait() (PID 1 here does not reap).
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

REPO = Path(__file__).resolve().parent.parent
SHIPPED_MODEL = REPO / "models" / "asr.pt"
COMMAND = "play something sad by adele"
COMPONENT_NAMES = {"asr": "speech recognizer", "recommender": "recommender"}  # /healthz key -> the daemon log's name
READY_TIMEOUT_S = 400.0  # a fresh machine builds the default catalog's semantic index first (about 90 s on 2 cores)
STOP_TIMEOUT_S = 300.0  # SIGTERM -> exit; only reached when a shutdown hangs (it takes at most SHUTDOWN_S, 3 s, by design)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def recognizer_model(request) -> tuple[Path, bool]:
    """The shipped model and True, or a tiny untrained checkpoint and False (its transcripts are noise)."""
    if SHIPPED_MODEL.is_file():
        return SHIPPED_MODEL, True
    return request.getfixturevalue("tiny_checkpoint"), False


def start_daemon(tmp_path: Path, env: dict, model: Path, port: int | None = None, extra_config: str = "",
                 args: Sequence[str] = (), db_path: Path | None = None) -> tuple[subprocess.Popen, int, Path]:
    """Write tmp_path/config.toml (model, port, preference DB `db_path` or in tmp_path, then `extra_config`) and run `serve ARGS`."""
    port = port or free_port()
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[asr]\nmodel_path = "{model}"\n[server]\nport = {port}\n'
                   f'[preferences]\ndb_path = "{db_path or tmp_path / "prefs.sqlite3"}"\n{extra_config}', encoding="utf-8")
    log = tmp_path / "daemon.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "assistant", "--config", str(cfg), "serve", *args],
                                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return proc, port, log


def stop_daemon(proc: subprocess.Popen, timeout_s: float = STOP_TIMEOUT_S) -> int:
    """SIGTERM and wait; killed (and reaped) if it does not exit in time. Returns the exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def _log_tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout_s: float = READY_TIMEOUT_S):
    """Connect and read until status says: input open, recognizer and recommender ready."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            pytest.fail(f"daemon exited with {proc.returncode}:\n{_log_tail(log)}")
        try:
            ws = await connect(url)
            break
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"daemon did not listen:\n{_log_tail(log)}")
            await asyncio.sleep(0.2)
    status = None
    while time.monotonic() < deadline:
        msg = json.loads(await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.monotonic())))
        status = msg["snapshot"]["status"] if msg["type"] == "hello" else msg if msg["type"] == "status" else status
        if status and status["listening"] and status["asr"]["ready"] and status["recommender"]["ready"]:
            return ws, status
    pytest.fail(f"daemon not ready; last status {status}:\n{_log_tail(log)}")


def wait_healthy(port: int, proc: subprocess.Popen, log: Path, timeout_s: float = READY_TIMEOUT_S,
                 need: Sequence[str] = ("asr", "recommender")) -> dict:
    """Poll /healthz until the components in `need` are loaded; no WebSocket client connects."""
    failed = re.compile("ERROR assistant\\.daemon: ({}) (unavailable|failed to load)".format("|".join(COMPONENT_NAMES[n] for n in need)))
    deadline = time.monotonic() + timeout_s
    health: dict = {}
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"daemon exited with {proc.returncode}:\n{_log_tail(log)}")
        if need and failed.search(log.read_text(errors="replace")):  # it will never be ready: say so now
            pytest.fail(f"a component of the daemon did not load:\n{_log_tail(log)}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                health = json.loads(r.read())
            if health.get("status") == "ok" and all(health[n] for n in need):
                return health
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(f"daemon not ready; last health {health}:\n{_log_tail(log)}")
