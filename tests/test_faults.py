"""Fault injection: what the daemon survives, one fault per test (bench/RESULTS.md, Reliability).

- the preference database's filesystem fills up (a small tmpfs): feedback is refused with a `storage`
  error naming the cause, everything else keeps working, nothing stored is lost, writes resume with room
- the index cache is truncated, overwritten, emptied or its manifest damaged: it is rebuilt, then reused
- the microphone disappears and returns (the PulseAudio null sink unloaded and loaded again): status
  says so, capture resumes and a command spoken afterwards is heard
- the recognizer checkpoint is garbage at start: one clear line in status and the log, no traceback,
  typed requests are still served and remote audio is answered with `unavailable`
- SIGKILL while clients are sending feedback: every acknowledged event is in the database
  (the store alone: tests/test_preferences.py::test_every_committed_event_survives_sigkill)

The daemons here use a tiny random recognizer and a six-song catalog with the hashing embedder
(tests/synthetic.py), and CTC finals only, so that they start in seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from daemon_proc import start_daemon, stop_daemon, wait_healthy
from pulse import VirtualMic, missing_tools
from synthetic import pcm16, room, small_catalog_config, utterance

pytestmark = pytest.mark.slow

WAIT_S = 60.0  # only reached when something is wrong
ENV = {**os.environ, "ASSISTANT_ASR_FINAL_PASS": "ctc"}  # no Whisper second pass: these daemons start in seconds
LOG_PROBLEMS = ("Traceback", "exception was never retrieved", "Exception in callback")


async def until(ws, pred, what: str) -> dict:
    """The next event that satisfies `pred` (others skipped)."""
    try:
        while True:
            msg = json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
            if pred(msg):
                return msg
    except TimeoutError:
        pytest.fail(f"no {what} within {WAIT_S:.0f} s")


def reply(ws, request: str):
    return until(ws, lambda m: m.get("request") == request and m["type"] in ("ack", "error", "recommendations"), f"reply to {request}")


def assert_clean_log(log) -> None:
    text = log.read_text(errors="replace")
    problems = [line for line in text.splitlines() if any(p in line for p in LOG_PROBLEMS)]
    assert not problems, text[-4000:]


def fill(folder) -> int:
    """Write a filler file until the filesystem is full; returns its size."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    size = 0
    try:
        for block in (1 << 16, 512):
            while True:
                try:
                    size += os.write(fd, b"\0" * block)
                except OSError:
                    break
    finally:
        os.close(fd)
    return size


@pytest.fixture
def small_tmpfs(tmp_path):
    """An 8 MiB tmpfs (room for SQLite's write-ahead log, then filled by the test)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command: the full-filesystem fault needs a small tmpfs")
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(mnt)], capture_output=True, text=True)
    if out.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({out.stderr.strip() or out.returncode}); the full-filesystem fault needs root")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_full_filesystem_refuses_feedback_clearly_and_loses_nothing(tmp_path, tiny_checkpoint, small_tmpfs):
    db = small_tmpfs / "prefs.sqlite3"
    proc, port, log = start_daemon(tmp_path, ENV, tiny_checkpoint, extra_config=small_catalog_config(tmp_path),
                                   args=("--input", "none"), db_path=db)
    try:
        wait_healthy(port, proc, log)

        async def main() -> list[str]:
            async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
                await ws.send(json.dumps({"type": "query", "id": "q0", "text": "play hello by adele"}))
                songs = [item["id"] for item in (await reply(ws, "q0"))["items"]]
                acked = []
                for i in range(12):
                    await ws.send(json.dumps({"type": "feedback", "id": f"f{i}", "song_id": songs[i % len(songs)],
                                              "kind": ("played", "like", "skip")[i % 3]}))
                    assert (await reply(ws, f"f{i}"))["type"] == "ack"
                    acked.append(f"f{i}")
                assert fill(small_tmpfs) > 0
                for i in range(3):  # the disk is full: refused, said why, and the connection stays up
                    await ws.send(json.dumps({"type": "feedback", "id": f"full{i}", "song_id": songs[0], "kind": "like"}))
                    err = await reply(ws, f"full{i}")
                    assert err["type"] == "error" and err["code"] == "storage", err
                    assert "disk is full" in err["message"] and str(db) in err["message"], err
                await ws.send(json.dumps({"type": "query", "id": "q1", "text": "play someone like you by adele"}))
                recs = await reply(ws, "q1")  # recommending still works (its `requested` event is not recorded)
                assert recs["type"] == "recommendations" and recs["items"], recs
                (small_tmpfs / "filler").unlink()  # room again: writes resume
                await ws.send(json.dumps({"type": "feedback", "id": "after", "song_id": songs[1], "kind": "like"}))
                assert (await reply(ws, "after"))["type"] == "ack"
                return songs

        songs = asyncio.run(main())
        assert wait_healthy(port, proc, log)["status"] == "ok"
    finally:
        assert stop_daemon(proc) == 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = conn.execute("SELECT song_id, kind FROM events WHERE kind != 'requested' ORDER BY id").fetchall()
    expected = [(songs[i % len(songs)], ("played", "liked", "skipped")[i % 3]) for i in range(12)] + [(songs[1], "liked")]
    assert rows == expected  # the twelve from before, none of the refused, the one after
    assert_clean_log(log)


CORRUPTIONS = {
    "truncated": lambda index, manifest: index.write_bytes(index.read_bytes()[: index.stat().st_size // 2]),
    "garbage": lambda index, manifest: index.write_bytes(os.urandom(index.stat().st_size)),
    "bit flip": lambda index, manifest: index.write_bytes((lambda b: b[:-9] + bytes([b[-9] ^ 0x40]) + b[-8:])(index.read_bytes())),
    "empty": lambda index, manifest: index.write_bytes(b""),
    "missing": lambda index, manifest: index.unlink(),
    "manifest garbage": lambda index, manifest: manifest.write_text("{not json", encoding="utf-8"),
    "manifest lies": lambda index, manifest: manifest.write_text(
        json.dumps({**json.loads(manifest.read_text(encoding="utf-8")), "songs": 999}), encoding="utf-8"),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_damaged_index_cache_is_rebuilt_then_reused(tmp_path, corruption):
    from assistant.config import load_config
    from assistant.recommend.index_store import INDEX_FILE, MANIFEST_FILE
    from assistant.recommend.service import RecommendService

    cfg_path = tmp_path / "config.toml"
    cfg_path.write_text(small_catalog_config(tmp_path) + f'[preferences]\ndb_path = "{tmp_path / "p.sqlite3"}"\n', encoding="utf-8")
    config = load_config(cfg_path, environ={})

    def service_top() -> tuple[bool, str]:
        service = RecommendService(config)
        try:
            return service.index_built, service.handle_text("play hello by adele")[1].items[0].song.title
        finally:
            service.close()

    assert service_top() == (True, "Hello")  # built
    assert service_top() == (False, "Hello")  # reused
    folder = next((tmp_path / "cache").glob("index-*"))
    CORRUPTIONS[corruption](folder / INDEX_FILE, folder / MANIFEST_FILE)
    assert service_top() == (True, "Hello")  # rebuilt
    assert service_top() == (False, "Hello")  # and the rebuilt cache is good


@pytest.fixture
def virtual_mic(tmp_path):
    missing = missing_tools()
    if missing:
        pytest.skip(f"PulseAudio tools missing: {', '.join(missing)} (scripts/setup.sh installs pulseaudio, pulseaudio-utils)")
    with VirtualMic(tmp_path / "pulse") as vm:
        yield vm


def test_microphone_that_disappears_and_returns_is_reported_and_heard_again(tmp_path, tiny_checkpoint, virtual_mic):
    from conftest import write_wav

    wav = write_wav(tmp_path / "speech.wav", utterance(1500))
    proc, port, log = start_daemon(tmp_path, {**ENV, **virtual_mic.env}, tiny_checkpoint,
                                   extra_config=small_catalog_config(tmp_path) + "[audio]\nreopen_interval_s = 0.5\n")
    try:
        wait_healthy(port, proc, log)

        async def main() -> tuple[dict, dict, dict]:
            async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
                def input_state(state: str):
                    return until(ws, lambda m: m["type"] == "status" and m["input"]["state"] == state
                                 or m["type"] == "hello" and m["snapshot"]["status"]["input"]["state"] == state, f"input {state}")

                await input_state("open")
                await asyncio.to_thread(virtual_mic.unload_sink)
                gone = await input_state("unavailable")
                await asyncio.to_thread(virtual_mic.load_sink)
                back = await input_state("open")
                await asyncio.to_thread(virtual_mic.play, wav)
                final = await until(ws, lambda m: m["type"] == "transcript.final" and m["source"] == "mic",
                                    "a final transcript from the microphone")  # (a click as playback starts may come first, too short)
                return gone, back, final

        gone, back, final = asyncio.run(main())
    finally:
        assert stop_daemon(proc) == 0
    assert gone["listening"] is False and ("re-opening" in gone["input"]["error"] or "retrying" in gone["input"]["error"]), gone
    assert back["listening"] is True and back["input"]["error"] is None
    assert final["source"] == "mic" and final["audio_ms"] >= 1000  # the whole utterance was captured after the return
    assert_clean_log(log)


def test_garbage_recognizer_checkpoint_is_one_clear_error_and_text_still_works(tmp_path):
    garbage = tmp_path / "model" / "asr.pt"  # a copy in a tmp dir; models/asr.pt is never touched
    garbage.parent.mkdir()
    garbage.write_bytes(os.urandom(1 << 20))
    proc, port, log = start_daemon(tmp_path, ENV, garbage, extra_config=small_catalog_config(tmp_path), args=("--input", "none"))
    try:
        health = wait_healthy(port, proc, log, need=("recommender",))

        async def main() -> tuple[dict, dict, dict]:
            async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
                status = (await until(ws, lambda m: m["type"] == "hello", "hello"))["snapshot"]["status"]
                while status["asr"].get("error") is None:  # the recommender may be ready before the recognizer has failed
                    status = await until(ws, lambda m: m["type"] == "status", "status")
                await ws.send(json.dumps({"type": "query", "id": "typed", "text": "play hello by adele"}))
                typed = await reply(ws, "typed")
                await ws.send(json.dumps({"type": "audio.start", "id": "a"}))
                source = (await reply(ws, "a"))["source"]
                for i, chunk in enumerate([utterance(1200), room(2000, 7)]):
                    pcm = pcm16(chunk)
                    for j in range(0, len(pcm), 1280):
                        await ws.send(pcm[j:j + 1280])
                        await asyncio.sleep(0.03)
                spoken = await until(ws, lambda m: m["type"] == "error" and m.get("source") == source, "an error for the stream")
                return status, typed, spoken

        status, typed, spoken = asyncio.run(main())
        assert proc.poll() is None
    finally:
        assert stop_daemon(proc) == 0
    assert health["asr"] is False
    error = status["asr"]["error"]
    assert str(garbage) in error and "corrupt or not a checkpoint" in error and "\n" not in error, error
    assert typed["type"] == "recommendations" and typed["items"][0]["title"] == "Hello"
    assert spoken["code"] == "unavailable" and "corrupt" in spoken["message"]
    text = log.read_text(errors="replace")
    assert sum("speech recognizer unavailable" in line and str(garbage) in line for line in text.splitlines()) == 1
    assert_clean_log(log)


def test_sigkill_while_feedback_is_written_keeps_every_acknowledged_event(tmp_path, tiny_checkpoint):
    proc, port, log = start_daemon(tmp_path, ENV, tiny_checkpoint, extra_config=small_catalog_config(tmp_path),
                                   args=("--input", "none"))
    acked: list[str] = []  # each feedback has its own user id, so the database says which ones it kept
    try:
        wait_healthy(port, proc, log)

        async def client(n: int, songs: list[str], killed: asyncio.Event) -> None:
            try:
                async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
                    for i in range(10_000):
                        fid = f"c{n}-{i}"
                        await ws.send(json.dumps({"type": "feedback", "id": fid, "user": fid, "song_id": songs[i % len(songs)],
                                                  "kind": ("played", "like", "dislike", "skip")[i % 4]}))
                        msg = await reply(ws, fid)
                        assert msg["type"] == "ack", msg  # fails the test: only the kill may end this loop
                        acked.append(fid)
                        if len(acked) == 150:
                            killed.set()
            except (ConnectionClosed, OSError):  # the connection dies with the daemon
                return

        async def main() -> None:
            async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
                await ws.send(json.dumps({"type": "query", "id": "q", "text": "recommend some pop"}))
                songs = [item["id"] for item in (await reply(ws, "q"))["items"]]
            killed = asyncio.Event()
            tasks = [asyncio.create_task(client(n, songs, killed)) for n in range(3)]
            await asyncio.wait_for(killed.wait(), WAIT_S)
            proc.send_signal(signal.SIGKILL)  # mid-stream: the clients are writing their next events
            done, _ = await asyncio.wait(tasks, timeout=WAIT_S)
            assert len(done) == len(tasks)
            for task in done:
                task.result()  # a client's failed assertion fails the test

        asyncio.run(main())
        assert proc.wait(timeout=WAIT_S) == -signal.SIGKILL
    finally:
        stop_daemon(proc)
    with sqlite3.connect(tmp_path / "prefs.sqlite3") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = {user for (user,) in conn.execute("SELECT user FROM events WHERE user LIKE 'c%-%'")}
    assert len(acked) >= 150
    assert set(acked) <= stored, sorted(set(acked) - stored)[:10]  # every acknowledged event survived the kill
