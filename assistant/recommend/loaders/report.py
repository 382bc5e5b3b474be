"""What a loader read: songs, plus every skipped row and repaired field with its place."""

from __future__ import annotations

from dataclasses import dataclass, field

from assistant.recommend.song import Song

MAX_LISTED = 5  # problems named in a one-line summary


@dataclass
class LoadReport:
    """Songs read from one source and the problems met on the way.

    `skipped` rows were dropped (no title, no artist, undecodable JSON...);
    `repaired` rows were kept with a bad field dropped (a year of "#VALUE!").
    Each entry is (where, reason), where is "line 12" or a file path.
    """

    source: str
    songs: list[Song] = field(default_factory=list)
    rows: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    repaired: list[tuple[str, str]] = field(default_factory=list)

    def skip(self, where: str, reason: str) -> None:
        self.skipped.append((where, reason))

    def repair(self, where: str, reason: str) -> None:
        self.repaired.append((where, reason))

    def summary(self) -> str:
        """One line: counts and the first few problems with their places."""
        text = f"{self.source}: {len(self.songs)} songs from {self.rows} rows"
        if self.skipped:
            listed = "; ".join(f"{w}: {r}" for w, r in self.skipped[:MAX_LISTED])
            more = f" (+{len(self.skipped) - MAX_LISTED} more)" if len(self.skipped) > MAX_LISTED else ""
            text += f", {len(self.skipped)} skipped [{listed}{more}]"
        if self.repaired:
            listed = "; ".join(f"{w}: {r}" for w, r in self.repaired[:MAX_LISTED])
            more = f" (+{len(self.repaired) - MAX_LISTED} more)" if len(self.repaired) > MAX_LISTED else ""
            text += f", {len(self.repaired)} with a bad field dropped [{listed}{more}]"
        return text
