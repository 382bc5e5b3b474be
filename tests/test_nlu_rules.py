"""The rule grammar (`RuleParser`, `[nlu] learned = false`): the seed's examples, player controls,
catalog-aware names, odd input. Parse speed is measured in bench/nlu_accuracy.py, not asserted here."""

from __future__ import annotations

import json

import pytest

from assistant.nlu.gazetteer import Gazetteer
from assistant.nlu.intent import INTENTS, IntentResult
from assistant.nlu.rules import RuleParser as IntentParser
from assistant.nlu.years import year_range
from assistant.recommend.catalog import DEFAULT_CATALOG
from assistant.recommend.loaders import load_source


@pytest.fixture(scope="module")
def parser() -> IntentParser:
    return IntentParser(Gazetteer.from_songs(load_source(DEFAULT_CATALOG).songs))


@pytest.mark.parametrize("text, intent, slots", [
    ("hello suggest me a sad song", "recommend", {"mood": "sad", "music_item": "song"}),
    ("play something sad by adele", "play", {"mood": "sad", "artist": "Adele"}),
    ("play someone like yu by adel", "play", {"track": "Someone Like You", "artist": "Adele"}),
    ("play someone like you", "play", {"track": "Someone Like You"}),
    ("put on some taylor swift", "play", {"artist": "Taylor Swift"}),
    ("play starboy by the weekend", "play", {"track": "Starboy", "artist": "The Weeknd"}),
    ("play shape of you", "play", {"track": "Shape of You"}),
    ("play eminen", "play", {"artist": "Eminem"}),
    ("could you please play some relaxing jazz", "play", {"mood": "calm", "genre": "jazz"}),
    ("play some rock music from the nineties", "play", {"genre": "rock", "year": "nineties"}),
    ("play adele's latest album", "play", {"artist": "Adele", "sort": "latest", "music_item": "album"}),
    ("play my chill playlist on spotify", "play", {"playlist": "chill", "service": "spotify"}),
    ("i'm feeling down", "recommend", {"mood": "sad"}),
    ("sad songs", "recommend", {"mood": "sad", "music_item": "songs"}),
    ("songs about summer love", "recommend", {"music_item": "songs"}),
    ("more like this", "similar", {}),
    ("play songs like hello", "similar", {"track": "Hello"}),
    ("skip", "next", {}),
    ("next song please", "next", {}),
    ("play the next song", "next", {}),
    ("go back to the previous song", "previous", {}),
    ("pause the music", "pause", {}),
    ("resume", "resume", {}),
    ("stop", "stop", {}),
    ("i love this song", "like", {"music_item": "song"}),
    ("i don't like this", "dislike", {}),
    ("thumbs down", "dislike", {}),
    ("turn it up", "volume_up", {}),
    ("it's too loud", "volume_down", {}),
    ("what's playing", "what_is_playing", {}),
    ("who sings this", "what_is_playing", {}),
])
def test_examples(parser, text, intent, slots):
    result = parser.parse(text)
    assert result.intent == intent, result
    assert result.slots == slots, result
    assert 0.0 < result.confidence <= 1.0


def test_titles_that_contain_control_words_stay_play_requests(parser):
    result = parser.parse("play don't stop me now")
    assert result.intent == "play" and result.heard.get("track") == "don't stop me now"
    assert parser.parse("play blinding lights by the weeknd").slots["artist"] == "The Weeknd"


@pytest.mark.parametrize("text", [
    "what's the weather like", "set an alarm for seven", "tell me a joke", "turn on the lights",
    "play the next episode of my podcast", "play the radio", "i want pizza", "a lent sa wist me a saiso",
    "Привет, как дела?", "天気はどうですか",
])
def test_non_music_requests_are_none(parser, text):
    assert parser.parse(text).intent == "none"


@pytest.mark.parametrize("text", ["", "   ", "😀🎵🔥", "x" * 5000, "play " + "la " * 2000, "\x00\x01"])
def test_odd_input_gets_a_defined_answer(parser, text):
    result = parser.parse(text)
    assert result.intent in INTENTS
    json.dumps(result.to_dict())  # always serializable
    assert len(result.text) <= 500


def test_empty_text_is_none_with_full_confidence(parser):
    assert parser.parse("").to_dict() == {"intent": "none", "slots": {}, "confidence": 1.0, "text": ""}


def test_mangled_names_report_what_was_heard(parser):
    result = parser.parse("play someone like yu by adel")
    d = result.to_dict()
    assert d["heard"] == {"track": "someone like yu", "artist": "adel"}
    assert {e.kind for e in result.entities} == {"artist", "track"}
    track = next(e for e in result.entities if e.kind == "track")
    assert track.song_ids  # resolved to catalog songs


def test_without_catalog_the_grammar_still_fills_slots():
    result = IntentParser().parse("play yo ho by the new york pops on youtube")
    assert result.intent == "play"
    assert result.slots == {"service": "youtube", "artist": "the new york pops", "track": "yo ho"}
    assert result.entities == ()  # nothing to resolve against


def test_grammar_only_slots_snips_style():
    p = IntentParser()
    r = p.parse("play the song aspro mavro from bill szymczyk on youtube")
    assert r.slots["service"] == "youtube" and r.slots["artist"] == "bill szymczyk"
    assert r.slots["track"] == "aspro mavro" and r.slots["music_item"] == "song"
    r = p.parse("play some seventies music by janne puurtinen")
    assert r.slots == {"year": "seventies", "artist": "janne puurtinen"}


@pytest.mark.parametrize("span, expected", [
    ("eighties", (1980, 1989)), ("the nineteen eighties", (1980, 1989)), ("nineteen ninety nine", (1999, 1999)),
    ("two thousand and five", (2005, 2005)), ("twenty ten", (2010, 2010)), ("two thousand", (2000, 2000)),
    ("banana", None),
])
def test_year_ranges(span, expected):
    assert year_range(span) == expected


def test_intent_result_rejects_unknown_intents():
    with pytest.raises(ValueError):
        IntentResult("dance")
