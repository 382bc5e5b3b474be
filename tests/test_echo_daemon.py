"""Echo cancellation in the daemon: a remote stream with a reference channel is cancelled, its state is in
`status.echo_cancel`, and a reference that stops leaves the stream recognized, never stalled."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from websockets.asyncio.client import connect

from assistant.audio import echo as echo_mod
from synthetic import music, room, speechlike
from test_echo import room_echo
from test_server import arun, recv, running

RATE = 16000

try:
    echo_mod._load_speexdsp()
except echo_mod.SpeexUnavailable:
    pytest.skip("libspeexdsp is not installed (scripts/setup.sh installs libspeexdsp1)", allow_module_level=True)


async def send_stereo(ws, mic: np.ndarray, ref: np.ndarray) -> None:
    """Microphone (channel 0) and reference (channel 1), 40 ms frames at about 1.3 x real time."""
    pcm = (np.clip(np.stack([mic, ref], axis=1), -1, 1) * 32767).astype("<i2").tobytes()
    step = RATE * 2 * 2 * 40 // 1000
    for i in range(0, len(pcm), step):
        await ws.send(pcm[i:i + step])
        await asyncio.sleep(0.03)


def test_a_stream_whose_reference_stops_is_reported_and_its_command_still_recognized():
    played = np.concatenate([music(4.5, seed=11, rms=0.02), np.zeros(RATE * 7 // 2, np.float32)])  # 4.5 s, then quiet
    echo = room_echo(played)  # the room goes on hearing the music...
    ref = played.copy()
    ref[3 * RATE // 2:] = 0.0  # ...after the player stopped sending it at 1.5 s
    speech = np.concatenate([np.zeros(RATE * 11 // 2, np.float32), speechlike(1200), np.zeros(RATE * 13 // 10, np.float32)])
    mic = echo + room(8000, 3) + speech

    async def main():
        async with running() as d:
            async with connect(d.url) as ws:
                hello = await recv(ws, "hello")
                assert hello["snapshot"]["status"]["echo_cancel"] == {"enabled": True, "sources": {}}
                await ws.send(json.dumps({"type": "audio.start", "id": "a1", "format": {
                    "encoding": "pcm_s16le", "sample_rate_hz": 16000, "channels": 2, "echo_reference_channel": 1}}))
                source = (await recv(ws, "ack"))["source"]
                await send_stereo(ws, mic, ref)
                events, speech_utt = [], None
                while True:  # until the final of the utterance that starts with the speech (at 5.5 s)
                    e = json.loads(await asyncio.wait_for(ws.recv(), 60))
                    events.append(e)
                    if e["type"] == "vad.start" and 5200 <= e["speech_start_ms"] <= 5900:
                        speech_utt = e["utterance"]
                    if e["type"] == "transcript.final" and e["utterance"] == speech_utt:
                        break
                states = [e["echo_cancel"]["sources"].get(source, {}).get("state") for e in events if e["type"] == "status"]
                assert "active" in states and "reference_silent" in states, states
                assert events[-1]["source"] == source and events[-1]["accepted"]
                await ws.send(json.dumps({"type": "audio.end", "id": "a2"}))
                status = await recv(ws, "status")
                while source in status["echo_cancel"]["sources"]:  # until the stream is gone
                    status = await recv(ws, "status")
    arun(main())
