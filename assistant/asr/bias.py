"""Names the final decoding is biased towards: the configured catalog's titles, artists and genres."""

from __future__ import annotations

from assistant.config import Config


def catalog_phrases(cfg: Config) -> list[str]:
    """Titles, artists and genres of the catalog the recommender serves (empty until one exists)."""
    try:
        from assistant.recommend.catalog import load_catalog_names  # the recommender owns catalog loading
    except ImportError:
        return []
    return list(load_catalog_names(cfg))
