"""JSONL speech manifests: one `{"audio", "text", "duration_s", "speaker", "source"}` object per line.

`audio` is a path relative to the manifest's folder (absolute paths are
accepted when reading). `text` is normalized (`assistant.asr.text.normalize_text`).
Only `audio` and `text` are required when reading (so `assistant evaluate`
takes hand-written manifests); `duration_s` is read from the file header when
absent.

`read_manifest(path)` never crashes on bad lines: a missing file, an empty
transcript, a corrupt or unreadable clip, a line that is not JSON, and audio
too short for its label (CTC cannot align it) are skipped and reported as
`(line_no, reason)`.

CTC feasibility: with a 10 ms feature hop and 2x time subsampling the network
emits one frame per 20 ms (`output_frame_rate_hz = 50`). A label of L
characters containing R adjacent repeats ("ll" in "hello") needs at least
L + R frames.

`write_manifest(path, entries, training=True)` refuses entries from reserved
evaluation voices or evaluation-only sources (`assert_training_safe`), and
`read_training_manifest` (training, tuning) refuses to read them back: an
evaluation manifest (`eval_*.jsonl`) or any such line is a one-line error.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from assistant.errors import AssistantError

FEATURE_HOP_MS = 10
TIME_SUBSAMPLING = 2
OUTPUT_FRAME_RATE_HZ = 1000 / (FEATURE_HOP_MS * TIME_SUBSAMPLING)  # 50 frames per second

EVAL_MANIFEST_PREFIX = "eval_"  # corpus.py names every evaluation manifest eval_<set>.jsonl
# Sources that may only ever appear in evaluation manifests.
EVAL_ONLY_SOURCES = ("ljspeech-lj002", "fsdd-theo", "librispeech-test-clean", "synth-eval", "speechocean762-heldout")


@dataclass(frozen=True)
class ManifestEntry:
    audio: str  # absolute path once read; relative to the manifest when written
    text: str
    duration_s: float
    speaker: str = ""
    source: str = ""
    line_no: int = 0
    aug: str = ""  # augmentation applied at corpus-build time ("" = clean); optional in the file

    def to_json(self, relative_to: Path | None = None) -> str:
        d = asdict(self)
        d.pop("line_no")
        if not d["aug"]:
            d.pop("aug")
        if relative_to is not None:
            d["audio"] = os.path.relpath(d["audio"], relative_to)
        d["duration_s"] = round(float(d["duration_s"]), 3)
        return json.dumps(d, ensure_ascii=False)


def ctc_frames_needed(text: str) -> int:
    """Output frames a CTC alignment of `text` needs: characters plus adjacent repeats."""
    return len(text) + sum(1 for a, b in zip(text, text[1:]) if a == b)


def ctc_feasible(text: str, duration_s: float, output_frame_rate_hz: float = OUTPUT_FRAME_RATE_HZ) -> bool:
    frames = int(duration_s * output_frame_rate_hz)
    return frames >= ctc_frames_needed(text)


def _audio_duration(path: str, check: str) -> float:
    """Duration from the header ("header"), or by decoding everything ("full"). Raises on a bad file."""
    import soundfile as sf

    if check == "full":
        data, sr = sf.read(path, dtype="float32", always_2d=True)
        if data.size == 0:
            raise ValueError("no samples")
        return len(data) / sr
    info = sf.info(path)
    if info.frames <= 0 or info.samplerate <= 0:
        raise ValueError("no samples")
    return info.frames / info.samplerate


def read_manifest(path: str | Path, *, check_audio: str = "header",
                  output_frame_rate_hz: float = OUTPUT_FRAME_RATE_HZ,
                  normalize: bool = True) -> tuple[list[ManifestEntry], list[tuple[int, str]]]:
    """Read a JSONL manifest -> (entries, skipped [(line_no, reason)]).

    check_audio: "header" (open every file's header: catches missing, empty and
    corrupt-header files; fast), "full" (decode every file: also catches corrupt
    data), or "none" (trust the manifest; missing files still checked).
    normalize: normalize `text` (a no-op for manifests this project writes).
    """
    path = Path(path)
    if not path.exists():
        raise AssistantError(f"manifest not found: {path}")
    if check_audio not in ("header", "full", "none"):
        raise AssistantError(f"check_audio: expected 'header', 'full' or 'none', got {check_audio!r}")
    normalize_text = None
    if normalize:
        from assistant.asr.text import normalize_text
    base = path.parent
    entries: list[ManifestEntry] = []
    skipped: list[tuple[int, str]] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line_no, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                skipped.append((line_no, f"not JSON ({exc.msg})"))
                continue
            if not isinstance(row, dict) or not isinstance(row.get("audio"), str) or not row["audio"]:
                skipped.append((line_no, "no 'audio' path"))
                continue
            text = row.get("text")
            if not isinstance(text, str) or not text.strip():
                skipped.append((line_no, "empty transcript"))
                continue
            if normalize_text is not None:
                text = normalize_text(text)
                if not text:
                    skipped.append((line_no, "empty transcript after normalization"))
                    continue
            audio = row["audio"] if os.path.isabs(row["audio"]) else os.path.normpath(os.path.join(base, row["audio"]))
            if not os.path.exists(audio):
                skipped.append((line_no, f"missing file {row['audio']}"))
                continue
            duration = row.get("duration_s")
            try:
                if check_audio != "none" or not isinstance(duration, (int, float)):
                    duration = _audio_duration(audio, "full" if check_audio == "full" else "header")
            except Exception as exc:  # soundfile raises several types for bad files
                skipped.append((line_no, f"corrupt or unreadable audio {row['audio']} ({type(exc).__name__})"))
                continue
            if not ctc_feasible(text, float(duration), output_frame_rate_hz):
                skipped.append((line_no, f"audio too short for its label ({duration:.2f} s for "
                                         f"{ctc_frames_needed(text)} CTC frames)"))
                continue
            entries.append(ManifestEntry(audio, text, float(duration), str(row.get("speaker", "")),
                                         str(row.get("source", "")), line_no, str(row.get("aug", ""))))
    return entries, skipped


def format_skipped(skipped: list[tuple[int, str]], path: str | Path, limit: int = 10) -> str:
    """One-paragraph summary of skipped lines for logs."""
    if not skipped:
        return f"{path}: no lines skipped"
    lines = [f"{path}: skipped {len(skipped)} line(s):"]
    lines += [f"  line {n}: {why}" for n, why in skipped[:limit]]
    if len(skipped) > limit:
        lines.append(f"  ... and {len(skipped) - limit} more")
    return "\n".join(lines)


def training_violation(entry: ManifestEntry) -> str | None:
    """Why `entry` must not be trained on (reserved voice or evaluation-only data), else None."""
    from assistant.training.synth import is_reserved_speaker

    name = os.path.basename(entry.audio)
    if is_reserved_speaker(entry.speaker):
        return f"reserved evaluation voice {entry.speaker}"
    if entry.source in EVAL_ONLY_SOURCES:
        return f"evaluation-only source {entry.source}"
    if name.startswith("LJ002-") or "/LJ002-" in entry.audio or entry.speaker.endswith("LJ002"):
        return "LJSpeech LJ002 is evaluation-only"
    if entry.speaker == "fsdd/theo" or "_theo_" in name:
        return "FSDD speaker theo is evaluation-only"
    if "test-clean" in entry.audio.replace("\\", "/") or entry.source.startswith("librispeech-test"):
        return "LibriSpeech test-clean is evaluation-only"
    return None


def assert_training_safe(entries) -> None:
    """Raise AssistantError if any entry comes from a reserved voice or an evaluation-only source."""
    for e in entries:
        why = training_violation(e)
        if why:
            raise AssistantError(f"refusing to put {e.audio} in a training manifest: {why}")


def check_training_manifest(path: str | Path) -> None:
    """Raise a one-line AssistantError unless every line of `path` may be trained or tuned on.

    Refuses an evaluation manifest by its name (`eval_*`) and any line naming a
    reserved voice or evaluation-only data (`training_violation`); reads only the
    JSON, never the audio, so it is cheap enough to run before every use of a cache.
    """
    path = Path(path)
    if path.name.startswith(EVAL_MANIFEST_PREFIX):
        raise AssistantError(f"refusing to train or tune on {path}: it is an evaluation manifest")
    if not path.exists():
        raise AssistantError(f"manifest not found: {path}")
    with open(path, encoding="utf-8", errors="replace") as f:
        for line_no, line in enumerate(f, start=1):
            try:
                row = json.loads(line) if line.strip() else None
            except json.JSONDecodeError:
                continue  # read_manifest skips and reports it
            if not isinstance(row, dict) or not isinstance(row.get("audio"), str):
                continue
            audio = row["audio"] if os.path.isabs(row["audio"]) else os.path.join(path.parent, row["audio"])
            entry = ManifestEntry(audio, "", 0.0, str(row.get("speaker", "")), str(row.get("source", "")), line_no)
            why = training_violation(entry)
            if why:
                raise AssistantError(f"refusing to train or tune on {path} (line {line_no}, {row['audio']}): {why}")


def read_training_manifest(path: str | Path, **options) -> tuple[list[ManifestEntry], list[tuple[int, str]]]:
    """`read_manifest` for training and tuning: `check_training_manifest` first."""
    check_training_manifest(path)
    return read_manifest(path, **options)


def write_manifest(path: str | Path, entries, *, training: bool = False) -> Path:
    """Write entries (absolute audio paths) as JSONL with audio relative to the manifest's folder.

    Validates: non-empty normalized text, positive duration; with `training=True`
    also `assert_training_safe`. Written atomically (temp file + rename).
    """
    from assistant.asr.text import normalize_text

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    entries = list(entries)
    if training:
        assert_training_safe(entries)
    for e in entries:
        if not e.text or normalize_text(e.text) != e.text:
            raise AssistantError(f"manifest {path.name}: text not normalized: {e.text!r} ({e.audio})")
        if not e.duration_s > 0:
            raise AssistantError(f"manifest {path.name}: non-positive duration for {e.audio}")
    tmp = path.with_suffix(path.suffix + ".tmp")
    base = path.parent.resolve()
    with open(tmp, "w", encoding="utf-8") as f:
        for e in entries:
            f.write(e.to_json(relative_to=base) + "\n")
    tmp.replace(path)
    return path
