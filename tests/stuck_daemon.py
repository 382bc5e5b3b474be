"""A daemon process whose second pass is slow on purpose, for SIGTERM tests.

    python tests/stuck_daemon.py PORT DB_PATH [--ignore-cancel]

Runs `assistant.daemon.serve` (what `assistant serve` runs) with the fake
recognizer of test_server, a real `PreferenceStore` behind a tiny music
service, and a Whisper-like second pass that never finishes: it stops when
told to (its cancel flag), or with --ignore-cancel not even then, like a
decode inside one long C call. It writes `second pass started` to stderr
when a decode begins.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from assistant.config import ServerConfig, load_config  # noqa: E402
from assistant.daemon import Daemon, DaemonOptions, serve  # noqa: E402
from assistant.recommend.preferences import PreferenceStore  # noqa: E402
from assistant.server.commands import CommandResult  # noqa: E402
from test_server import FakeRecognizer  # noqa: E402

STARTED = "second pass started"


class StoreMusic:
    """Commands answered at once; feedback goes to a real SQLite preference store."""

    def __init__(self, db_path: str):
        self.store = PreferenceStore(db_path)

    def bias_phrases(self) -> list[str]:
        return ["Adele"]

    def handle(self, text, user, now_playing):
        return CommandResult("play", {"artist": "Adele"}, 0.9,
                             [{"id": "s1", "title": "Hello", "artist": "Adele", "score": 1.0, "reasons": ["artist"]}])

    def feedback(self, user, song_id, kind):
        self.store.add_event(user, song_id, {"like": "liked", "dislike": "disliked"}.get(kind, kind))

    def media_path(self, song_id):
        return None

    def close(self) -> None:
        self.store.close()
        print("store closed", file=sys.stderr, flush=True)


class EndlessSecondPass:
    def __init__(self, ignore_cancel: bool):
        self.ignore_cancel = ignore_cancel

    def set_names(self, names) -> None:
        pass

    def hypothesis(self, audio, heard, cancel=None):
        print(STARTED, file=sys.stderr, flush=True)
        if self.ignore_cancel or cancel is None:
            threading.Event().wait()  # never returns
        cancel.wait()
        raise RuntimeError("cancelled")

    def decide(self, ctc_final, result, ctc_score=None):
        raise AssertionError("a never-ending second pass has nothing to decide")


def main(argv: list[str]) -> int:
    port, db_path, ignore_cancel = int(argv[0]), argv[1], "--ignore-cancel" in argv[2:]
    cfg = load_config(None, environ={})
    cfg = dataclasses.replace(cfg, server=dataclasses.replace(ServerConfig(), port=port),
                              asr=dataclasses.replace(cfg.asr, final_pass="whisper", final_pass_budget_ms=60_000))
    daemon = Daemon(cfg, DaemonOptions(input="none"), recognizer_factory=lambda c: FakeRecognizer(),
                    music_factory=lambda c: StoreMusic(db_path), second_pass_factory=lambda c: EndlessSecondPass(ignore_cancel))
    return serve(daemon)


if __name__ == "__main__":
    import logging

    logging.basicConfig(level="INFO", stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    raise SystemExit(main(sys.argv[1:]))
