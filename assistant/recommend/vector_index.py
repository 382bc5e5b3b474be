"""faiss index over song vectors: exact (flat) for small catalogs, HNSW for large.

Rows are catalog positions. Inner product on normalized vectors = cosine.
An HNSW index measures its own recall@10 against exact search when it is
built and raises `ef_search` until the recall reaches `min_recall`, so the
speed-up never silently costs accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RECALL_K = 10
RECALL_QUERIES = 200
RECALL_NOISE = 0.05  # recall queries are catalog vectors plus this much noise (a request is never a song)
MAX_EF_SEARCH = 4096


@dataclass(frozen=True)
class IndexOptions:
    """How the vector index is built."""

    flat_max_songs: int = 50_000  # above this, HNSW
    hnsw_m: int = 32  # graph degree
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 64  # starting value; raised until recall >= min_recall
    min_recall: float = 0.95
    seed: int = 0


def _faiss():
    import faiss

    return faiss


class VectorIndex:
    """A faiss index plus what kind it is and its measured recall."""

    def __init__(self, index, kind: str, recall_at_10: float | None = None, ef_search: int | None = None):
        self.index = index
        self.kind = kind
        self.recall_at_10 = recall_at_10
        self.ef_search = ef_search
        if kind == "hnsw" and ef_search:
            index.hnsw.efSearch = ef_search

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
        index = faiss.IndexHNSWFlat(d, options.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = options.hnsw_ef_construction
        index.add(vectors)
        built = cls(index, "hnsw", ef_search=options.hnsw_ef_search)
        built.tune_recall(vectors, options)
        return built

    def tune_recall(self, vectors: np.ndarray, options: IndexOptions) -> float:
        """Measure recall@10 of HNSW vs exact search; raise efSearch until >= min_recall."""
        queries = recall_queries(vectors, options.seed)
        truth = exact_top_k(vectors, queries, RECALL_K)
        ef = self.ef_search or options.hnsw_ef_search
        while True:
            self.index.hnsw.efSearch = ef
            _, found = self.index.search(queries, RECALL_K)
            recall = recall_at_k(truth, found)
            if recall >= options.min_recall or ef >= MAX_EF_SEARCH:
                break
            ef *= 2
        self.ef_search, self.recall_at_10 = ef, recall
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
    def load(cls, path, kind: str, recall_at_10: float | None = None, ef_search: int | None = None) -> "VectorIndex":
        return cls(_faiss().read_index(str(path)), kind, recall_at_10, ef_search)


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
