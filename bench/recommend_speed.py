"""Recommendation latency, index build speed and memory.

    .venv/bin/python bench/recommend_speed.py default [--runs 5] [--json OUT]
    .venv/bin/python bench/recommend_speed.py synthetic [--songs 1000000] [--json OUT]

default: `RecommendService.handle_text` on the shipped catalog with the model
warm, over a mix of requests (names, misheard names, moods, genres, eras,
free text, "more like this", "skip", profile-only), the request-embedding
and name-lookup caches cleared before every call, so every request pays for
the network (free text) and the fuzzy search.
Each run times every request 5 times; the table gives the median over runs of
the p50 and p95. Also: index build speed (all-MiniLM-L6-v2 over the catalog's
documents) and peak resident memory.

synthetic: a generated catalog of N songs (names from the default catalog's
vocabulary, random audio features, real genre names). Embedding a million
documents takes hours on two cores, so the song vectors are synthetic: each is
a real song document's embedding plus noise, normalized, which keeps the
neighbourhood structure of real vectors. The index is HNSW (recall@10 against
exact search measured and tuned to >= 0.95 at build). Requests use the real
model for their own text, the parser with a gazetteer over all N titles and
artists (trigram blocking), and the ranker.

Run on the project's 2-core CPU box with torch limited to 1 thread (the
daemon's setting). Wall-clock times depend on what else runs on the box (the
load average is recorded); the thread CPU time per request is reported too,
as the estimate for an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPEATS = 5
DEFAULT_QUERIES = (
    "hello suggest me a sad song", "play something sad by adele", "play someone like yu by adel",
    "play shape of you", "play starboy by the weekend", "put on some taylor swift", "play some jazz",
    "play rock music from the nineties", "play the latest album by taylor swift", "songs about summer love",
    "play something to dance to", "i'm feeling down", "recommend something", "more like this", "skip",
    "play eminen", "play hips don't lie by shakira on spotify", "could you please play some relaxing music",
)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_default(runs: int) -> dict:
    from assistant.config import Config, PreferencesConfig, RecommendConfig
    from assistant.recommend.index_store import build_index, catalog_documents, index_options
    from assistant.recommend.service import RecommendService

    tmp = Path(tempfile.mkdtemp(prefix="speed-"))
    start = time.perf_counter()
    service = RecommendService(Config(preferences=PreferencesConfig(db_path=str(tmp / "p.sqlite3"))),
                               progress=sys.stderr.isatty())
    startup_s = time.perf_counter() - start
    playing = service.catalog.songs[0].id
    # A listener with some history, so profile scoring runs too.
    for song in service.catalog.songs[:30:3]:
        service.feedback("speed", song.id, "liked")
    p50s, p95s, cpu50s, cpu95s = [], [], [], []
    load_before = os.getloadavg()[0]
    for _ in range(runs):
        times, cpu = [], []
        for text in DEFAULT_QUERIES:
            for _ in range(REPEATS):
                service.embedder.clear_cache()
                service.parser.gazetteer.clear_cache()
                t, c = time.perf_counter(), time.thread_time()
                service.handle_text(text, user="speed", now_playing=playing)
                times.append((time.perf_counter() - t) * 1000)
                cpu.append((time.thread_time() - c) * 1000)
        p50s.append(percentile(times, 0.5))
        p95s.append(percentile(times, 0.95))
        cpu50s.append(percentile(cpu, 0.5))
        cpu95s.append(percentile(cpu, 0.95))
    load_after = os.getloadavg()[0]
    rss_warm = rss_mb()
    docs = catalog_documents(service.catalog)
    build_s = build_index(docs, service.embedder, index_options(RecommendConfig()), progress=False)[1]
    import torch

    return {"machine": machine(), "torch_threads": torch.get_num_threads(), "songs": len(service.catalog),
            "startup_s": round(startup_s, 2), "index_cached_at_start": not service.index_built,
            "p50_ms": round(statistics.median(p50s), 2), "p95_ms": round(statistics.median(p95s), 2),
            "p50_ms_runs": [round(x, 2) for x in p50s], "p95_ms_runs": [round(x, 2) for x in p95s],
            "cpu_p50_ms": round(statistics.median(cpu50s), 2), "cpu_p95_ms": round(statistics.median(cpu95s), 2),
            "load_average": [round(load_before, 2), round(load_after, 2)],
            "requests_per_run": len(DEFAULT_QUERIES) * REPEATS, "runs": runs,
            "index_build_songs_per_s": round(len(docs) / build_s, 1), "index_build_s": round(build_s, 1),
            "rss_peak_mb": round(rss_warm, 1)}


# ----------------------------------------------------------------- synthetic
def synthetic_songs(n: int, seed: int = 0):
    """N songs with titles and artists made from the default catalog's words."""
    from assistant.recommend.catalog import DEFAULT_CATALOG
    from assistant.recommend.loaders import load_source
    from assistant.recommend.song import Song

    base = load_source(DEFAULT_CATALOG).songs
    rng = np.random.default_rng(seed)
    words = sorted({w for s in base for w in s.title.split() if w.isalpha() and len(w) > 2})
    first = sorted({a.split()[0] for s in base for a in s.artists if a.split() and a.split()[0].isalpha()})
    last = sorted({a.split()[-1] for s in base for a in s.artists if len(a.split()) > 1 and a.split()[-1].isalpha()})
    genres = sorted({g for s in base for g in s.genres})
    n_artists = max(100, n // 20)
    artists = [f"{first[rng.integers(len(first))]} {last[rng.integers(len(last))]}" for _ in range(n_artists)]
    artist_genres = [tuple(genres[j] for j in rng.choice(len(genres), 3, replace=False)) for _ in range(n_artists)]
    feats = rng.random((n, 5)).astype(np.float32)
    title_len = rng.integers(1, 5, n)
    word_ids = rng.integers(0, len(words), (n, 4))
    artist_ids = rng.integers(0, n_artists, n)
    songs = []
    for i in range(n):
        title = " ".join(words[j] for j in word_ids[i, :title_len[i]])
        a = int(artist_ids[i])
        songs.append(Song(id=f"x{i:07d}", title=title, artist=artists[a], genres=artist_genres[a],
                          year=int(1960 + rng.integers(0, 64)), valence=float(feats[i, 0]), energy=float(feats[i, 1]),
                          danceability=float(feats[i, 2]), acousticness=float(feats[i, 3]),
                          tempo_bpm=float(60 + 140 * feats[i, 4]), popularity=float(rng.integers(0, 100))))
    return base, songs


def synthetic_vectors(base_vectors: np.ndarray, n: int, noise: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, base_vectors.shape[1]), dtype=np.float32)
    chunk = 100_000
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        v = base_vectors[rng.integers(0, len(base_vectors), m)] + rng.normal(0, noise, (m, base_vectors.shape[1])).astype(np.float32)
        out[start:start + m] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def bench_synthetic(n: int, runs: int) -> dict:
    import torch

    from assistant.config import Config
    from assistant.nlu.gazetteer import Gazetteer
    from assistant.nlu.parser import IntentParser
    from assistant.recommend.arrays import CatalogArrays
    from assistant.recommend.catalog import Catalog
    from assistant.recommend.embedder import Embedder
    from assistant.recommend.index_store import ensure_index
    from assistant.recommend.preferences import Event
    from assistant.recommend.profile import build_profile
    from assistant.recommend.ranker import Ranker, RankOptions
    from assistant.recommend.vector_index import IndexOptions, VectorIndex

    timings: dict[str, float] = {}
    t = time.perf_counter()
    base, songs = synthetic_songs(n)
    catalog = Catalog.from_songs(songs)
    timings["catalog_s"] = time.perf_counter() - t
    embedder = Embedder("")
    base_index, _, _ = ensure_index(Catalog.from_songs(base), embedder, Config().recommend, progress=False)
    base_vectors = base_index.vectors(np.arange(len(base_index)))
    t = time.perf_counter()
    vectors = synthetic_vectors(base_vectors, n, noise=0.03)
    index = VectorIndex.build(vectors, IndexOptions(flat_max_songs=Config().recommend.flat_max_songs))
    timings["index_build_s"] = time.perf_counter() - t
    del vectors
    t = time.perf_counter()
    gazetteer = Gazetteer.from_songs(catalog.songs)
    timings["gazetteer_s"] = time.perf_counter() - t
    t = time.perf_counter()
    arrays = CatalogArrays(catalog)
    timings["arrays_s"] = time.perf_counter() - t
    parser = IntentParser(gazetteer)
    ranker = Ranker(catalog, arrays, index, embedder, RankOptions(), gazetteer=gazetteer)
    ranker.warm()
    rng = random.Random(0)
    liked = [Event(i, "u", catalog.songs[rng.randrange(n)].id, "liked", time.time() - 3600 * i) for i in range(20)]
    profile = build_profile("u", liked, catalog, index.vectors, half_life_days=30, recent_n=20)
    picks = [catalog.songs[rng.randrange(n)] for _ in range(10)]
    queries = ([f"play {s.title.lower()} by {s.artist.lower()}" for s in picks[:4]]
               + [f"play {s.artist.lower()}" for s in picks[4:6]]
               + ["hello suggest me a sad song", "play some rock from the nineties", "recommend something",
                  "more like this", "songs about summer love", "play something calm"])
    for q in queries:  # warm-up
        ranker.rank(parser.parse(q), profile, picks[0].id)
    p50s, p95s, cpu50s, cpu95s, parse_ms = [], [], [], [], []
    load_before = os.getloadavg()[0]
    for _ in range(runs):
        times, cpu = [], []
        for q in queries:
            for _ in range(REPEATS):
                embedder.clear_cache()
                gazetteer.clear_cache()
                t, c = time.perf_counter(), time.thread_time()
                intent = parser.parse(q)
                t_parse = time.perf_counter()
                ranker.rank(intent, profile, picks[0].id)
                times.append((time.perf_counter() - t) * 1000)
                cpu.append((time.thread_time() - c) * 1000)
                parse_ms.append((t_parse - t) * 1000)
        p50s.append(percentile(times, 0.5))
        p95s.append(percentile(times, 0.95))
        cpu50s.append(percentile(cpu, 0.5))
        cpu95s.append(percentile(cpu, 0.95))
    load_after = os.getloadavg()[0]
    return {"machine": machine(), "torch_threads": torch.get_num_threads(), "songs": n,
            "vectors": "synthetic (real document embeddings + N(0, 0.03) noise, normalized)",
            "index": index.kind, "recall_at_10": index.recall_at_10, "search_effort": index.search_effort,
            "p50_ms": round(statistics.median(p50s), 2), "p95_ms": round(statistics.median(p95s), 2),
            "parse_p50_ms": round(statistics.median(parse_ms), 2), "runs": runs,
            "p50_ms_runs": [round(x, 2) for x in p50s], "p95_ms_runs": [round(x, 2) for x in p95s],
            "cpu_p50_ms": round(statistics.median(cpu50s), 2), "cpu_p95_ms": round(statistics.median(cpu95s), 2),
            "load_average": [round(load_before, 2), round(load_after, 2)],
            **{k: round(v, 1) for k, v in timings.items()}, "rss_peak_mb": round(rss_mb(), 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("default", "synthetic"))
    ap.add_argument("--songs", type=int, default=1_000_000, help="synthetic catalog size")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    result = bench_default(args.runs) if args.mode == "default" else bench_synthetic(args.songs, args.runs)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
