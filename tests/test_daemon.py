"""Daemon lifecycle: sd_notify, watchdog, the systemd unit, file input, a missing microphone, config errors."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from websockets.asyncio.client import connect

from assistant.config import AudioConfig
from assistant.daemon import Daemon, DaemonOptions
from assistant.server import systemd
from test_server import WAIT_S, FakeMusic, FakeRecognizer, arun, make_config, recv, room, speechlike

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "systemd" / "assistant.service"


def test_notify_sends_datagrams_and_is_a_noop_outside_systemd(tmp_path):
    assert systemd.notify("READY=1", environ={}) is False
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        assert systemd.notify("READY=1\nSTATUS=ok", environ={"NOTIFY_SOCKET": str(path)})
        assert sock.recv(100) == b"READY=1\nSTATUS=ok"
    assert systemd.watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert systemd.watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert systemd.watchdog_interval_s({}) is None


def test_daemon_notifies_ready_watchdog_and_stopping(tmp_path, monkeypatch):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # ping every 0.1 s

    messages: list[str] = []

    def drain() -> None:
        while True:
            try:
                messages.append(sock.recv(1000).decode())
            except BlockingIOError:
                return

    async def main() -> None:
        d = Daemon(make_config(), DaemonOptions(input="none"), lambda c: FakeRecognizer(), lambda c: FakeMusic())
        task = asyncio.create_task(d.run())
        await asyncio.wait_for(d.ready.wait(), WAIT_S)
        while sum(m == "WATCHDOG=1" for m in messages) < 2:  # however long a loaded machine takes to ping twice
            drain()
            await asyncio.sleep(0.05)
        d.stop()
        assert await asyncio.wait_for(task, WAIT_S) == 0

    try:
        arun(main())
        drain()
    finally:
        sock.close()
    assert any(m.startswith("READY=1") for m in messages)
    assert sum(m == "WATCHDOG=1" for m in messages) >= 2
    assert messages[-1] == "STOPPING=1"


def test_systemd_unit_is_a_hardened_notify_service():
    text = UNIT.read_text(encoding="utf-8")
    for line in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict",
                 "KillSignal=SIGTERM", "WantedBy=default.target", "-m assistant"):
        assert line in text, line
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    unit = Path("/tmp") / f"assistant-test-{__import__('os').getpid()}.service"
    unit.write_text(text.replace("@REPO@", str(REPO)), encoding="utf-8")
    try:
        out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    finally:
        unit.unlink()
    problems = [l for l in (out.stdout + out.stderr).splitlines() if unit.name in l]
    assert out.returncode == 0 and not problems, out.stdout + out.stderr


def test_file_input_is_played_answered_and_the_daemon_exits(tmp_path):
    from conftest import write_wav

    wav = write_wav(tmp_path / "cmd.wav", np.concatenate([room(400), speechlike(1200) + room(1200, 1), room(300, 2)]))

    async def main() -> None:
        d = Daemon(make_config(), DaemonOptions(input=str(wav), realtime=False, wait_for_client=True, exit_after_input=True),
                   lambda c: FakeRecognizer(), lambda c: FakeMusic())
        task = asyncio.create_task(d.run())
        await asyncio.wait_for(d.ready.wait(), WAIT_S)
        async with connect(f"ws://127.0.0.1:{d.server.port}/ws") as ws:
            await recv(ws, "hello")
            final = await recv(ws, "transcript.final")
            assert final["source"] == "file" and final["accepted"]
            await recv(ws, "recommendations")
        assert await asyncio.wait_for(task, WAIT_S) == 0
        assert d.input_state.state == "finished"

    arun(main())


def test_missing_file_input_is_a_clear_error():
    from assistant.errors import AssistantError

    with pytest.raises(AssistantError, match="not found"):
        Daemon(make_config(), DaemonOptions(input="/nonexistent/command.wav"))


def test_no_microphone_still_serves_and_reports_it():
    async def main() -> None:
        cfg = make_config()
        cfg = dataclasses.replace(cfg, audio=AudioConfig(device="no-such-microphone-xyz", reopen_interval_s=0.2))
        d = Daemon(cfg, DaemonOptions(input="mic"), lambda c: FakeRecognizer(), lambda c: FakeMusic())
        task = asyncio.create_task(d.run())
        await asyncio.wait_for(d.ready.wait(), WAIT_S)
        async with connect(f"ws://127.0.0.1:{d.server.port}/ws") as ws:
            hello = json.loads(await ws.recv())
            status = hello["snapshot"]["status"]
            while status["input"]["state"] != "unavailable":
                status = await recv(ws, "status")
            assert status["listening"] is False and "no-such-microphone-xyz" in status["input"]["error"]
            assert "retrying" in status["input"]["error"]
            await ws.send(json.dumps({"type": "query", "text": "play adele"}))  # everything else works
            await recv(ws, "recommendations")
        d.stop()
        await asyncio.wait_for(task, WAIT_S)

    arun(main())


def test_config_typo_is_a_one_line_error_naming_the_key(tmp_path):
    bad = tmp_path / "config.toml"
    bad.write_text("[vad]\nhangvoer_ms = 500\n", encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "assistant", "--config", str(bad), "serve"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith("error: [vad] unknown key 'hangvoer_ms'")
    bad.write_text("[server]\nhost = \"0.0.0.0\"\n", encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "assistant", "--config", str(bad), "serve", "--input", "none"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "token" in out.stderr.strip().splitlines()[-1]


def test_music_adapter_confines_media_to_the_music_folders(tmp_path):
    from types import SimpleNamespace

    from assistant.daemon import MusicAdapter

    inside = tmp_path / "music" / "a.mp3"
    inside.parent.mkdir()
    inside.write_bytes(b"x")
    outside = tmp_path / "secret.mp3"
    outside.write_bytes(b"x")
    link = tmp_path / "music" / "link.mp3"
    link.symlink_to(outside)
    songs = {"in": inside, "out": outside, "link": link, "gone": tmp_path / "music" / "gone.mp3", "url": "http://x/y.mp3"}
    service = SimpleNamespace(song=lambda i: SimpleNamespace(id=i, source=str(songs[i])) if i in songs else None)
    adapter = MusicAdapter(service, (str(tmp_path / "music"),))
    assert adapter.media_path("in") == inside.resolve()
    assert [adapter.media_path(i) for i in ("out", "link", "gone", "url", "nope")] == [None] * 5


def test_config_toml_has_every_key_with_its_default_and_a_comment():
    import tomllib
    import typing

    from assistant.config import Config, load_config

    path = REPO / "config.toml"
    text = path.read_text(encoding="utf-8")
    assert load_config(path, environ={}) == Config()  # the file states the built-in defaults
    raw = tomllib.loads(text)
    for name, cls in typing.get_type_hints(Config).items():
        assert set(raw[name]) == {f.name for f in dataclasses.fields(cls)}, f"[{name}] keys differ from the dataclass"
    lines = text.splitlines()
    for i, line in enumerate(lines):  # each key, or the group of keys it belongs to, follows a comment
        if line and not line.startswith(("#", "[")):
            j = i - 1
            while j >= 0 and lines[j] and not lines[j].startswith(("#", "[")):
                j -= 1
            assert j >= 0 and lines[j].startswith("#"), f"config.toml line {i + 1} has no comment: {line!r}"


def test_file_input_can_repeat_for_soak_runs(tmp_path):
    from conftest import write_wav

    from assistant.audio.file_source import TAIL_SILENCE_MS, FileSource

    wav = write_wav(tmp_path / "cmd.wav", np.concatenate([room(300), speechlike(600)]))
    source = FileSource(str(wav), 30, realtime=False, repeat=True)
    per_round = -(-(900 + TAIL_SILENCE_MS) // 30)  # blocks of 30 ms, the last one short

    async def main() -> list[np.ndarray]:
        blocks = []
        async for block in source.blocks():
            blocks.append(block)
            if len(blocks) == 3 * per_round:
                return blocks

    blocks = arun(main())
    rounds = [np.concatenate(blocks[i * per_round:(i + 1) * per_round]) for i in range(3)]
    assert len(rounds[0]) == 16 * (900 + TAIL_SILENCE_MS)
    assert np.array_equal(rounds[0], rounds[1]) and np.array_equal(rounds[1], rounds[2])
    assert source.state.state == "open"  # a repeating file never finishes
