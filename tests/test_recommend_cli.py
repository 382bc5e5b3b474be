"""`assistant parse`, `assistant recommend` and `assistant index` from the command line.

The config selects the model-free hashing embedder so the default catalog's
index builds in about a second; the real model is covered in test_recommend_model.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.cli import main


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("index-cache")  # shared: the index is built once for the module


@pytest.fixture()
def config(tmp_path, cache_dir) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[recommend]
embed_model = "hashing"
cache_dir = "{cache_dir}"
[preferences]
db_path = "{tmp_path / 'prefs.sqlite3'}"
""")
    return path


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_parse_json(capsys, config):
    code, out, _ = run(capsys, "--config", config, "parse", "hello", "suggest", "me", "a", "sad", "song", "--json")
    assert code == 0
    d = json.loads(out)
    assert 0.5 < d.pop("confidence") <= 1.0
    assert d == {"intent": "recommend", "slots": {"mood": "sad", "music_item": "song"},
                 "text": "hello suggest me a sad song"}


def test_recommend_json_from_the_default_catalog(capsys, config):
    code, out, _ = run(capsys, "--config", config, "recommend", "play someone like yu by adel", "--json", "--k", "3")
    assert code == 0
    d = json.loads(out)
    assert d["intent"] == "play" and d["slots"] == {"track": "someone like yu", "artist": "adel"}  # as heard
    assert (d["matches"]["track"]["name"], d["matches"]["artist"]["name"]) == ("Someone Like You", "Adele")
    assert len(d["items"]) == 3
    top = d["items"][0]
    assert (top["title"], top["artist"]) == ("Someone Like You", "Adele") and top["reasons"]
    code, out, _ = run(capsys, "--config", config, "recommend", "pause", "--json")
    assert code == 0 and json.loads(out)["items"] == []


def test_recommend_text_output_and_user(capsys, config):
    code, out, _ = run(capsys, "--config", config, "recommend", "recommend something", "--user", "cli-user")
    assert code == 0
    assert out.startswith("recommend (") and "): no slots" in out.splitlines()[0]
    assert " 1. " in out and "id s" in out


def test_index_build_then_info_reuses_the_cache(capsys, config):
    code, out, _ = run(capsys, "--config", config, "index", "build", "--force", "--json")
    assert code == 0
    first = json.loads(out)
    assert first["built_now"] and first["songs"] > 3000 and first["kind"] == "flat" and first["model"] == "hashing-256"
    code, out, err = run(capsys, "--config", config, "index", "info")
    assert code == 0 and "up to date (cached)" in out
    assert "catalog:" in err  # what was loaded, on stderr


def test_bad_inputs_are_one_line_errors(capsys, config, tmp_path):
    (tmp_path / "prefs.sqlite3").write_bytes(b"not a database" * 100)
    code, _, err = run(capsys, "--config", config, "recommend", "play adele")
    assert code == 2 and err.startswith("error: preference database") and err.count("\n") == 1
    code, _, err = run(capsys, "--config", config, "recommend", "play adele", "--k", "500")
    assert code == 2 and "error:" in err
    code, _, err = run(capsys, "--config", config, "index", "build", "--catalog", tmp_path / "missing.csv")
    assert code == 2 and "does not exist" in err
