"""LibriSpeech-layout reader: a synthetic fixture always, the real mini test-clean set when present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from assistant.training.librispeech import iter_librispeech, read_librispeech

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MINI = SHARED_DATA / "speech/librispeech-test-clean-mini"


def test_reader_on_fixture(tmp_path):
    d = tmp_path / "LibriSpeech/dev-clean/84/121123"
    d.mkdir(parents=True)
    for i in range(3):
        sf.write(str(d / f"84-121123-000{i}.flac"), np.zeros(1600, dtype=np.float32), 16000)
    (d / "84-121123.trans.txt").write_text(
        "84-121123-0000 GO DO YOU HEAR\n84-121123-0001 IT'S TWENTY TWO O'CLOCK\n\n"
        "84-121123-0002 BUT IN LESS THAN FIVE MINUTES\n84-121123-0009 NO AUDIO FOR THIS ONE\n")
    utts = read_librispeech(tmp_path)
    assert [u.utt_id for u in utts] == ["84-121123-0000", "84-121123-0001", "84-121123-0002"]
    assert utts[1].text == "it's twenty two o'clock" and utts[1].raw_text == "IT'S TWENTY TWO O'CLOCK"
    assert utts[0].speaker == "84" and utts[0].chapter == "121123" and utts[0].audio.exists()
    with pytest.raises(FileNotFoundError):
        list(iter_librispeech(tmp_path, skip_missing=False))
    with pytest.raises(FileNotFoundError):
        read_librispeech(tmp_path / "nope")


@pytest.mark.skipif(not MINI.is_dir(), reason=f"LibriSpeech test-clean mini not found at {MINI}")
def test_reader_on_mini_test_clean():
    utts = read_librispeech(MINI)
    assert len(utts) == 4
    for u in utts:
        assert u.audio.suffix == ".flac" and u.text and u.text == u.text.lower()
        info = sf.info(str(u.audio))
        assert info.samplerate == 16000 and info.frames > 0
    assert {u.speaker for u in utts} >= {"1089"}
