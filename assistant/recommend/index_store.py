"""Built semantic indexes in a cache folder, with a manifest that says when they are stale.

Layout: `<cache_dir>/index-<key>/{index.faiss, manifest.json}` where key hashes
the model label, the document version and the catalog fingerprint (SHA-256 of
every song document). An index is reused only when its manifest matches the
model, dimension, fingerprint, document version and index kind, and the index
file still has the checksum (CRC-32) it was written with; otherwise it is
rebuilt. Writes go to a temporary folder renamed into place, so a crash
mid-build never leaves a half index that looks complete.

`cache_dir` comes from `[recommend] cache_dir`, else the user's cache folder
(platformdirs), e.g. ~/.cache/assistant.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import zlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from assistant.config import RecommendConfig, resolve_path
from assistant.errors import AssistantError
from assistant.recommend.catalog import Catalog, fingerprint_texts
from assistant.recommend.document import DOC_VERSION, song_document
from assistant.recommend.embedder import Embedder
from assistant.recommend.vector_index import IndexOptions, VectorIndex

APP_NAME = "assistant"
MANIFEST_FORMAT = 2
INDEX_FILE = "index.faiss"
MANIFEST_FILE = "manifest.json"
BUILD_BATCH = 256


@dataclass(frozen=True)
class Manifest:
    format: int
    model: str
    dimension: int
    catalog_fingerprint: str
    doc_version: int
    kind: str
    songs: int
    built_at: str
    build_s: float
    songs_per_s: float
    recall_at_10: float | None = None
    search_effort: int | None = None  # IVF nprobe or HNSW efSearch that reached the recall
    index_crc32: int | None = None  # of index.faiss as written: a file damaged since (a bit flip faiss would load) is rebuilt

    @classmethod
    def read(cls, path: Path) -> "Manifest | None":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None  # missing or unreadable: treated as stale


def cache_root(cfg: RecommendConfig) -> Path:
    if cfg.cache_dir:
        return resolve_path(cfg.cache_dir)
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME))


def catalog_documents(catalog: Catalog) -> list[str]:
    return [song_document(s) for s in catalog.songs]


def index_key(model_label: str, fingerprint: str) -> str:
    return hashlib.sha256(f"{model_label}\n{DOC_VERSION}\n{fingerprint}".encode()).hexdigest()[:16]


def index_options(cfg: RecommendConfig) -> IndexOptions:
    return IndexOptions(flat_max_songs=cfg.flat_max_songs, approximate=cfg.approximate_index)


def expected_kind(n_songs: int, options: IndexOptions) -> str:
    return "flat" if n_songs <= options.flat_max_songs else options.approximate


def is_fresh(manifest: Manifest | None, model_label: str, fingerprint: str, kind: str) -> bool:
    """True when a cached index was built from exactly this catalog, model and kind."""
    return (manifest is not None and manifest.format == MANIFEST_FORMAT and manifest.model == model_label
            and manifest.catalog_fingerprint == fingerprint and manifest.doc_version == DOC_VERSION
            and manifest.kind == kind)


def build_index(documents: list[str], embedder: Embedder, options: IndexOptions,
                progress: bool = True) -> tuple[VectorIndex, float]:
    """Embed documents in batches (with a progress bar) and build the index; returns (index, seconds)."""
    from tqdm import tqdm

    start = time.perf_counter()
    chunks = []
    with tqdm(total=len(documents), unit="song", desc="embedding songs", disable=not progress,
              file=sys.stderr) as bar:
        for i in range(0, len(documents), BUILD_BATCH):
            batch = documents[i:i + BUILD_BATCH]
            chunks.append(embedder.encode(batch))
            bar.update(len(batch))
    vectors = np.concatenate(chunks) if chunks else np.zeros((0, embedder.dimension), dtype=np.float32)
    index = VectorIndex.build(vectors, options)
    return index, time.perf_counter() - start


def _crc32(path: Path) -> int:
    crc = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            crc = zlib.crc32(chunk, crc)
    return crc


def _write(folder: Path, index: VectorIndex, manifest: Manifest) -> Manifest:
    """The index and its manifest, renamed into place together; returns the manifest with the file's checksum."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", suffix=".tmp", dir=folder.parent))
    try:
        index.save(tmp / INDEX_FILE)
        manifest = replace(manifest, index_crc32=_crc32(tmp / INDEX_FILE))
        (tmp / MANIFEST_FILE).write_text(json.dumps(asdict(manifest), indent=2), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)  # a stale cache entry of ours, never user data
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def ensure_index(catalog: Catalog, embedder: Embedder, cfg: RecommendConfig, *, force: bool = False,
                 progress: bool = True) -> tuple[VectorIndex, Manifest, bool]:
    """The catalog's index from the cache, built first when missing or stale.

    Returns (index, manifest, built) where built says whether it was (re)built now.
    """
    options = index_options(cfg)
    documents = catalog_documents(catalog)
    fingerprint = fingerprint_texts(documents)
    kind = expected_kind(len(documents), options)
    folder = cache_root(cfg) / f"index-{index_key(embedder.label, fingerprint)}"
    manifest = Manifest.read(folder / MANIFEST_FILE)
    if not force and is_fresh(manifest, embedder.label, fingerprint, kind):
        try:
            if manifest.index_crc32 is None or _crc32(folder / INDEX_FILE) == manifest.index_crc32:
                index = VectorIndex.load(folder / INDEX_FILE, manifest.kind, manifest.recall_at_10, manifest.search_effort)
                if len(index) == manifest.songs == len(catalog):
                    return index, manifest, False
        except (OSError, RuntimeError):
            pass  # a missing, damaged or unreadable index file: rebuild it
    index, seconds = build_index(documents, embedder, options, progress)
    manifest = Manifest(
        format=MANIFEST_FORMAT, model=embedder.label, dimension=index.dimension, catalog_fingerprint=fingerprint,
        doc_version=DOC_VERSION, kind=index.kind, songs=len(index),
        built_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), build_s=round(seconds, 3),
        songs_per_s=round(len(index) / seconds, 1) if seconds > 0 else 0.0,
        recall_at_10=index.recall_at_10, search_effort=index.search_effort)
    try:
        manifest = _write(folder, index, manifest)
    except OSError as exc:
        raise AssistantError(f"cannot write the index cache {folder}: {exc.strerror}; "
                             "set [recommend] cache_dir to a writable folder") from None
    return index, manifest, True
