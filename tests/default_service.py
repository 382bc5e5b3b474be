"""A RecommendService over the default catalog with the model-free HashingEmbedder (fast), for NLU + ranking tests."""

from __future__ import annotations

from pathlib import Path

from assistant.config import Config, PreferencesConfig, RecommendConfig
from assistant.recommend.catalog import DEFAULT_CATALOG, Catalog
from assistant.recommend.hashing_embedder import HashingEmbedder
from assistant.recommend.loaders import load_source
from assistant.recommend.service import RecommendService


def default_catalog_service(tmp: Path, k: int = 5) -> RecommendService:
    """Caches and the preference database under `tmp`; close it (or use it as a context manager)."""
    config = Config(recommend=RecommendConfig(cache_dir=str(tmp / "cache"), k=k),
                    preferences=PreferencesConfig(db_path=str(tmp / "prefs.sqlite3")))
    return RecommendService(config, catalog=Catalog.from_songs(load_source(DEFAULT_CATALOG).songs),
                            embedder=HashingEmbedder(64))
