"""Per-user feedback events in SQLite (WAL), with versioned schema migrations.

Events: requested, played, liked, disliked, skipped — each (user, song_id,
kind, ts) plus the song's title and artist at the time, so a profile survives
catalog changes. Every `add_event` is its own committed transaction with
`synchronous=FULL`: once it returns, the event survives a crash or SIGKILL.

Safety rules:
- the database file is never deleted, truncated or overwritten; a file that is
  not a readable SQLite database, or one written by a newer schema, is an
  `AssistantError` that says so and leaves the file untouched;
- a database locked by another writer is waited for (`busy_timeout_ms`), then
  reported as locked;
- migrations run inside one transaction each, so a crash mid-migration leaves
  the previous version intact.

The default location is `preferences.sqlite3` in the user's data folder
(platformdirs, e.g. ~/.local/share/assistant); `[preferences] db_path` overrides.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from assistant.config import PreferencesConfig, resolve_path
from assistant.errors import AssistantError, StorageError

APP_NAME = "assistant"
DB_FILE = "preferences.sqlite3"
EVENT_KINDS: tuple[str, ...] = ("requested", "played", "liked", "disliked", "skipped")
MAX_USER_CHARS = 200
MAX_SONG_ID_CHARS = 200

# version -> statements that bring the schema from version-1 to version.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        f"""CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user TEXT NOT NULL,
            song_id TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ({", ".join(repr(k) for k in EVENT_KINDS)})),
            ts REAL NOT NULL)""",
        "CREATE INDEX events_user_id ON events (user, id)",
    ),
    2: (
        "ALTER TABLE events ADD COLUMN title TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE events ADD COLUMN artist TEXT NOT NULL DEFAULT ''",
    ),
}
SCHEMA_VERSION = max(MIGRATIONS)


@dataclass(frozen=True)
class Event:
    id: int
    user: str
    song_id: str
    kind: str
    ts: float
    title: str = ""
    artist: str = ""


def default_db_path(cfg: PreferencesConfig) -> Path:
    if cfg.db_path:
        return resolve_path(cfg.db_path)
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME)) / DB_FILE


def _check_user(user: str) -> str:
    if not isinstance(user, str) or not user.strip() or len(user) > MAX_USER_CHARS:
        raise AssistantError(f"user id {str(user)[:40]!r} is not valid; expected 1 to {MAX_USER_CHARS} characters")
    return user.strip()


class PreferenceStore:
    """One SQLite connection, safe to share between threads (calls are serialized)."""

    def __init__(self, path: str | Path, busy_timeout_ms: int = 5000, check_integrity: bool = True):
        self.path = Path(path).expanduser()
        self.busy_timeout_ms = busy_timeout_ms
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AssistantError(f"cannot create the folder of the preference database {self.path}: "
                                 f"{exc.strerror}; set [preferences] db_path to a writable place") from None
        self._conn = self._guard(self._open, check_integrity)

    @classmethod
    def from_config(cls, cfg: PreferencesConfig) -> "PreferenceStore":
        return cls(default_db_path(cfg), cfg.busy_timeout_ms)

    # ----------------------------------------------------------------- setup
    def _open(self, check_integrity: bool) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_ms / 1000, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            version = conn.execute("PRAGMA user_version").fetchone()[0]  # fails on a non-database file
            if version > SCHEMA_VERSION:
                raise AssistantError(
                    f"preference database {self.path} has schema version {version}, newer than this program's "
                    f"{SCHEMA_VERSION}; it was left untouched: upgrade the assistant or set [preferences] db_path")
            if check_integrity:
                result = conn.execute("PRAGMA quick_check").fetchone()[0]
                if result != "ok":
                    raise sqlite3.DatabaseError(f"integrity check failed: {result}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"cannot switch to WAL journal mode (got {mode})")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._migrate(conn, version)
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def _migrate(conn: sqlite3.Connection, version: int) -> None:
        for target in range(version + 1, SCHEMA_VERSION + 1):
            conn.execute("BEGIN IMMEDIATE")
            try:
                current = conn.execute("PRAGMA user_version").fetchone()[0]
                if current >= target:  # another process migrated meanwhile
                    conn.execute("COMMIT")
                    continue
                for statement in MIGRATIONS[target]:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {target}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def _guard(self, fn, *args):
        """Run fn, turning SQLite failures into one-line StorageErrors (AssistantErrors)."""
        try:
            return fn(*args)
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "locked" in text or "busy" in text:
                raise StorageError(
                    f"preference database {self.path} is locked by another process (waited "
                    f"{self.busy_timeout_ms} ms); nothing was changed: try again, or stop the other writer") from None
            if "full" in text:
                raise StorageError(f"preference database {self.path}: the disk is full ({text}); nothing was recorded "
                                   "and what was stored is kept: free some space and try again") from None
            raise StorageError(f"preference database {self.path} cannot be used ({text}); it was left "
                               "untouched: check its permissions or set [preferences] db_path") from None
        except sqlite3.DatabaseError as exc:
            raise StorageError(
                f"preference database {self.path} is corrupt or not a SQLite database ({exc}); it was left "
                "untouched: move it aside to start a new one, or set [preferences] db_path") from None

    # ------------------------------------------------------------------ API
    def add_event(self, user: str, song_id: str, kind: str, ts: float | None = None,
                  title: str = "", artist: str = "") -> int:
        """Record one event and commit it; returns its id."""
        user = _check_user(user)
        if kind not in EVENT_KINDS:
            raise AssistantError(f"feedback kind {str(kind)[:40]!r} is not known; expected one of {', '.join(EVENT_KINDS)}")
        if not isinstance(song_id, str) or not song_id.strip() or len(song_id) > MAX_SONG_ID_CHARS:
            raise AssistantError(f"song id {str(song_id)[:40]!r} is not valid; expected 1 to {MAX_SONG_ID_CHARS} characters")
        when = time.time() if ts is None else float(ts)

        def insert() -> int:
            with self._lock:
                cur = self._conn.execute(
                    "INSERT INTO events (user, song_id, kind, ts, title, artist) VALUES (?, ?, ?, ?, ?, ?)",
                    (user, song_id.strip(), kind, when, title[:300], artist[:300]))
                return int(cur.lastrowid)

        return self._guard(insert)

    def events(self, user: str, limit: int | None = None) -> list[Event]:
        """A user's events, newest first (at most `limit`)."""
        user = _check_user(user)
        sql = "SELECT id, user, song_id, kind, ts, title, artist FROM events WHERE user = ? ORDER BY id DESC"
        params: Sequence = (user,)
        if limit is not None:
            sql += " LIMIT ?"
            params = (user, int(limit))

        def select() -> list[Event]:
            with self._lock:
                return [Event(*row) for row in self._conn.execute(sql, params)]

        return self._guard(select)

    def move_latest_event(self, from_user: str, to_user: str, song_id: str, kind: str) -> bool:
        """Re-file `from_user`'s newest (song_id, kind) event to `to_user` (a voice taken for the wrong person);
        False when there is none."""
        from_user, to_user = _check_user(from_user), _check_user(to_user)

        def update() -> bool:
            with self._lock:
                return self._conn.execute(
                    "UPDATE events SET user = ? WHERE id = (SELECT max(id) FROM events WHERE user = ? AND song_id = ? "
                    "AND kind = ?)", (to_user, from_user, song_id, kind)).rowcount > 0

        return self._guard(update)

    def last_event_id(self, user: str) -> int:
        """Id of the user's newest event (0 if none): a cheap change marker for caches."""
        user = _check_user(user)

        def select() -> int:
            with self._lock:
                row = self._conn.execute("SELECT max(id) FROM events WHERE user = ?", (user,)).fetchone()
                return int(row[0] or 0)

        return self._guard(select)

    def count(self, user: str | None = None) -> int:
        def select() -> int:
            with self._lock:
                if user is None:
                    return int(self._conn.execute("SELECT count(*) FROM events").fetchone()[0])
                return int(self._conn.execute("SELECT count(*) FROM events WHERE user = ?",
                                              (_check_user(user),)).fetchone()[0])

        return self._guard(select)

    def schema_version(self) -> int:
        with self._lock:
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "PreferenceStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
