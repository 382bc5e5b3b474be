"""What the daemon holds for voices: the store, a lazily loaded embedder, identification, enrolment.

Runs on one worker thread (the daemon's "voices" worker); nothing here is
thread-safe beyond that. Nothing loads until it is needed: the embedder's
weights (about 17 MB, ~50 MB of RSS) are read on the first enrolment or the
first utterance once a voice is enrolled.

The store's file is created by the first enrolment. A store that cannot be opened (damaged, locked, another program's file) leaves
the service `unavailable`: every utterance gets the default profile, `status`
says why, and enrolment answers with that reason; the file is left untouched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.config import PreferencesConfig, VoicesConfig, resolve_path
from assistant.errors import StorageError
from assistant.voices.embedder import VoiceEmbedder
from assistant.voices.enrol import MODEL_ID, Enrolment, enrol
from assistant.voices.identify import Identification, VoiceIndex
from assistant.voices.store import DB_FILE, VoiceInfo, VoiceStore

log = logging.getLogger(__name__)


def default_store_path(voices: VoicesConfig, preferences: PreferencesConfig) -> Path:
    if voices.db_path:
        return resolve_path(voices.db_path)
    from assistant.recommend.preferences import default_db_path

    return default_db_path(preferences).parent / DB_FILE


@dataclass(frozen=True)
class VoiceState:
    """For `status`: whether identification runs, who is enrolled, why not."""

    enabled: bool
    active: bool                 # enabled, the store opened and at least one voice enrolled
    enrolled: tuple[str, ...]
    error: str | None

    def to_dict(self) -> dict:
        return {"enabled": self.enabled, "active": self.active, "enrolled": list(self.enrolled), "error": self.error}


class VoiceService:
    def __init__(self, cfg: VoicesConfig, default_user: str, store_path: str | Path, busy_timeout_ms: int = 5000):
        self.cfg = cfg
        self.default_user = default_user
        self.path = Path(store_path)
        self.busy_timeout_ms = busy_timeout_ms
        self.error: str | None = None
        self.store: VoiceStore | None = None
        self._embedder: VoiceEmbedder | None = None
        self.index = VoiceIndex({})
        self._version: int | None = None   # the store's data_version when the index was read
        if self.path.exists():  # the file is created by the first enrolment
            self._open()

    def _open(self) -> None:
        try:
            self.store = VoiceStore(self.path, self.busy_timeout_ms)
            self._reindex()
        except StorageError as exc:
            self.error = f"{exc}; every utterance uses the default profile ({self.default_user!r})"
            log.error("voices: %s", self.error)
            if self.store is not None:
                self.store.close()
                self.store = None

    @classmethod
    def from_config(cls, voices: VoicesConfig, preferences: PreferencesConfig) -> "VoiceService":
        return cls(voices, preferences.default_user, default_store_path(voices, preferences), preferences.busy_timeout_ms)

    # ---------------------------------------------------------------- state
    def _reindex(self) -> None:
        self.index = VoiceIndex(self.store.voices(MODEL_ID)) if self.store is not None else VoiceIndex({})
        self._version = self.store.data_version() if self.store is not None else None

    def refresh(self) -> bool:
        """Pick up what another process changed (`assistant voices add/remove` while the daemon runs): whether
        the enrolled voices changed. A store that became unreadable keeps the voices already read."""
        before = self.index.names
        try:
            if self.store is None:
                if self.error is None and self.path.exists():
                    self._open()
            elif self.store.data_version() != self._version:
                self._reindex()
        except StorageError as exc:
            log.error("voices: %s", exc)
        return self.index.names != before

    @property
    def active(self) -> bool:
        return self.cfg.enabled and self.store is not None and len(self.index) > 0

    def state(self) -> VoiceState:
        return VoiceState(self.cfg.enabled, self.active, self.index.names, self.error)

    def embedder(self) -> VoiceEmbedder:
        if self._embedder is None:
            self._embedder = VoiceEmbedder.load()
        return self._embedder

    def _usable_store(self) -> VoiceStore:
        if self.store is None and self.error is None:
            self._open()
        if self.store is None:
            raise StorageError(self.error)
        return self.store

    # ------------------------------------------------------------------ API
    def identify(self, audio: np.ndarray) -> Identification | None:
        """The utterance's speaker; None when identification does not run (disabled, no voice enrolled)."""
        self.refresh()
        if not self.active:
            return None
        return self.index.identify(self.embedder().embed(audio).vector, self.cfg.threshold, self.default_user)

    def enrol(self, name: str, recordings: list[np.ndarray]) -> Enrolment:
        """Checked and stored; NotOneSpeaker / AssistantError / StorageError say why not (nothing stored then)."""
        result = enrol(self.embedder(), self._usable_store(), name, recordings, self.index)
        self._reindex()
        return result

    def forget(self, name: str) -> int:
        if self.store is None and self.error is None and not self.path.exists():
            return 0
        removed = self._usable_store().remove(name)
        self._reindex()
        return removed

    def voices(self) -> list[VoiceInfo]:
        if self.store is None and self.error is None and not self.path.exists():
            return []
        return self._usable_store().list()

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
