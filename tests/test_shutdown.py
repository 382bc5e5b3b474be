"""SIGTERM: the daemon exits promptly under load, dropping the work in flight, with the preference store intact.

The daemon runs as a process (tests/stuck_daemon.py: `assistant.daemon.serve`, as `assistant serve` runs it)
whose second pass never finishes, so an exit at all shows that the shutdown did not wait for it.
bench/sigterm_exit.py measures the time with the real models.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from daemon_proc import free_port
from synthetic import utterance
from test_server import WAIT_S, http_fetch, open_stream, recv, speak
from stuck_daemon import STARTED

REPO = Path(__file__).resolve().parent.parent
EXIT_WAIT_S = 120.0  # only reached when the daemon waits for the never-ending decode (a failure)
FEEDBACK = 3


def start(tmp_path: Path, ignore_cancel: bool) -> tuple[subprocess.Popen, int, Path, Path]:
    port, db, log = free_port(), tmp_path / "prefs.sqlite3", tmp_path / "daemon.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "tests/stuck_daemon.py", str(port), str(db)]
                                + (["--ignore-cancel"] if ignore_cancel else []),
                                cwd=REPO, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return proc, port, db, log


async def wait_until(check, what: str, proc: subprocess.Popen, log: Path, timeout_s: float = 4 * WAIT_S) -> None:
    """Poll `check()` in short bounded steps (a starved machine is slow, never stuck)."""
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(check):
        assert proc.poll() is None, f"the daemon exited while waiting for {what}:\n{log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, f"no {what} within {timeout_s:.0f} s:\n{log.read_text()[-2000:]}"
        await asyncio.sleep(0.1)


def ready(port: int) -> bool:
    with contextlib.suppress(OSError):
        return http_fetch(f"http://127.0.0.1:{port}/readyz")[0] == 200
    return False


async def flood(url: str, stop: asyncio.Event) -> None:
    """A fuzz burst: malformed messages and queries as fast as the daemon takes them."""
    with contextlib.suppress(Exception):
        async with connect(url) as ws:
            i = 0
            while not stop.is_set():
                i += 1
                await ws.send(["{", '{"type": "nope"}', json.dumps({"type": "query", "text": f"play adele {i}"}),
                               b"\x01\x02\x03"][i % 4])
                if i % 50 == 0:
                    await asyncio.sleep(0)


@pytest.mark.parametrize("ignore_cancel", [False, True], ids=["pass-stops-when-told", "pass-ignores-cancel"])
def test_sigterm_during_a_second_pass_and_a_fuzz_burst_exits_with_the_store_intact(tmp_path, ignore_cancel):
    proc, port, db, log = start(tmp_path, ignore_cancel)
    url = f"ws://127.0.0.1:{port}/ws"

    async def main() -> None:
        await wait_until(lambda: ready(port), "readiness", proc, log)
        async with connect(url) as ws:
            await recv(ws, "hello")
            for i in range(FEEDBACK):
                await ws.send(json.dumps({"type": "feedback", "id": f"f{i}", "song_id": f"s{i}", "kind": "like"}))
                assert (await recv(ws, "ack"))["request"] == f"f{i}"
            stop = asyncio.Event()
            floods = [asyncio.create_task(flood(url, stop)) for _ in range(3)]
            await open_stream(ws)
            await speak(ws, utterance(1500))
            await wait_until(lambda: STARTED in log.read_text(errors="replace"), "second pass", proc, log)
            proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(proc.wait, EXIT_WAIT_S)
            stop.set()
            await asyncio.gather(*floods)

    try:
        asyncio.run(main())
        assert proc.returncode == 0, log.read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text(errors="replace")
    assert "store closed" in text, text[-2000:]
    if ignore_cancel:
        assert "exiting without waiting for the job in flight on: final_pass" in text, text[-2000:]
    assert not Path(f"{db}-wal").exists()  # closed cleanly: the last connection's close checkpoints the WAL
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == FEEDBACK
