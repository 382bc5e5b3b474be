"""Catalog loaders: Million Song Dataset CSV, Spotify track CSV (+ artist genres), JSONL, music folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from assistant.config import RecommendConfig
from assistant.errors import AssistantError
from assistant.recommend.catalog import DEFAULT_CATALOG, Catalog, load_catalog
from assistant.recommend.loaders import load_source, load_sources
from assistant.recommend.song import make_song, merge_songs, song_id, split_artists

FIXTURES = Path(__file__).parent / "fixtures" / "recommend"
SHARED_CATALOGS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "catalogs"


def test_msd_csv_reads_lyrics_and_reports_bad_rows_with_line_numbers():
    report = load_source(FIXTURES / "msd_sample.csv")
    titles = [s.title for s in report.songs]
    assert titles == ["Rain On The Window", "Summer Road", "Neon Heartbeat", "Rain on the Window"]
    assert "grey rain on the window" in report.songs[0].lyrics.lower()
    # Multi-line lyrics: the rows start on lines 2, 6, 8, 9, 10 and 12 of the file.
    assert report.skipped == [("line 8", "no artist"), ("line 9", "no title")]
    assert report.rows == 6
    assert "2 skipped" in report.summary() and "line 8: no artist" in report.summary()


def test_duplicates_merge_into_one_song_keeping_first_facts():
    catalog = Catalog.from_reports([load_source(FIXTURES / "msd_sample.csv")])
    assert len(catalog) == 3
    assert catalog.duplicates == 1
    rain = catalog.get(song_id("Paper Lanterns", "rain on the window"))
    assert rain is not None and rain.title == "Rain On The Window"
    assert rain.lyrics.startswith("Grey rain")


def test_spotify_tracks_features_bad_year_and_short_row():
    report = load_source(FIXTURES / "tracks.csv")
    by_title = {s.title: s for s in report.songs}
    assert set(by_title) == {"Rain On The Window", "Neon Heartbeat", "Midnight Static", "Slow Tide", "Iron Sky",
                             "Golden Hour"}
    rain = by_title["Rain On The Window"]
    assert rain.valence == pytest.approx(0.12) and rain.tempo_bpm == pytest.approx(72.5) and rain.year == 2004
    assert rain.genres == ("folk", "indie")
    assert by_title["Midnight Static"].year is None  # "#VALUE!" dropped, row kept
    assert report.repaired == [("line 4", "year '#VALUE!' is not a year")]
    assert report.skipped == [("line 6", "3 fields, expected at least 11")]


def test_artist_genre_table_is_joined_including_collaborations():
    reports = load_sources([FIXTURES / "tracks.csv", FIXTURES / "artist_genres.csv"])
    assert len(reports) == 1  # the genre table is not a catalog
    by_title = {s.title: s for s in reports[0].songs}
    assert by_title["Rain On The Window"].genres == ("folk", "indie", "indie folk", "chamber pop")
    # "Glass Harbor, Mira Vale": the whole credit is unknown, Mira Vale's genres are used.
    assert by_title["Slow Tide"].genres == ("ambient", "new age")
    assert by_title["Slow Tide"].artists == ("Glass Harbor", "Mira Vale")


def test_jsonl_aliases_and_bad_lines():
    report = load_source(FIXTURES / "songs.jsonl")
    by_title = {s.title: s for s in report.songs}
    assert set(by_title) == {"Golden Hour", "Paper Moon", "Bad Numbers"}
    assert by_title["Paper Moon"].year == 1998 and by_title["Paper Moon"].tempo_bpm == 70.0
    assert by_title["Paper Moon"].genres == ("ambient", "dream pop")
    assert by_title["Bad Numbers"].valence is None and by_title["Bad Numbers"].popularity is None
    assert [w for w, _ in report.skipped] == ["line 3", "line 4", "line 5"]
    assert [w for w, _ in report.repaired] == ["line 6", "line 6"]


def test_wrong_schema_names_the_missing_columns():
    with pytest.raises(AssistantError) as err:
        load_source(FIXTURES / "bad_schema.csv")
    message = str(err.value)
    assert "artist (one of: artist, artists, artist_name)" in message
    assert "song, performer" in message  # the columns it does have


def test_catalog_with_no_usable_rows_is_a_clear_error(tmp_path):
    cfg = RecommendConfig(use_default_catalog=False, catalogs=(str(FIXTURES / "no_rows.csv"),))
    with pytest.raises(AssistantError, match="no usable songs"):
        load_catalog(cfg)
    with pytest.raises(AssistantError, match="no catalog configured"):
        load_catalog(RecommendConfig(use_default_catalog=False))
    with pytest.raises(AssistantError, match="does not exist"):
        load_source(tmp_path / "missing.csv")
    (tmp_path / "x.xlsx").write_text("nope")
    with pytest.raises(AssistantError, match="unknown type"):
        load_source(tmp_path / "x.xlsx")


def _tone(path: Path) -> None:
    sf.write(path, np.zeros(800, dtype=np.float32), 8000, format="FLAC")


def test_music_folder_tags_become_songs_with_a_playable_source(tmp_path):
    from mutagen.flac import FLAC

    tagged = tmp_path / "album" / "01.flac"
    tagged.parent.mkdir()
    _tone(tagged)
    audio = FLAC(tagged)
    audio["title"], audio["artist"], audio["album"] = "Rain On The Window", "Paper Lanterns", "Grey Days"
    audio["genre"], audio["date"] = "Folk", "2004-05-01"
    audio.save()
    _tone(tmp_path / "untagged_song.flac")
    (tmp_path / "broken.mp3").write_bytes(b"this is not audio at all" * 10)
    (tmp_path / "notes.txt").write_text("not a song, not counted")
    report = load_source(tmp_path)
    by_title = {s.title: s for s in report.songs}
    assert set(by_title) == {"Rain On The Window", "untagged song"}
    rain = by_title["Rain On The Window"]
    assert (rain.artist, rain.album, rain.year, rain.genres) == ("Paper Lanterns", "Grey Days", 2004, ("folk",))
    assert rain.source == str(tagged.resolve())
    assert by_title["untagged song"].artist == "Unknown artist"
    assert len(report.skipped) == 1 and report.skipped[0][0].endswith("broken.mp3")
    # Merged with a facts-only catalog, the folder's song keeps the facts and gains the source.
    catalog = Catalog.from_reports([load_source(FIXTURES / "tracks.csv"), report])
    merged = catalog.get(song_id("Paper Lanterns", "Rain On The Window"))
    assert merged.source == str(tagged.resolve()) and merged.valence == pytest.approx(0.12)


def test_song_ids_are_stable_across_spelling_and_merge_rules():
    assert song_id("Beyoncé", "Halo") == song_id("beyonce", "HALO!")
    assert split_artists("Calvin Harris feat. Rihanna") == ("Calvin Harris", "Rihanna")
    assert split_artists("AC/DC") == ("AC/DC",)
    a = make_song("Song", "Artist", year=2005, popularity=40.0, genres=("pop",))
    b = make_song("Song", "Artist", year=1999, popularity=70.0, genres=("rock",), valence=0.5)
    merged = merge_songs(a, b)
    assert (merged.year, merged.popularity, merged.genres, merged.valence) == (1999, 70.0, ("pop", "rock"), 0.5)


def test_default_catalog_ships_facts_only_and_loads():
    report = load_source(DEFAULT_CATALOG)
    assert len(report.songs) > 3000 and not report.skipped
    assert all(not s.lyrics for s in report.songs)
    assert DEFAULT_CATALOG.stat().st_size < 600_000
    hello = [s for s in report.songs if s.title == "Someone Like You" and s.artist == "Adele"]
    assert hello and hello[0].valence is not None and hello[0].genres


@pytest.mark.skipif(not SHARED_CATALOGS.is_dir(), reason="needs ../shared/data/catalogs (not in a fresh clone)")
def test_real_million_song_sample_reads_with_its_cut_off_last_row():
    report = load_source(SHARED_CATALOGS / "spotify-millsong-sample.csv")
    assert len(report.songs) >= 2890
    assert report.songs[0].artist == "ABBA" and report.songs[0].lyrics
