"""Near-miss transcripts: a misheard verb, names split or joined differently, chit-chat that stays chit-chat.

Against the default catalog (index/default_catalog.csv), as the daemon runs.
"""

from __future__ import annotations

import pytest

from assistant.nlu.gazetteer import Gazetteer
from assistant.nlu.lenient import find_request
from assistant.nlu.parser import IntentParser
from assistant.recommend.catalog import DEFAULT_CATALOG
from assistant.recommend.loaders import load_source
from assistant.recommend.matcher import NameIndex


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return Gazetteer.from_songs(load_source(DEFAULT_CATALOG).songs)


@pytest.fixture(scope="module")
def parser(gazetteer) -> IntentParser:
    return IntentParser(gazetteer)


def _matched(result) -> dict[str, str]:
    return {e.kind: e.name for e in result.entities}


@pytest.mark.parametrize("text, names", [
    ("lay adele hello", {"artist": "Adele", "track": "Hello"}),
    ("i wanted to listen to coldplay", {"artist": "Coldplay"}),
    ("please play yellow by coldplay", {"artist": "Coldplay", "track": "Yellow"}),
    ("a play hello by adele", {"artist": "Adele", "track": "Hello"}),
    ("a hello by adele", {"artist": "Adele", "track": "Hello"}),
    ("the play adele", {"artist": "Adele"}),
    ("i play someone like you", {"track": "Someone Like You"}),
    ("pay counting stars by one republic", {"artist": "OneRepublic", "track": "Counting Stars"}),
    ("play one republic", {"artist": "OneRepublic"}),
    ("play blackeyed peas", {"artist": "Black Eyed Peas"}),
    ("i want to hear black eyed peas", {"artist": "Black Eyed Peas"}),
    # issue 23: garbled verbs and names alone
    ("but on counting stars", {"track": "Counting Stars"}),           # "put on", misheard
    ("tut on someone like you", {"track": "Someone Like You"}),
    ("hello my adele", {"artist": "Adele", "track": "Hello"}),       # "by", misheard
    ("some coldplay", {"artist": "Coldplay"}),
    ("please someone like you", {"track": "Someone Like You"}),
    ("ed sheeran", {"artist": "Ed Sheeran"}),                         # a name of two words alone
    ("the one piece of your heart", {"track": "Piece Of Your Heart"}),  # a garbled "play", a long title
])
def test_near_miss_requests_are_music_requests(parser, text, names):
    result = parser.parse(text)
    assert result.intent == "play", (result, parser.analyze(text))
    assert _matched(result) == names, result


@pytest.mark.parametrize("text", [
    "what time is it",
    "set a timer for ten minutes",
    "hello how are you",
    "what's the weather like today",
    "tell me a joke",
    "good morning",
    "turn on the lights",
    "wake me up at seven",
    "thank you",
    "what is your name",
    "hello",
    "i love you",
    "call my mom",
    "how is the traffic today",
    "call mom by five",
    "book a table by seven",
    "hot on the stove",
    "but on the other hand",
    "please help me",
    "some people say",
    "what is the one",
    "drive by the park",
    "i am by myself",
    "my name is john",
])
def test_chit_chat_with_song_title_words_is_not_a_play_command(parser, text):
    result = parser.parse(text)
    assert result.intent not in ("play", "recommend", "similar"), (result, parser.analyze(text))


@pytest.mark.parametrize("text", [
    "play something sad by adele",     # "sad" is a title too, but a mood here
    "play thinking out loud next",     # "Next" is an artist, but not of this song
])
def test_common_words_stay_words_in_near_miss_reading(parser, text):
    result = parser.parse(text)
    assert not any(e.heard in ("sad", "next") for e in result.entities), result


def test_find_request_needs_every_word_to_be_a_name_or_a_filler(gazetteer):
    assert [n.match.name for n in find_request("lay adele hello".split(), gazetteer)] == ["Adele", "Hello"]
    assert find_request("hello how are you".split(), gazetteer) == []
    assert find_request("set a timer for hello".split(), gazetteer) == []  # never with a non-music object
    assert find_request([], gazetteer) == []
    assert find_request(["play"] * 200, gazetteer) == []  # too long to be a near-miss command
    assert find_request("lay adele".split(), None) == []


def test_unknown_words_by_an_exact_artist_are_that_artist_with_the_title_heard(parser, gazetteer):
    # "can you play it out by travis scott", as a recognizer writes it
    result = parser.parse("can you plant it out by travis scott")
    assert result.intent == "play" and _matched(result) == {"artist": "Travis Scott"}, result
    assert result.slots["track"] == "plant it out"  # kept as heard, not replaced by a catalog title
    names = find_request("can you plant it out by travis scott".split(), gazetteer)
    assert [(n.kind, n.match is None) for n in names] == [("track", True), ("artist", False)]
    # too many unknown words, or an artist made of everyday words: not this shape
    assert find_request("one two three four five six by travis scott".split(), gazetteer) == []
    assert parser.parse("drive by the park").intent == "none"


def test_names_match_across_word_boundaries():
    index = NameIndex(["OneRepublic", "Black Eyed Peas", "Sia"])
    assert index.search("one republic", limit=1)[0].name == "OneRepublic"
    assert index.search("one republic", limit=1)[0].score == 1.0
    assert index.search("blackeyed peas", limit=1)[0].name == "Black Eyed Peas"
    assert index.exact("black eyedpeas").name == "Black Eyed Peas"
    assert index.exact("si a") is None  # too short to compare without spaces
    assert index.exact("") is None and index.exact("!!!") is None


def test_recommender_puts_the_split_name_first(gazetteer):
    # The ranker's name search uses the same index: the joined artist is an exact match.
    hits = gazetteer.match("one republic", "artist", limit=3)
    assert hits[0].name == "OneRepublic" and hits[0].how == "exact"
