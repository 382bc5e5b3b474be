import pytest

from assistant.asr.text import BLANK_ID, SPACE_TOKEN, TextTransform, normalize_text
from assistant.errors import AssistantError


@pytest.mark.parametrize("raw, expected", [
    ("Beyoncé & Jay-Z", "beyonce and jay z"),
    ("Play 22 by Taylor Swift!", "play twenty two by taylor swift"),
    ("Don't Stop Me Now", "don't stop me now"),
    ("hits of the 80s", "hits of the eighties"),
    ("songs from 1999", "songs from nineteen ninety nine"),
    ("hits of the 2000s", "hits of the two thousands"),
    ("the 1900s and 2010s", "the nineteen hundreds and twenty tens"),
    ("the 2nd song", "the second song"),
    ("  multiple   spaces\tand\nlines ", "multiple spaces and lines"),
    ("'quoted'", "quoted"),
    ("Motörhead — Ace of Spades", "motorhead ace of spades"),
    ("🎵🎵", ""),
    ("", ""),
])
def test_normalize_text(raw, expected):
    assert normalize_text(raw) == expected


def test_vocabulary_layout():
    t = TextTransform()
    assert t.char_map["<blank>"] == BLANK_ID == 0
    assert t.char_map[SPACE_TOKEN] == 1
    assert t.char_map["a"] == 2 and t.char_map["z"] == 27 and t.char_map["'"] == 28
    assert t.num_classes == 29


@pytest.mark.parametrize("text", ["hello suggest me a sad song", "don't stop", "a", "zz top's"])
def test_round_trip(text):
    t = TextTransform()
    assert t.int_to_text(t.text_to_int(text)) == text


def test_int_to_text_skips_blanks():
    t = TextTransform()
    assert t.int_to_text([0, t.char_map["h"], 0, t.char_map["i"], 0]) == "hi"


@pytest.mark.parametrize("bad", ["Hello", "50 cent", "café", "a-b"])
def test_unknown_character_is_a_clear_error(bad):
    with pytest.raises(AssistantError, match="expected only a-z"):
        TextTransform().text_to_int(bad)
