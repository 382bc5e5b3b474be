"""NLU data loaders, `assistant nlu train`, model files, and the service's use of exclusions and answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.cli import main
from assistant.config import Config, PreferencesConfig, RecommendConfig
from assistant.errors import AssistantError
from assistant.nlu import datasets as D
from assistant.nlu.model import NluModel
from assistant.nlu.parser import IntentParser
from assistant.recommend.catalog import Catalog
from assistant.recommend.hashing_embedder import HashingEmbedder
from assistant.recommend.service import RecommendService
from assistant.recommend.song import make_song

DATA = Path(__file__).resolve().parent / "fixtures" / "nlu"


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- data


def test_snips_examples_keep_their_own_tags():
    (ex, *_) = D.load_snips(DATA / "snips-2017" / "train_PlayMusic_full.json", "PlayMusic")
    assert ex.intent == "play" and ex.source == "snips"
    assert D.slot_set(ex.tokens, ex.tags) == {("track", "yo ho"), ("artist", "the new york pops"), ("service", "youtube")}
    assert ex.gold == frozenset(D.slot_set(ex.tokens, ex.tags))


def test_hwu_and_slurp_are_mapped_to_our_intents_and_conventions():
    rows = {e.text: e for e in D.load_hwu(DATA / "hwu64" / "train")}
    adele = rows["play adele please"]
    assert adele.intent == "play" and adele.tags == ("O", "B-artist", "O")
    old = rows["play old nineties jazz music"]
    assert ("year", "nineties") in D.slot_set(old.tokens, old.tags)  # our convention for training
    assert ("genre", "nineties") in old.gold  # the benchmark scores the annotation as it is
    assert rows["wake me up at seven am"].intent == "none" and set(rows["wake me up at seven am"].tags) == {"O"}
    assert rows["turn on shuffle"].intent is None  # music_settings: no counterpart, never trained on
    slurp = D.load_slurp(DATA / "slurp" / "devel.jsonl")
    assert [e.label for e in slurp] == ["play_music", "weather_query"]  # the malformed "music" label is skipped
    assert D.slot_set(slurp[0].tokens, slurp[0].tags) == {("track", "thriller"), ("artist", "michael jackson")}


def test_a_missing_data_folder_is_named(tmp_path):
    with pytest.raises(AssistantError, match="missing .*snips-2017"):
        D.load_corpus(tmp_path)


# ---------------------------------------------------------------- training CLI


@pytest.mark.slow
def test_nlu_train_writes_a_model_the_parser_and_cli_use(capsys, tmp_path):
    out = tmp_path / "model"
    code, text, err = run(capsys, "nlu", "train", "--data", DATA, "--out", out)
    assert code == 0, err
    assert {p.name for p in out.iterdir()} == {"slots.crfsuite", "intents.npz", "meta.json", "common_words.txt"}
    meta = json.loads((out / "meta.json").read_text())
    assert meta["sentences"]["snips"] == 9 and meta["sentences"]["templates"] > 1000
    assert "written" in text
    model = NluModel.load(out)
    assert "none" in model.classifier.intents and 0.3 <= model.classifier.temperature <= 3.0
    parser = IntentParser(model=model)
    assert parser.parse("play something sad by adele").intent == "play"
    assert parser.parse("pause the music").intent == "pause"
    config = tmp_path / "config.toml"
    config.write_text(f'[nlu]\nmodel = "{out}"\n[recommend]\nembed_model = "hashing"\n')
    code, text, _ = run(capsys, "--config", config, "parse", "--no-catalog", "play", "some", "jazz", "--json")
    assert code == 0 and json.loads(text)["intent"] == "play"


def test_common_words_are_frequent_and_almost_never_in_a_name():
    from assistant.nlu.train import common_words

    def ex(text, tags):
        return D.Example(tuple(text.split()), tuple(tags.split()), "play", "test")

    rows = [ex("play next song", "O O O")] * 25 + [ex("play the next episode", "O O O O")] * 5 \
        + [ex("play hello by adele", "O B-track O B-artist")] * 30
    words = common_words(rows, min_count=20, max_name_share=0.05)
    assert "next" in words and "play" in words and "by" in words
    assert "hello" not in words and "adele" not in words and "episode" not in words  # names; too rare


def test_a_model_folder_without_common_words_still_loads(tmp_path):
    import shutil

    from assistant.nlu.model import SHIPPED_MODEL_DIR

    for name in ("slots.crfsuite", "intents.npz", "meta.json"):
        shutil.copy(SHIPPED_MODEL_DIR / name, tmp_path / name)
    assert NluModel.load(tmp_path).common_words == frozenset()
    assert "next" in NluModel.load().common_words


def test_nlu_train_without_data_says_what_is_expected(capsys, tmp_path):
    code, _, err = run(capsys, "nlu", "train", "--data", tmp_path / "nowhere", "--out", tmp_path / "m")
    assert code == 2 and err.startswith("error: NLU data folder") and "--templates-only" in err
    code, _, err = run(capsys, "nlu")
    assert code == 2 and "expected an action: train" in err


def test_a_damaged_model_folder_is_a_one_line_error(tmp_path):
    with pytest.raises(AssistantError, match="no meta.json"):
        NluModel.load(tmp_path)
    (tmp_path / "meta.json").write_text('{"format": 1}')
    (tmp_path / "slots.crfsuite").write_bytes(b"not a model")
    with pytest.raises(AssistantError, match="slot model .* cannot be read"):
        NluModel.load(tmp_path)
    (tmp_path / "meta.json").write_text('{"format": 99}')
    with pytest.raises(AssistantError, match="format 99, expected 1"):
        NluModel.load(tmp_path)


def test_config_names_a_missing_model_folder(tmp_path):
    from assistant.config import load_config

    path = tmp_path / "config.toml"
    path.write_text('[nlu]\nmodel = "/no/such/folder"\n')
    with pytest.raises(AssistantError, match=r"\[nlu\] model"):
        load_config(path)


# ---------------------------------------------------------------- the service


def _catalog() -> Catalog:
    songs = [
        make_song("Hello", "Adele", genres=("pop", "soul"), year=2015, valence=0.2, energy=0.4, popularity=90.0),
        make_song("Someone Like You", "Adele", genres=("pop", "soul"), year=2011, valence=0.15, energy=0.3, popularity=85.0),
        make_song("Skyfall", "Adele", genres=("pop", "soul"), year=2012, valence=0.3, energy=0.5, popularity=80.0),
        make_song("Jolene", "Dolly Parton", genres=("country",), year=1973, valence=0.6, energy=0.5, popularity=75.0),
        make_song("Wagon Wheel", "Darius Rucker", genres=("country", "country pop"), year=2013, valence=0.8,
                  energy=0.7, popularity=70.0, album="True Believers"),
        make_song("Happy", "Pharrell Williams", genres=("pop",), year=2013, valence=0.95, energy=0.8, popularity=88.0),
        make_song("Numb", "Linkin Park", genres=("rock", "nu metal"), year=2003, valence=0.2, energy=0.9, popularity=84.0),
    ]
    return Catalog.from_songs(songs)


@pytest.fixture()
def service(tmp_path):
    config = Config(recommend=RecommendConfig(cache_dir=str(tmp_path / "cache"), k=10),
                    preferences=PreferencesConfig(db_path=str(tmp_path / "prefs.sqlite3")))
    with RecommendService(config, catalog=_catalog(), embedder=HashingEmbedder(64)) as svc:
        yield svc


def _titles(rec) -> set[str]:
    return {i.song.title for i in rec.items}


def test_the_ranker_leaves_out_what_a_request_excludes(service):
    intent, rec = service.handle_text("play adele but not hello", user="x")
    assert intent.exclude == {"track": "Hello"} and "Hello" not in _titles(rec)
    assert {"Someone Like You", "Skyfall"} <= _titles(rec)
    _, rec = service.handle_text("anything but country", user="x")
    assert rec.items and not {"Jolene", "Wagon Wheel"} & _titles(rec)
    assert "left out: genre country" in rec.note
    _, rec = service.handle_text("don't play adele", user="x")
    assert rec.items and all(i.song.artist != "Adele" for i in rec.items)


def test_feedback_counts_only_for_the_song_it_is_about(service):
    jolene = next(s for s in service.catalog.songs if s.title == "Jolene")
    hello = next(s for s in service.catalog.songs if s.title == "Hello")
    service.handle_text("don't play adele", user="fb", now_playing=jolene.id)  # Jolene is not skipped
    service.handle_text("i don't like this one", user="fb", now_playing=jolene.id)
    service.handle_text("don't play adele", user="fb", now_playing=hello.id)  # Hello is
    assert [(e.kind, e.song_id) for e in service.store.events("fb")] == [("skipped", hello.id), ("disliked", jolene.id)]


def test_questions_are_answered_from_the_catalog(service):
    wheel = next(s for s in service.catalog.songs if s.title == "Wagon Wheel")
    cases = {
        "what's playing": 'This is "Wagon Wheel" by Darius Rucker (from True Believers, 2013).',
        "who sings this": '"Wagon Wheel" is by Darius Rucker.',
        "what album is this from": '"Wagon Wheel" by Darius Rucker is on the album True Believers.',
        "when did this come out": '"Wagon Wheel" by Darius Rucker came out in 2013.',
        "what genre is this": '"Wagon Wheel" by Darius Rucker is country, country pop.',
    }
    for text, expected in cases.items():
        intent, rec = service.handle_text(text, user="q", now_playing=wheel.id)
        assert intent.intent == "what_is_playing" and rec is None
        answer = service.answer(intent, wheel.id)
        assert answer.text == expected, text
        assert answer.to_dict()["song"]["id"] == wheel.id
    intent, _ = service.handle_text("what album is this from", user="q")
    answer = service.answer(intent, None)
    assert answer.song is None and "Nothing is playing" in answer.text
    hello = next(s for s in service.catalog.songs if s.title == "Hello")
    intent, _ = service.handle_text("what album is this from", user="q")
    assert "does not say which album" in service.answer(intent, hello.id).text
    intent, _ = service.handle_text("who sings someone like you", user="q")
    assert service.answer(intent, wheel.id).text == '"Someone Like You" is by Adele.'  # the named song, not the playing one
    assert service.answer(service.parse("play jolene"), wheel.id) is None


def test_recommend_cli_prints_answers_and_exclusions(capsys, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f'[recommend]\nembed_model = "hashing"\ncache_dir = "{tmp_path / "cache"}"\n'
                      f'[preferences]\ndb_path = "{tmp_path / "prefs.sqlite3"}"\n')
    code, out, _ = run(capsys, "--config", config, "recommend", "who", "sings", "this", "--now-playing", "nope")
    assert code == 0 and "answer: Nothing is playing" in out
    code, out, _ = run(capsys, "--config", config, "recommend", "anything but country", "--json", "--k", "5")
    d = json.loads(out)
    assert code == 0 and d["exclude"] == {"genre": "country"} and len(d["items"]) == 5
    assert "left out: genre country" in d["note"]
