import numpy as np

from assistant.asr.decoding import BeamOptions, BeamSearchDecoder, HotPhrases, greedy_decode, greedy_ids
from assistant.asr.lm import WordNgram
from assistant.asr.text import TextTransform

T = TextTransform()
V = T.num_classes


def _id(ch: str) -> int:
    return 0 if ch == "_" else T.char_map["<SPACE>" if ch == " " else ch]


def frames(spec) -> np.ndarray:
    """Each item: a character ('_' = blank) with prob 0.9, or a dict {char: prob}."""
    rows = []
    for item in spec:
        p = np.full(V, 1e-4)
        if isinstance(item, dict):
            for ch, pr in item.items():
                p[_id(ch)] = pr
        else:
            p[:] = 0.1 / (V - 1)
            p[_id(item)] = 0.9
        rows.append(np.log(p / p.sum()))
    return np.array(rows)


def spelled(text: str) -> list:
    out = []
    for ch in text:
        out += [ch, "_"]
    return out


def test_greedy_collapses_repeats_and_blanks():
    lp = frames(list("hh_ee_ll_ll_oo") + ["_", " ", "a"])
    assert greedy_decode(lp) == "hello a"


def test_greedy_carries_collapse_across_chunks():
    lp = frames(list("aab"))
    ids1, prev = greedy_ids(lp[:1])
    ids2, _ = greedy_ids(lp[1:], prev)
    assert T.int_to_text(ids1 + ids2) == "ab"


def test_beam_without_lm_matches_greedy_on_clear_input():
    lp = frames(spelled("play some music"))
    assert BeamSearchDecoder(BeamOptions(beam_width=8)).decode(lp) == "play some music"


def test_beam_sums_paths_greedy_cannot():
    # Best single path is blank-blank ("") but the summed probability of "a" is higher.
    lp = np.log(np.array([[0.4, 0, 0.3, *[0.3 / 26] * 26], [0.4, 0, 0.3, *[0.3 / 26] * 26]]) + 1e-9)
    lp[:, 1] = np.log(1e-9)
    assert greedy_decode(lp) == ""
    assert BeamSearchDecoder(BeamOptions(beam_width=8, hotword_weight=0)).decode(lp) == "a"


def test_hot_phrase_wins_over_near_miss():
    # The acoustics slightly prefer "adel" (no final e); the catalog knows "adele".
    spec = spelled("play adel") + [{"e": 0.35, "_": 0.65}, "_"]
    lp = frames(spec)
    plain = BeamSearchDecoder(BeamOptions(beam_width=8, hotword_weight=0, lm_weight=0))
    assert plain.decode(lp) == "play adel"
    biased = BeamSearchDecoder(BeamOptions(beam_width=8, lm_weight=0, hotword_weight=3.0), hot_phrases=HotPhrases(["adele"]))
    assert biased.decode(lp) == "play adele"


def test_incomplete_phrase_gets_no_lasting_boost():
    hot = HotPhrases(["someone like you"])
    dec = BeamSearchDecoder(BeamOptions(beam_width=8, lm_weight=0, hotword_weight=5.0), hot_phrases=hot)
    # "someone else": the phrase is started but not completed, so nothing changes.
    assert dec.decode(frames(spelled("someone else"))) == "someone else"


def test_word_ngram_prefers_known_sequences():
    lm = WordNgram(["play hello by adele", "play something sad", "skip this song"])
    assert lm.logp("hello", ("play",)) > lm.logp("skip", ("play",))
    assert lm.logp("zzz", ()) < lm.logp("zz", ()) < lm.unk_logp
    assert lm.sentence_logp("play hello by adele") > lm.sentence_logp("adele by hello play")
    # The n-gram alone fixes an ambiguous word boundary / spelling.
    spec = spelled("skip this son") + [{"g": 0.3, "_": 0.7}, "_"]
    dec = BeamSearchDecoder(BeamOptions(beam_width=8, lm_weight=1.0, hotword_weight=0), lm=lm)
    assert dec.decode(frames(spec)) == "skip this song"


def test_nbest_lists_distinct_texts_best_first():
    # the acoustics slightly prefer "adel"; "adele" is the runner-up the catalog rescoring may look at
    lp = frames(spelled("play adel") + [{"e": 0.35, "_": 0.65}, "_"])
    dec = BeamSearchDecoder(BeamOptions(beam_width=8, hotword_weight=0, lm_weight=0))
    texts = dec.decode_nbest(lp, 4)
    assert texts[0] == dec.decode(lp) == "play adel"
    assert "play adele" in texts[1:]
    assert len(texts) == len(set(texts)) <= 4
    assert dec.decode_nbest(frames(["_", "_"]), 3)[0] == ""  # nothing heard: the empty text first
