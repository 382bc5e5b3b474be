"""Preference store: events, migrations, corrupt/locked databases, durability under SIGKILL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from assistant.errors import AssistantError
from assistant.recommend.preferences import SCHEMA_VERSION, PreferenceStore

REPO = Path(__file__).resolve().parents[1]


def test_events_round_trip_newest_first(tmp_path):
    with PreferenceStore(tmp_path / "p.sqlite3") as store:
        a = store.add_event("alice", "s1", "liked", ts=100.0, title="One", artist="A")
        b = store.add_event("alice", "s2", "skipped", ts=200.0)
        store.add_event("bob", "s3", "played")
        events = store.events("alice")
        assert [e.id for e in events] == [b, a]
        assert (events[1].song_id, events[1].kind, events[1].title) == ("s1", "liked", "One")
        assert store.count("alice") == 2 and store.count() == 3
        assert store.last_event_id("alice") == b and store.last_event_id("nobody") == 0
        assert store.schema_version() == SCHEMA_VERSION
    conn = sqlite3.connect(tmp_path / "p.sqlite3")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("user, song, kind, match", [
    ("alice", "s1", "loved", "feedback kind"), ("", "s1", "liked", "user id"), ("x" * 300, "s1", "liked", "user id"),
    ("alice", "", "liked", "song id"),
])
def test_bad_events_are_clear_errors(tmp_path, user, song, kind, match):
    with PreferenceStore(tmp_path / "p.sqlite3") as store:
        with pytest.raises(AssistantError, match=match):
            store.add_event(user, song, kind)
        assert store.count() == 0


def test_version_1_database_is_migrated_keeping_its_events(tmp_path):
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL, song_id TEXT NOT NULL,
                             kind TEXT NOT NULL, ts REAL NOT NULL);
        CREATE INDEX events_user_id ON events (user, id);
        INSERT INTO events (user, song_id, kind, ts) VALUES ('alice', 's1', 'liked', 1.0), ('alice', 's2', 'played', 2.0);
        PRAGMA user_version = 1;
    """)
    conn.close()
    with PreferenceStore(path) as store:
        assert store.schema_version() == SCHEMA_VERSION == 2
        events = store.events("alice")
        assert [(e.song_id, e.kind, e.title) for e in events] == [("s2", "played", ""), ("s1", "liked", "")]
        store.add_event("alice", "s3", "liked", title="Three")
        assert store.events("alice", limit=1)[0].title == "Three"


def test_database_from_a_newer_version_is_refused_and_untouched(tmp_path):
    path = tmp_path / "new.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE future (x)")
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(AssistantError, match="newer"):
        PreferenceStore(path)
    assert path.read_bytes() == before


@pytest.mark.parametrize("content", [b"this is not a database, just text\n" * 40, os.urandom(8192),
                                     b"SQLite format 3\x00" + os.urandom(4096)])
def test_corrupt_database_is_a_clear_error_and_is_never_overwritten(tmp_path, content):
    path = tmp_path / "prefs.sqlite3"
    path.write_bytes(content)
    with pytest.raises(AssistantError, match="corrupt or not a SQLite database|cannot be used") as err:
        PreferenceStore(path)
    assert "left untouched" in str(err.value)
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prefs.sqlite3"]  # no stray -wal/-shm files made


def test_locked_database_reports_locked_and_loses_nothing(tmp_path):
    path = tmp_path / "p.sqlite3"
    with PreferenceStore(path, busy_timeout_ms=100) as store:
        store.add_event("alice", "s1", "liked")
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        other.execute("INSERT INTO events (user, song_id, kind, ts) VALUES ('bob', 's9', 'played', 1)")
        with pytest.raises(AssistantError, match="locked"):
            store.add_event("alice", "s2", "liked")
        other.execute("COMMIT")
        other.close()
        store.add_event("alice", "s2", "liked")
        assert [e.song_id for e in store.events("alice")] == ["s2", "s1"]
        assert store.count("bob") == 1


def test_every_committed_event_survives_sigkill(tmp_path):
    """A writer prints each event id after add_event returns; it is killed mid-stream."""
    path = tmp_path / "p.sqlite3"
    writer = textwrap.dedent(f"""
        import sys
        from assistant.recommend.preferences import PreferenceStore
        store = PreferenceStore({str(path)!r})
        i = 0
        while True:
            event_id = store.add_event("alice", f"s{{i}}", "played", title="t" * 50)
            print(event_id, flush=True)
            i += 1
    """)
    proc = subprocess.Popen([sys.executable, "-c", writer], cwd=REPO, stdout=subprocess.PIPE, text=True)
    committed: list[int] = []
    deadline = time.monotonic() + 60
    try:
        while len(committed) < 40 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            committed.append(int(line))
        assert len(committed) >= 40, "the writer did not get going"
        proc.send_signal(signal.SIGKILL)  # mid-stream: it is writing the next events
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    committed.extend(int(line) for line in proc.stdout.read().split())  # printed before the kill
    assert proc.returncode == -signal.SIGKILL
    with PreferenceStore(path) as store:
        stored = {e.id for e in store.events("alice")}
    assert set(committed) <= stored
    assert len(stored) >= len(committed)


def test_unwritable_location_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(AssistantError, match="db_path"):
        PreferenceStore(blocker / "sub" / "p.sqlite3")
