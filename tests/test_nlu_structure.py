"""Structure from context: whole dotted/hyphenated names, albums after "album"/"record", sort words the ranker honours."""

from __future__ import annotations

import pytest
from default_service import default_catalog_service

from assistant.nlu.structure import album_after_cue, keep_whole, letter_runs, whole_names, without_possessive


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    with default_catalog_service(tmp_path_factory.mktemp("structure")) as svc:
        yield svc


def test_whole_names_and_letter_runs():
    assert whole_names("play Run-D.M.C. and R.E.M. now") == [["run", "d", "m", "c"], ["r", "e", "m"]]
    assert whole_names("play adele") == [] and whole_names("") == []
    assert letter_runs("play b t s now".split()) == [(1, 4)]
    assert letter_runs("play a b".split()) == []  # two letters: "a b" is too often just words
    tokens = "play run d m c".split()
    assert keep_whole([("mood", 1, 2)], tokens, [["run", "d", "m", "c"]]) == [("artist", 1, 5)]
    assert keep_whole([("artist", 1, 5)], tokens, [["run", "d", "m", "c"]]) == [("artist", 1, 5)]
    assert album_after_cue([("music_item", 2, 3)], "play the record thriller".split()) == [
        ("music_item", 2, 3), ("album", 3, 4)]
    assert without_possessive("adele's") == "adele" and without_possessive("'s") == "'s"


@pytest.mark.parametrize("text, slots, matched", [
    ("play R.E.M.", {"artist": "r e m"}, {}),                       # not in the catalog: heard, whole
    ("play run-d.m.c.", {"artist": "run d m c"}, {}),               # "run" is not a mood here
    ("play paper planes by M.I.A.", {"track": "paper planes", "artist": "m i a"},
     {"track": "Paper Planes", "artist": "M.I.A."}),
    ("play jay-z", {"artist": "jay z"}, {"artist": "JAY-Z"}),
    ("play some b t s", {"artist": "b t s"}, {"artist": "BTS"}),
    ("play adele's last album", {"artist": "adele's", "sort": "last", "music_item": "album"}, {"artist": "Adele"}),
    ("play the record thriller", {"album": "thriller", "music_item": "record"}, {}),
    ("play songs by iron and wine", {"artist": "iron and wine"}, {}),   # one credit, not "iron" + a title
    ("play something by simon and garfunkel on spotify", {"artist": "simon and garfunkel", "service": "spotify"}, {}),
    ("play hello by adele and some coldplay", {"track": "hello", "artist": "adele"},
     {"track": "Hello", "artist": "Adele"}),                          # the catalog knows the shorter name
])
def test_names_kept_whole_and_albums_from_context(service, text, slots, matched):
    intent = service.parse(text)
    assert intent.intent == "play"
    assert intent.slots == slots, intent
    assert {k: m["name"] for k, m in intent.matches.items() if m["confident"]} == matched


def test_newest_and_oldest_order_the_artists_songs(service):
    _, newest = service.handle_text("play the newest coldplay songs", user="s")
    _, oldest = service.handle_text("play the oldest coldplay songs", user="s")
    new_years = [i.song.year for i in newest.items if i.song.artist == "Coldplay"]
    old_years = [i.song.year for i in oldest.items if i.song.artist == "Coldplay"]
    assert new_years == sorted(new_years, reverse=True) and old_years == sorted(old_years)
    assert min(new_years) > max(old_years)


def test_top_n_is_that_many_most_popular(service):
    intent, rec = service.handle_text("play top five songs from the nineties", user="s")
    assert intent.slots["sort"] == "top five" and intent.slots["year"] == {"from": 1990, "to": 1999}
    assert len(rec.items) == 5 and all(1990 <= i.song.year <= 1999 for i in rec.items)
    pops = [i.song.popularity or 0 for i in rec.items]
    assert pops == sorted(pops, reverse=True)


@pytest.mark.parametrize("text, title, artist", [
    ("play one republic", None, "OneRepublic"),
    ("play blackeyed peas", None, "Black Eyed Peas"),
    ("pay counting stars by one republic", "Counting Stars", "OneRepublic"),
    ("lay adele hello", "Hello", "Adele"),
    ("i wanted to listen to coldplay", None, "Coldplay"),
    ("a hello by adele", "Hello", "Adele"),
])
def test_near_miss_and_split_names_bring_the_named_song_first(service, text, title, artist):
    _, rec = service.handle_text(text, user="s")
    top = rec.items[0].song
    assert top.artist == artist and (title is None or top.title == title), rec.items[0]
