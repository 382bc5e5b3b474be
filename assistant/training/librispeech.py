"""Reader for the standard LibriSpeech layout: ROOT/[LibriSpeech/]SUBSET/SPEAKER/CHAPTER/*.flac + *.trans.txt.

Each `SPEAKER-CHAPTER.trans.txt` line is `SPEAKER-CHAPTER-UTT TRANSCRIPT`
(upper case). `iter_librispeech(root)` yields one `LibriUtterance` per line
whose audio exists, with the transcript normalized for the recognizer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator


@dataclass(frozen=True)
class LibriUtterance:
    utt_id: str  # "1089-134686-0000"
    speaker: str  # "1089"
    chapter: str  # "134686"
    audio: Path
    text: str  # normalized
    raw_text: str  # as in the transcript file


def find_transcripts(root: str | Path) -> list[Path]:
    """All *.trans.txt under `root`, sorted (works for LibriSpeech/, a subset folder or a speaker folder)."""
    return sorted(Path(root).rglob("*.trans.txt"))


def iter_librispeech(root: str | Path, *, audio_ext: tuple[str, ...] = (".flac", ".wav"),
                     skip_missing: bool = True) -> Iterator[LibriUtterance]:
    """Yield utterances under `root` in sorted order; lines whose audio is missing are skipped
    (or raise FileNotFoundError with `skip_missing=False`)."""
    from assistant.asr.text import normalize_text

    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"LibriSpeech folder not found: {root}")
    for trans in find_transcripts(root):
        with open(trans, encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                utt_id, _, raw = line.partition(" ")
                parts = utt_id.split("-")
                if len(parts) != 3 or not raw.strip():
                    continue
                audio = next((trans.parent / f"{utt_id}{ext}" for ext in audio_ext
                              if (trans.parent / f"{utt_id}{ext}").exists()), None)
                if audio is None:
                    if skip_missing:
                        continue
                    raise FileNotFoundError(f"audio for {utt_id} not found next to {trans}")
                yield LibriUtterance(utt_id, parts[0], parts[1], audio, normalize_text(raw), raw)


def read_librispeech(root: str | Path) -> list[LibriUtterance]:
    return list(iter_librispeech(root))
