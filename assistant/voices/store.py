"""Enrolled voices in SQLite, beside the preference database: embeddings only, never audio.

One row per enrolment utterance: (user, model, dim, embedding as float32 bytes,
speech_s, ts). Every change is one committed transaction (synchronous=FULL).
A file that is not a readable voice store (damaged, another program's, a newer
schema) is a `StorageError` that says so and leaves the file untouched; the
daemon then runs with the household default profile and says why.

The default location is `voices.sqlite3` in the preference database's folder;
`[voices] db_path` overrides.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.errors import AssistantError, StorageError

DB_FILE = "voices.sqlite3"
SCHEMA_VERSION = 1
MAX_NAME_CHARS = 60
SCHEMA = (
    """CREATE TABLE voices (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user TEXT NOT NULL,
        model TEXT NOT NULL,
        dim INTEGER NOT NULL,
        embedding BLOB NOT NULL,
        speech_s REAL NOT NULL,
        ts REAL NOT NULL)""",
    "CREATE INDEX voices_user ON voices (user)",
)


@dataclass(frozen=True)
class VoiceInfo:
    user: str
    utterances: int
    speech_s: float
    enrolled_ts: float   # the newest enrolment


def check_name(name: str) -> str:
    """A person's name as the user id: 1 to MAX_NAME_CHARS printable characters."""
    text = " ".join(str(name).split()) if isinstance(name, str) else ""
    if not text or len(text) > MAX_NAME_CHARS or not text.isprintable():
        raise AssistantError(f"voice name {str(name)[:40]!r} is not valid; expected 1 to {MAX_NAME_CHARS} "
                             "printable characters, such as Anna")
    return text


class VoiceStore:
    def __init__(self, path: str | Path, busy_timeout_ms: int = 5000):
        self.path = Path(path).expanduser()
        self.busy_timeout_ms = busy_timeout_ms
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the folder of the voice store {self.path}: {exc.strerror}; "
                               "set [voices] db_path to a writable place") from None
        self._conn = self._guard(self._open)

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_ms / 1000, isolation_level=None,
                               check_same_thread=False)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]  # fails on a file that is not a database
            if version > SCHEMA_VERSION:
                raise StorageError(f"voice store {self.path} has schema version {version}, newer than this "
                                   f"program's {SCHEMA_VERSION}; it was left untouched")
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(f"integrity check failed: {check}")
            if version == 0:
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                if tables:
                    raise StorageError(f"voice store {self.path} is another program's SQLite database (tables "
                                       f"{', '.join(sorted(tables))[:80]}); it was left untouched")
                conn.execute("BEGIN IMMEDIATE")
                for statement in SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
        except BaseException:
            conn.close()
            raise
        return conn

    def _guard(self, fn, *args):
        try:
            return fn(*args)
        except sqlite3.OperationalError as exc:
            raise StorageError(f"voice store {self.path} cannot be used ({exc}); nothing was changed") from None
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"voice store {self.path} is damaged or not a SQLite database ({exc}); it was left "
                               "untouched: move it aside to enrol voices again, or set [voices] db_path") from None

    # ------------------------------------------------------------------ API
    def add(self, user: str, vectors: np.ndarray, model: str, speech_s: list[float] | None = None) -> int:
        """Store a person's enrolment embeddings (n, dim), all in one transaction; returns n."""
        user = check_name(user)
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) == 0:
            raise AssistantError(f"voice embeddings for {user!r} have shape {vectors.shape}; expected (n, dim)")
        secs = list(speech_s) if speech_s is not None else [0.0] * len(vectors)
        now = time.time()

        def insert() -> int:
            with self._lock:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    for v, s in zip(vectors, secs):
                        self._conn.execute("INSERT INTO voices (user, model, dim, embedding, speech_s, ts) "
                                           "VALUES (?, ?, ?, ?, ?, ?)", (user, model, v.shape[0], v.tobytes(), float(s), now))
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
            return len(vectors)

        return self._guard(insert)

    def remove(self, user: str) -> int:
        """Delete every embedding of `user`; returns how many were deleted (0: not enrolled)."""
        user = check_name(user)

        def delete() -> int:
            with self._lock:
                return self._conn.execute("DELETE FROM voices WHERE user = ?", (user,)).rowcount

        return self._guard(delete)

    def voices(self, model: str) -> dict[str, np.ndarray]:
        """user -> (n, dim) embeddings made with `model`."""
        def select() -> dict[str, np.ndarray]:
            out: dict[str, list[np.ndarray]] = {}
            with self._lock:
                for user, dim, blob in self._conn.execute(
                        "SELECT user, dim, embedding FROM voices WHERE model = ? ORDER BY id", (model,)):
                    vec = np.frombuffer(blob, dtype=np.float32)
                    if vec.shape[0] != dim:
                        raise sqlite3.DatabaseError(f"an embedding of {user!r} has {vec.shape[0]} values, not {dim}")
                    out.setdefault(user, []).append(vec)
            return {u: np.stack(vs) for u, vs in out.items()}

        return self._guard(select)

    def list(self) -> list[VoiceInfo]:
        def select() -> list[VoiceInfo]:
            with self._lock:
                rows = self._conn.execute("SELECT user, count(*), sum(speech_s), max(ts) FROM voices "
                                          "GROUP BY user ORDER BY user").fetchall()
            return [VoiceInfo(u, int(n), float(s or 0.0), float(t)) for u, n, s, t in rows]

        return self._guard(select)

    def data_version(self) -> int:
        """Changes when another connection (`assistant voices add` beside the daemon) commits a change."""
        def read() -> int:
            with self._lock:
                return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

        return self._guard(read)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "VoiceStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
