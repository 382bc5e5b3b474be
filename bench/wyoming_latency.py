"""Wyoming vs WebSocket: end of audio -> transcript for a 3 s command, four clients at once.

    nice -n 5 .venv/bin/python bench/wyoming_latency.py [--rounds 8] [--clients 4] [--model PATH]

`assistant serve --input none` runs as a subprocess on the default config
(shipped model, default catalog, 127.0.0.1) with `[wyoming] enabled`. Each
round, `--clients` clients send the same 3 s espeak-ng command at the same
moment, in 20 ms chunks in real time, then end their stream:

    Wyoming    transcribe, audio-start, audio-chunk..., audio-stop -> transcript     (the wyoming package's client)
    WebSocket  audio.start, binary PCM frames..., audio.end         -> transcript.final

Measured on the client, from sending the end of the stream (audio-stop /
audio.end) to the transcript's arrival. Two clips:

    "stop at speech end"  the command ends 200 ms before the audio does (less than
                          the 400 ms hangover): the stream's end is the endpoint on
                          both paths, so this is the cost of each path's final
    "trailing silence"    1 s of room noise after the command, as a satellite whose
                          own VAD waits before it stops: the daemon's endpointer
                          fires first, so the transcript can be ready before the
                          stream ends (negative times: the WebSocket final came first)

Rounds alternate between the paths. Nothing here is asserted; the figures go
to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from daemon_common import RATE, DaemonProcess, ensure_model, free_port, machine, percentile

COMMAND = "play something sad by adele"
CHUNK = RATE * 20 // 1000
CLIP_S = 3.0


def clips(tmp: Path) -> dict[str, np.ndarray]:
    """The command spoken by espeak-ng, padded with room noise: 3.0 s ending 0.2 s after the speech, and with 1 s after."""
    from assistant.audio.io import load_audio

    wav = tmp / "command.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), COMMAND], check=True, capture_output=True)
    speech = load_audio(wav)
    frames = speech[: len(speech) // 160 * 160].reshape(-1, 160)
    rms = np.sqrt((frames ** 2).mean(axis=1) + 1e-12)
    loud = np.flatnonzero(rms > rms.max() * 0.01)
    speech = speech[loud[0] * 160:(loud[-1] + 1) * 160]
    rng = np.random.default_rng(0)
    noise = lambda s: (0.003 * rng.standard_normal(int(s * RATE))).astype(np.float32)  # noqa: E731
    lead = CLIP_S - 0.2 - len(speech) / RATE
    assert lead > 0.2, f"the command is {len(speech) / RATE:.2f} s; expected under {CLIP_S - 0.4} s"
    tight = np.concatenate([noise(lead), speech + noise(len(speech) / RATE), noise(0.2)])
    return {"stop at speech end": tight, "trailing silence": np.concatenate([tight, noise(0.8)])}


def pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


async def paced(chunks: list[bytes], send) -> None:
    t0 = time.monotonic()
    for k, chunk in enumerate(chunks):
        delay = t0 + k * CHUNK / RATE - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await send(chunk)


async def wyoming_client(port: int, pcm: bytes) -> tuple[float, str]:
    from wyoming.asr import Transcribe, Transcript
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.client import AsyncTcpClient

    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate=RATE, width=2, channels=1).event())
        chunks = [pcm[i:i + 2 * CHUNK] for i in range(0, len(pcm), 2 * CHUNK)]
        await paced(chunks, lambda c: client.write_event(AudioChunk(rate=RATE, width=2, channels=1, audio=c).event()))
        await client.write_event(AudioStop().event())
        t_end = time.monotonic()
        while True:
            event = await asyncio.wait_for(client.read_event(), 30)
            if event is None:
                raise RuntimeError("the Wyoming server closed the connection")
            if event.type == "error":
                raise RuntimeError(f"Wyoming error: {event.data}")
            if Transcript.is_type(event.type):
                return time.monotonic() - t_end, Transcript.from_event(event).text


async def websocket_client(url: str, pcm: bytes) -> tuple[float, str]:
    from websockets.asyncio.client import connect

    async with connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "audio.start", "id": "s"}))
        source, finals, t_end = None, [], None
        got = asyncio.Event()

        async def reader():
            nonlocal source
            async for raw in ws:
                msg = json.loads(raw)
                if msg["type"] == "ack" and msg["of"] == "audio.start":
                    source = msg["source"]
                elif msg["type"] == "transcript.final" and msg["source"] == source:
                    finals.append((time.monotonic(), msg["text"]))
                    got.set()

        task = asyncio.create_task(reader())
        while source is None:
            await asyncio.sleep(0.005)
        chunks = [pcm[i:i + 2 * CHUNK] for i in range(0, len(pcm), 2 * CHUNK)]
        await paced(chunks, ws.send)
        await ws.send(json.dumps({"type": "audio.end"}))
        t_end = time.monotonic()
        await asyncio.wait_for(got.wait(), 30)
        task.cancel()
        t_final, text = finals[0]
        return t_final - t_end, text


async def run(args) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-wyoming-"))
    model, model_desc = ensure_model(tmp, args.model)
    wport = free_port()
    d = DaemonProcess(tmp, model, dict(os.environ), ["--input", "none"], f"[wyoming]\nenabled = true\nport = {wport}\n")
    try:
        await d.wait_ready(need_listening=False)
        audio = clips(tmp)
        results = {name: {"wyoming": [], "websocket": [], "texts": []} for name in audio}
        await asyncio.sleep(2.0)
        for r in range(args.rounds):
            for name, clip in audio.items():
                pcm = pcm16(clip)
                for path in (("wyoming", "websocket") if r % 2 == 0 else ("websocket", "wyoming")):
                    if path == "wyoming":
                        out = await asyncio.gather(*(wyoming_client(wport, pcm) for _ in range(args.clients)))
                    else:
                        out = await asyncio.gather(*(websocket_client(d.url, pcm) for _ in range(args.clients)))
                    results[name][path] += [1000 * t for t, _ in out]
                    results[name]["texts"] += [text for _, text in out]
                    await asyncio.sleep(0.5)
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
        return {"results": results, "model": model_desc, "memory": d.memory_mb()}
    finally:
        d.stop()


def report(r: dict, args) -> str:
    from rapidfuzz import fuzz

    lines = [f"Machine: {machine()}, load average {os.getloadavg()[0]:.1f} at the end. Model: {r['model']}. "
             f"{args.clients} clients at once x {args.rounds} rounds per path and clip; 20 ms chunks in real time.", "",
             "| clip | path | n | p50 ms | p95 ms | max ms |", "|---|---|---|---|---|---|"]
    for name, res in r["results"].items():
        for path in ("wyoming", "websocket"):
            v = res[path]
            lines.append(f"| {name} | {path} | {len(v)} | {percentile(v, 50):.0f} | {percentile(v, 95):.0f} | {max(v):.0f} |")
    texts = [t for res in r["results"].values() for t in res["texts"]]
    close = sum(fuzz.ratio(t, COMMAND) >= 80 for t in texts)
    lines += ["", f"Transcripts within ratio 80 of {COMMAND!r}: {close} of {len(texts)}."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--model", default=None, help="recognizer checkpoint (default: the shipped model)")
    args = ap.parse_args()
    r = asyncio.run(run(args))
    print(report(r, args))


if __name__ == "__main__":
    main()
