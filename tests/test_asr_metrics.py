import pytest

from assistant.asr.metrics import ErrorRates, cer, wer


def test_wer_and_cer():
    assert wer("play a sad song", "play a sad song") == 0
    assert wer("play a sad song", "play the sad song") == pytest.approx(0.25)
    assert wer("play a sad song", "play sad song now") == pytest.approx(0.5)
    assert cer("adele", "adel") == pytest.approx(0.2)
    assert wer("", "") == 0


def test_corpus_rates_weight_by_length():
    r = ErrorRates()
    r.add("one two three four", "one two three four")
    r.add("five", "six")
    assert r.wer == pytest.approx(1 / 5)
    assert r.to_dict()["sentence_accuracy"] == 0.5
