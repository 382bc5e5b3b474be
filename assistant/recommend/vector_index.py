"""faiss index over song vectors: exact (flat) for small catalogs, IVF or HNSW for large.

Rows are catalog positions. Inner product on normalized vectors = cosine.
An approximate index measures its own recall@10 against exact search when it
is built and raises its search effort (IVF `nprobe`, HNSW `efSearch`) until
the recall reaches `min_recall`, so the speed-up never silently costs accuracy.

IVF is the default for large catalogs: on a 2-core CPU it builds a million
songs in a minute or two (k-means on a sample, then BLAS assignment), where
HNSW needs tens of minutes; both answer in a few milliseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

RECALL_K = 10
RECALL_QUERIES = 200
RECALL_NOISE = 0.05  # recall queries are catalog vectors plus this much noise (a request is never a song)
MAX_EF_SEARCH = 4096
APPROXIMATE_KINDS = ("ivf", "hnsw")
IVF_TRAIN_PER_LIST = 40  # k-means sample: this many vectors per list
IVF_MIN_LISTS = 64


@dataclass(frozen=True)
class IndexOptions:
    """How the vector index is built."""

    flat_max_songs: int = 50_000  # above this, an approximate index
    approximate: str = "ivf"  # "ivf" or "hnsw"
    hnsw_m: int = 32  # graph degree
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 64  # starting value; raised until recall >= min_recall
    ivf_nprobe: int = 8  # starting value; raised until recall >= min_recall
    min_recall: float = 0.95
    seed: int = 0


def _faiss():
    import faiss

    return faiss


def ivf_lists(n: int) -> int:
    """Number of IVF lists for n vectors: about sqrt(n)."""
    return max(IVF_MIN_LISTS, int(math.sqrt(n)))


class VectorIndex:
    """A faiss index plus its kind, its measured recall@10 and search effort."""

    def __init__(self, index, kind: str, recall_at_10: float | None = None, search_effort: int | None = None):
        self.index = index
        self.kind = kind
        self.recall_at_10 = recall_at_10
        self.search_effort = search_effort
        if kind == "ivf":
            try:
                index.make_direct_map()  # rows -> vectors for reconstruct
            except RuntimeError:
                pass
        if search_effort:
            self._set_effort(search_effort)

    def _set_effort(self, effort: int) -> None:
        if self.kind == "hnsw":
            self.index.hnsw.efSearch = effort
        elif self.kind == "ivf":
            self.index.nprobe = effort

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def dimension(self) -> int:
        return int(self.index.d)

    @classmethod
    def build(cls, vectors: np.ndarray, options: IndexOptions = IndexOptions()) -> "VectorIndex":
        faiss = _faiss()
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n, d = vectors.shape
        if n <= options.flat_max_songs:
            index = faiss.IndexFlatIP(d)
            index.add(vectors)
            return cls(index, "flat")
        if options.approximate not in APPROXIMATE_KINDS:
            raise ValueError(f"approximate index {options.approximate!r}: expected one of {APPROXIMATE_KINDS}")
        if options.approximate == "hnsw":
            index = faiss.IndexHNSWFlat(d, options.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = options.hnsw_ef_construction
            index.add(vectors)
            built = cls(index, "hnsw", search_effort=options.hnsw_ef_search)
        else:
            lists = ivf_lists(n)
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, lists, faiss.METRIC_INNER_PRODUCT)
            rng = np.random.default_rng(options.seed)
            sample = vectors[rng.choice(n, size=min(n, lists * IVF_TRAIN_PER_LIST), replace=False)]
            index.train(sample)
            index.add(vectors)
            built = cls(index, "ivf", search_effort=options.ivf_nprobe)
        built.tune_recall(vectors, options)
        return built

    def _max_effort(self) -> int:
        return int(self.index.nlist) if self.kind == "ivf" else MAX_EF_SEARCH

    def tune_recall(self, vectors: np.ndarray, options: IndexOptions) -> float:
        """Measure recall@10 against exact search; raise the search effort until >= min_recall."""
        queries = recall_queries(vectors, options.seed)
        truth = exact_top_k(vectors, queries, RECALL_K)
        effort = self.search_effort or 8
        while True:
            self._set_effort(effort)
            _, found = self.index.search(queries, RECALL_K)
            recall = recall_at_k(truth, found)
            if recall >= options.min_recall or effort >= self._max_effort():
                break
            effort = min(effort * 2, self._max_effort())
        self.search_effort, self.recall_at_10 = effort, recall
        return recall

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows), each (n_queries, k); missing results have row -1."""
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = max(1, min(k, len(self)))
        return self.index.search(q, k)

    def vectors(self, rows) -> np.ndarray:
        """Stored vectors of some rows, (len(rows), dimension)."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self.index.reconstruct_batch(rows)

    def save(self, path) -> None:
        _faiss().write_index(self.index, str(path))

    @classmethod
    def load(cls, path, kind: str, recall_at_10: float | None = None,
             search_effort: int | None = None) -> "VectorIndex":
        return cls(_faiss().read_index(str(path)), kind, recall_at_10, search_effort)


def recall_queries(vectors: np.ndarray, seed: int = 0, n: int = RECALL_QUERIES) -> np.ndarray:
    """Noisy copies of random catalog vectors, normalized."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(vectors), size=min(n, len(vectors)), replace=False)
    q = vectors[rows] + rng.normal(0, RECALL_NOISE, size=(len(rows), vectors.shape[1])).astype(np.float32)
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int, chunk: int = 100_000) -> np.ndarray:
    """Exact top-k rows by inner product, in chunks so a million vectors fit in memory."""
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_rows = np.zeros((len(queries), 0), dtype=np.int64)
    for start in range(0, len(vectors), chunk):
        scores = queries @ vectors[start:start + chunk].T
        top = np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k]
        best_scores = np.concatenate([best_scores, np.take_along_axis(scores, top, axis=1)], axis=1)
        best_rows = np.concatenate([best_rows, top + start], axis=1)
        keep = np.argsort(-best_scores, axis=1)[:, :k]
        best_scores = np.take_along_axis(best_scores, keep, axis=1)
        best_rows = np.take_along_axis(best_rows, keep, axis=1)
    return best_rows


def recall_at_k(truth: np.ndarray, found: np.ndarray) -> float:
    """Mean fraction of the exact top-k found."""
    hits = sum(len(set(t.tolist()) & set(f.tolist())) for t, f in zip(truth, found))
    return hits / truth.size if truth.size else 1.0
