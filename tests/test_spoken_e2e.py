"""The pure parts of bench/spoken_e2e.py: command generation, noise mixing, scoring, report splicing."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

import spoken_audio as sa  # noqa: E402
import spoken_commands as sc  # noqa: E402
import spoken_score as ss  # noqa: E402

SONGS = [sc.Song("Breathe", "Faith Hill"), sc.Song("It's My Life", "Bon Jovi"),
         sc.Song("Move Your Body - Radio Edit", "Eiffel 65"), sc.Song("Umbrella (feat. JAY-Z)", "Rihanna"),
         sc.Song("Hello", "Adele"), sc.Song("Hello", "Lionel Richie"), sc.Song("Someone Like You", "Adele"),
         sc.Song("Where Is The Love?", "Black Eyed Peas"), sc.Song("Apologize", "Timbaland, OneRepublic"),
         sc.Song("Love Story", "Taylor Swift"), sc.Song("So What", "P!nk"), sc.Song("Yeah!", "Usher, Lil Jon")]


def test_spoken_names():
    assert sc.spoken_title("Move Your Body - Gabry Ponte Original Radio Edit") == "Move Your Body"
    assert sc.spoken_title("Touch Me (Radio Edit) [feat. Cassandra]") == "Touch Me"
    assert sc.credited_artists("Lil Jon & The East Side Boyz") == ["Lil Jon", "The East Side Boyz"]
    assert sc.spoken_artist("Timbaland, OneRepublic") == "Timbaland"


def test_pools_leave_out_unspeakable_and_ambiguous_titles():
    ok, unique, artists = sc.candidate_pools(SONGS)
    assert sc.Song("So What", "P!nk") not in ok          # a symbol in the name
    assert sc.Song("Move Your Body - Radio Edit", "Eiffel 65") not in ok  # a digit in the artist
    assert sc.Song("Hello", "Adele") in ok and sc.Song("Hello", "Adele") not in unique  # two songs called Hello
    assert "Adele" in artists and artists.count("Adele") == 1


def test_commands_are_deterministic_prefix_stable_and_kept_apart():
    a = sc.make_commands(SONGS, 12, seed=3)
    assert a == sc.make_commands(SONGS, 12, seed=3)
    assert sc.make_commands(SONGS, 5, seed=3) == a[:5]
    assert {c.kind for c in sc.make_commands(SONGS, 40, seed=1)} == set(sc.KINDS)
    for c in a:
        assert c.name and c.name.lower().split()[0] in c.text.lower()
        if c.kind == "song_by_artist":
            assert f"{c.expected_title} by {c.expected_artist}" in c.text
        if c.kind in ("song", "song_by_artist"):
            assert c.catalog_title and c.catalog_artist
    b = sc.make_commands(SONGS, 6, seed=4, exclude={"adele", "breathe"})
    assert all(c.name not in ("Adele", "Breathe") and c.expected_artist != "Adele" for c in b)
    with pytest.raises(ValueError):
        sc.make_commands([sc.Song("So What", "P!nk")], 3, seed=0)


def test_mix_clip_snr_padding_and_offset():
    rng = np.random.default_rng(0)
    t = np.arange(sa.RATE_HZ) / sa.RATE_HZ
    speech = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    noise = (0.1 * rng.standard_normal(3 * sa.RATE_HZ)).astype(np.float32)
    clean, gain = sa.mix_clip(speech, None, None, 0)
    lead = int(sa.LEAD_S * sa.RATE_HZ)
    assert gain == 1.0 and len(clean) == len(speech) + lead + int(sa.TRAIL_S * sa.RATE_HZ)
    assert not clean[:lead].any() and np.allclose(clean[lead:lead + len(speech)], speech)
    for snr in (10.0, 0.0):
        clip, gain = sa.mix_clip(speech, noise, snr, offset=1234)
        assert clip[:lead].std() > 0.01                      # the noise runs under the quiet too
        assert sa.measured_snr_db(speech, clip) == pytest.approx(snr, abs=0.3)
        assert np.max(np.abs(clip)) <= sa.PEAK_LIMIT + 1e-6
    a, _ = sa.mix_clip(speech, noise, 0.0, offset=0)
    b, _ = sa.mix_clip(speech, noise, 0.0, offset=5000)
    assert not np.allclose(a, b)
    assert np.allclose(sa.noise_segment(np.arange(4, dtype=np.float32), 6, 3), [3, 0, 1, 2, 3, 0])


def test_clip_maker_offsets_are_seeded(tmp_path):
    noise = np.zeros(10000, np.float32)
    m1, m2 = sa.ClipMaker(tmp_path, noise, seed=1), sa.ClipMaker(tmp_path, noise, seed=1)
    assert m1.offset("c001", 10.0) == m2.offset("c001", 10.0)
    assert len({m1.offset(f"c{i:03d}", 0.0) for i in range(20)}) > 10
    assert sa.ClipMaker(tmp_path, None, seed=1).offset("c001", 10.0) == 0


def _cmd(kind, name, title="", artist=""):
    return sc.Command("c1", "text", kind, name=name, expected_title=title, expected_artist=artist).to_dict()


def test_name_comparisons():
    assert ss.same_name("OneRepublic", "one republic")
    assert ss.same_name("Black Eyed Peas", "blackeyed peas")
    assert ss.same_name("Umbrella (feat. JAY-Z)", "umbrella")
    assert not ss.same_name("Hello", "Halo")
    assert not ss.same_name("", "")
    assert ss.artist_matches("Timbaland, OneRepublic", "OneRepublic")
    assert ss.name_heard("Black Eyed Peas", "please play pump it by blackeyed peas")
    assert not ss.name_heard("Faith Hill", "play breathe by faith")


def test_score_hits_and_miss_kinds():
    song = _cmd("song_by_artist", "Breathe", "Breathe", "Faith Hill")
    items = [{"title": "Breathe", "artist": "Faith Hill"}, {"title": "This Kiss", "artist": "Faith Hill"}]
    play = {"name": "play", "slots": {"track": "Breathe", "artist": "Faith Hill"}}
    assert ss.score(song, "play breathe by faith hill", play, items) == ss.Outcome(True, "", True)
    assert ss.score(song, None, None, None).miss == "no final"
    assert ss.score(song, "lay breed by faith hill", {"name": "none", "slots": {}}, None).miss == "not understood as music"
    assert ss.score(song, "play breathe by faith hill", play, []).miss == "no recommendations"
    assert ss.score(song, "play brief by faith hill", play, items[::-1]).miss == "name misheard"
    assert ss.score(song, "play breathe by faith hill", play, items[::-1]).miss == "wrong item despite the name heard"
    artist = _cmd("artist", "Adele", artist="Adele")
    assert ss.score(artist, "play some adele", {"name": "play", "slots": {"artist": "Adele"}},
                    [{"title": "Hello", "artist": "Adele"}]).hit
    assert ss.score(artist, "play some adele", {"name": "play", "slots": {}},
                    [{"title": "Hello", "artist": "Lionel Richie"}]).miss == "wrong item despite the name heard"
    like = _cmd("like", "Umbrella", title="Umbrella")
    assert ss.score(like, "play something like umbrella", {"name": "similar", "slots": {"track": "Umbrella"}}, []).hit
    assert ss.score(like, "play something like umbrella", {"name": "similar", "slots": {"track": ["Umbrella"]}}, None).hit
    # heard a little wrong, but the parser is sure which catalog name it is (the intent's `matches`); unsure: no
    sure = {"track": {"id": "s1", "name": "Umbrella", "score": 0.9, "confident": True, "songs": 1}}
    assert ss.score(like, "play something like umbrela", {"name": "similar", "slots": {"track": "umbrela x"},
                                                          "matches": sure}, None).hit
    unsure = {"track": {**sure["track"], "confident": False}}
    assert not ss.score(like, "play something like umbrela", {"name": "similar", "slots": {"track": "umbrela x"},
                                                              "matches": unsure}, None).hit
    assert ss.score(like, "play something like a brella", {"name": "similar", "slots": {"track": "a brella"}},
                    None).miss == "name misheard"


def test_summary_and_tables():
    recs = [{"voice": "v1", "snr": "clean", "kind": "song", "hit": True, "miss": ""},
            {"voice": "v1", "snr": "0 dB", "kind": "song", "hit": False, "miss": "name misheard"},
            {"voice": "v2", "snr": "clean", "kind": "artist", "hit": False, "miss": "no recommendations"}]
    s = ss.summarize(recs)
    assert s["by_snr"]["clean"] == {"hits": 1, "n": 2, "rate": 0.5}
    assert s["misses"]["0 dB"] == {"name misheard": 1}
    table = ss.markdown_tables(s, ["v1", "v2"], ["clean", "0 dB"], ["song", "artist"])
    assert "| **all voices** | 50 % (1/2) | 0 % (0/1) |" in table
    assert "| v2 | 0 % (0/1) | - |" in table


def test_results_section_and_readme_splicing():
    import spoken_e2e as se

    doc = "# Results\n\nintro\n\n## Speech\n\nold\n"
    once = se.replace_section(doc, se.SECTION + "\n\nfirst\n")
    assert once.index(se.SECTION) < once.index("## Speech") and "first" in once
    twice = se.replace_section(once, se.SECTION + "\n\nsecond\n")
    assert "first" not in twice and "second" in twice and twice.count(se.SECTION) == 1 and "old" in twice
    readme = "# App\n\nintro\n\n## Use\n"
    table = f"{se.README_START}\n| a |\n{se.README_END}"
    r1 = se.replace_readme(readme, table)
    r2 = se.replace_readme(r1, table.replace("| a |", "| b |"))
    assert r1.index(se.README_START) < r1.index("## Use") and "| b |" in r2 and "| a |" not in r2
    assert se.parse_snrs("clean, 10,0dB") == [None, 10.0, 0.0]
    with pytest.raises(SystemExit):
        se.parse_snrs("loud")


def test_report_renders_a_saved_run():
    import spoken_e2e as se

    base = {"kind": "song_by_artist", "voice": "flite/rms x0.9", "text": "play breathe by faith hill",
            "utterances": 1, "timed_out": False, "recs_after_speech_ms": 600, "typed_hit": True}
    recs = [{**base, "id": "h000", "snr": "clean", "hit": True, "miss": "", "heard": True,
             "transcript": "play breathe by faith hill", "items": [{"title": "Breathe", "artist": "Faith Hill"}],
             "intent": {"name": "play", "slots": {}}},
            {**base, "id": "h000", "snr": "0 dB", "hit": False, "miss": "name misheard", "heard": False,
             "transcript": "play breed by faith", "items": [{"title": "Breed", "artist": "Nirvana"}],
             "intent": {"name": "play", "slots": {}}}]
    result = {"records": recs, "snrs": ["clean", "0 dB"], "voices": ["flite/rms x0.9"], "command_line": "x",
              "date": "2026-12-03", "commit": "abc", "machine": "test machine", "load_avg": "1.0", "model": "m",
              "final_pass": "whisper", "speed": 1.0, "seed": 21, "stream_s": 60.0,
              "final_pass_counts": {"whisper": 2.0}}
    text = se.report(result)
    assert text.startswith(se.SECTION) and "| **all voices** | 100 % (1/1) | 0 % (0/1) |" in text
    assert "Breed / Nirvana (name misheard)" in text and "1/1 (100 %) hit" in text
    assert "Headline: clean 100 % (1/1), 0 dB 0 % (0/1)" in text
    table = se.readme_table(result)
    assert table.startswith(se.README_START) and "| named song (or artist) first | 100 % (1/1) | 0 % (0/1) |" in table
    result["baseline"] = {"commit": "0ld", "date": "2026-12-02", "same_clips": True,
                          "by_snr": {"clean": {"hits": 0, "n": 1, "rate": 0.0}, "0 dB": {"hits": 0, "n": 1, "rate": 0.0}}}
    assert "At commit 0ld (2026-12-02, the same clips): clean 0 % (0/1), 0 dB 0 % (0/1)." in se.report(result)
    assert "| the same at commit 0ld | 0 % (0/1) | 0 % (0/1) |" in se.readme_table(result)
