"""Commands while music plays, through the virtual microphone (tests/pulse.py), with Silero VAD:
music alone starts no utterance (and so gives no command), a command spoken over the music is recognized."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time

import numpy as np
import pytest

from daemon_proc import COMMAND, recognizer_model, start_daemon, wait_ready
from pulse import VirtualMic, missing_tools
from conftest import write_wav
from synthetic import music

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WAIT_S = 120.0
RATE = 16000


@pytest.fixture
def virtual_mic(tmp_path):
    missing = missing_tools()
    if missing:
        pytest.skip(f"PulseAudio tools missing: {', '.join(missing)} (scripts/setup.sh installs pulseaudio, pulseaudio-utils)")
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (scripts/setup.sh installs it)")
    pytest.importorskip("silero_vad", reason="silero-vad is not installed (pip install -e .)")
    with VirtualMic(tmp_path / "pulse") as vm:
        yield vm


def espeak(path, text: str) -> np.ndarray:
    from assistant.audio.io import load_audio

    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), text], check=True, capture_output=True)
    return load_audio(path)


def test_music_alone_gives_no_command_and_a_command_over_music_is_recognized(tmp_path, virtual_mic, request):
    model, trained = recognizer_model(request)
    bed = music(8.0, seed=3, rms=0.05)
    write_wav(tmp_path / "music.wav", bed)
    said = espeak(tmp_path / "said.wav", COMMAND)
    voiced = said[np.abs(said) > 0.01]
    said = said * np.float32(0.05 * 10 ** (10 / 20) / np.sqrt(np.mean(voiced ** 2)))  # +10 dB over the music
    over = music(3.0 + len(said) / RATE + 2.0, seed=4, rms=0.05)
    over[3 * RATE: 3 * RATE + len(said)] += said
    write_wav(tmp_path / "over.wav", over)
    proc, port, log = start_daemon(tmp_path, {**os.environ, **virtual_mic.env}, model, extra_config='[vad]\nengine = "silero"\n')
    try:
        async def main() -> tuple[list[dict], list[dict]]:
            ws, _ = await wait_ready(f"ws://127.0.0.1:{port}/ws", proc, log)

            async def events_while(play: str, then_s: float, until=None) -> list[dict]:
                player = asyncio.create_task(asyncio.to_thread(virtual_mic.play, tmp_path / play))
                out, deadline = [], None
                while True:
                    if player.done() and deadline is None:
                        deadline = time.monotonic() + then_s
                    try:
                        msg = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                    except asyncio.TimeoutError:
                        msg = None
                    if msg and msg["type"] != "status":
                        out.append(msg)
                        if until and until(msg):
                            return out
                    if deadline is not None and time.monotonic() > deadline:
                        return out

            alone = await events_while("music.wav", 1.0)
            spoken = await events_while("over.wav", WAIT_S, until=lambda m: m["type"] in ("recommendations", "intent")
                                        and (m["type"] == "recommendations" or m.get("name") == "none"))
            await ws.close()
            return alone, spoken

        alone, spoken = asyncio.run(main())
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert [e["type"] for e in alone] == [], alone  # not even a vad.start: the music is not ducked for nothing
    kinds = [e["type"] for e in spoken]
    assert kinds.count("vad.start") == 1 and kinds.count("transcript.final") == 1, kinds
    start = next(e for e in spoken if e["type"] == "vad.start")
    final = next(e for e in spoken if e["type"] == "transcript.final")
    assert final["accepted"]
    if trained:
        from rapidfuzz import fuzz

        assert fuzz.ratio(final["text"], COMMAND) >= 70, final["text"]
        intent = next(e for e in spoken if e["type"] == "intent")
        assert intent["name"] == "play"
    assert start["speech_start_ms"] > 0
