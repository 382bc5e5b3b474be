"""Shared fixtures: a tiny randomly initialized recognizer checkpoint, audio writers."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A small untrained StreamingCTC checkpoint (weights random, seeded) for plumbing tests."""
    from synthetic import tiny_checkpoint_file

    return tiny_checkpoint_file(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.fixture(scope="session")
def tiny_whisper_checkpoint(tmp_path_factory) -> Path:
    """A small untrained WhisperCTC checkpoint (the shipped family; random weights, a 6 s position table)."""
    import torch

    from assistant.asr.checkpoint import save_checkpoint
    from assistant.asr.whisper_ctc import WhisperCTC, WhisperCTCConfig
    from assistant.asr.whisper_features import WhisperFeatures

    torch.manual_seed(0)
    model = WhisperCTC(WhisperCTCConfig(d_model=32, n_heads=4, n_layers=1, ffn_dim=64, max_positions=300,
                                        chunk_frames=16, left_chunks=4, dropout=0.0))
    path = tmp_path_factory.mktemp("ckpt") / "tiny_whisper.pt"
    save_checkpoint(path, model.eval(), WhisperFeatures.create(), lm_texts=["play hello by adele", "skip this song"])
    return path


def write_wav(path: Path, audio: np.ndarray, rate: int = 16000) -> Path:
    sf.write(str(path), audio, rate, subtype="PCM_16")
    return path


def espeak(text: str, path: Path, voice: str = "en-us") -> Path:
    """Synthesize `text` with espeak-ng; skips the test when espeak-ng is missing."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (scripts/setup.sh installs it)")
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, capture_output=True)
    return path


def shared_data(*parts: str) -> Path:
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} is not available (the shared data folder is not beside this checkout)")
    return p
