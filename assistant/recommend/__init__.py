"""Song catalog, semantic index, ranking and the per-user preference store.

The public entry point is `assistant.recommend.service.RecommendService`
(see its module docstring for the API the daemon calls). Modules, one concern each:

- `song`: the `Song` model and its stable id; `loaders/`: CSV, JSONL and music
  folder readers with their `LoadReport`; `catalog`: merged catalog + sources;
- `mood`, `document`: audio features <-> mood words, the text embedded per song;
- `embedder`, `hashing_embedder`: request/document vectors;
- `vector_index`, `index_store`: faiss (flat or HNSW) and its cached manifest;
- `matcher`: fuzzy + phonetic name search (used by `assistant.nlu.gazetteer`);
- `arrays`, `ranker`: per-song columns and the scoring/diversity logic;
- `preferences`, `profile`: SQLite events and the taste computed from them;
- `cli_recommend`, `cli_index`: the `assistant recommend` / `assistant index` commands.

Nothing is loaded at import time.
"""
