"""Daemon latency, idle CPU and memory through the virtual microphone.

    .venv/bin/python bench/daemon_latency.py [--utterances 32] [--idle-s 30] [--final-pass both] [--json OUT]

A private PulseAudio server (tests/pulse.py) carries espeak-ng commands into
`assistant serve` (a subprocess on the default config: microphone input,
default catalog, shipped model). The player writes audio in real time, so the
moment each command's speech ends (found in the synthesized file) is known;
a WebSocket client timestamps transcript.final, intent and recommendations.

Reported: p50/p95 from the real end of speech to transcript.final and to
recommendations (target p95 <= hangover + 150 ms), to intent for player
controls, utterances missed or split; then CPU of the daemon while only room
noise plays (target <= 3 % of one core) and its resident memory (<= 800 MB).
Without models/asr.pt a randomly initialized model of the default size
stands in: same compute, but noise for text (so few intents ask for songs).

`--final-pass both` (the default) runs the daemon twice: with the Whisper
second pass (`[asr] final_pass = "whisper"`, how often its budget fell back
to the CTC final, its compute time, the finals' WER against the spoken
commands) and with CTC finals only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

from daemon_common import (COMMANDS, DaemonProcess, PacedPlayer, VirtualMic, ensure_model, machine, percentile,
                           synthesize)

from assistant.config import VadConfig


async def measure(d: DaemonProcess, player: PacedPlayer, commands, gap_s: float, idle_s: float) -> dict:
    from websockets.asyncio.client import connect

    await d.wait_ready()
    await asyncio.sleep(1.0)
    player.measure_stream_latency()
    events: list[tuple[float, dict]] = []
    async with connect(d.url, max_size=None) as ws:
        async def reader() -> None:
            async for raw in ws:
                events.append((time.monotonic(), json.loads(raw)))

        task = asyncio.create_task(reader())
        rows = []
        for i, (text, audio, end_s) in enumerate(commands):
            first = len(events)
            done = player.play(i, audio, end_s)
            await asyncio.to_thread(done.wait)
            deadline = time.monotonic() + 8.0
            answered = None
            while time.monotonic() < deadline and answered is None:
                await asyncio.sleep(0.05)
                answered = _answered([e for _, e in events[first:] if e.get("source") == "mic"])
            mine = [(t, e) for t, e in events[first:] if e.get("source") == "mic"]
            row = {"text": text, "utterances": sum(e["type"] == "vad.start" for _, e in mine), "t_end": player.ends.get(i)}
            for t, e in mine:
                if answered and e.get("utterance") == answered:
                    row.setdefault(e["type"], t)
                    if e["type"] == "transcript.final":
                        row["heard"] = e["text"]
                    if e["type"] == "intent":
                        row["intent_name"] = e["name"]
            rows.append(row)
            await asyncio.sleep(gap_s)
        cpu0, t0 = d.cpu_s(), time.monotonic()
        await asyncio.sleep(idle_s)
        idle_pct = 100 * (d.cpu_s() - cpu0) / (time.monotonic() - t0)
        memory = d.memory_mb()
        metrics = d.metrics()
        task.cancel()
    return {"rows": rows, "idle_cpu_pct": round(idle_pct, 2), **memory,
            "dropped_mic_blocks": _metric(metrics, 'assistant_audio_dropped_frames_total{kind="microphone"}'),
            "speculative_used": _metric(metrics, 'assistant_speculative_finals_total{outcome="used"}'),
            "speculative_discarded": _metric(metrics, 'assistant_speculative_finals_total{outcome="discarded"}'),
            "final_pass": {o: _metric(metrics, f'assistant_final_pass_total{{outcome="{o}"}}')
                           for o in ("whisper", "ctc", "dropped", "budget", "busy", "failed")},
            "final_pass_mean_ms": round(1000 * _metric(metrics, "assistant_final_pass_seconds_sum")
                                        / max(1.0, _metric(metrics, "assistant_final_pass_seconds_count")), 1),
            "asr_step_mean_ms": round(1000 * _metric(metrics, "assistant_asr_step_seconds_sum")
                                      / max(1.0, _metric(metrics, "assistant_asr_step_seconds_count")), 1),
            "stream_latency_ms": round(player.stream_latency_s * 1000, 1)}


CONTENT_INTENTS = ("play", "recommend", "similar", "next")


def _answered(events: list[dict]) -> str | None:
    """The utterance id once its last event is in: recommendations, a control intent, an error, or an ignored final."""
    finals = [e for e in events if e["type"] == "transcript.final"]
    if not finals:
        return None
    utt = finals[0]["utterance"]
    for e in events:
        if e.get("utterance") != utt:
            continue
        if (e["type"] in ("recommendations", "error") or (e["type"] == "transcript.final" and not e["accepted"])
                or (e["type"] == "intent" and e["name"] not in CONTENT_INTENTS)):
            return utt
    return None


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def summarize(result: dict, model_desc: str, hangover_ms: int, final_pass: str = "ctc") -> str:
    from assistant.asr.metrics import ErrorRates
    from assistant.asr.text import normalize_text

    rows = result["rows"]

    def lat(kind: str, pred=lambda r: True) -> list[float]:
        return [1000 * (r[kind] - r["t_end"]) for r in rows if kind in r and r.get("t_end") and pred(r)]

    final = lat("transcript.final")
    recs = lat("recommendations")
    control = lat("intent", lambda r: "recommendations" not in r)
    missed = sum(r["utterances"] == 0 or "transcript.final" not in r for r in rows)
    split = sum(r["utterances"] > 1 for r in rows)
    lines = [
        f"Machine: {machine()}, load average {os.getloadavg()[0]:.1f} at the end. Model: {model_desc}; finals: {final_pass}. Hangover {hangover_ms} ms: target p95 <= {hangover_ms + 150} ms.",
        f"Utterances: {len(rows)} espeak-ng commands (4 voices) through the PulseAudio virtual microphone; "
        f"{missed} missed, {split} split in two. Playback latency of the virtual mic's player: {result['stream_latency_ms']} ms (accounted for).",
        "",
        "| end of speech to | n | p50 ms | p95 ms | max ms |",
        "|---|---|---|---|---|",
    ]
    endpoint = lat("vad.end")
    for name, values in (("vad.end (hangover + capture)", endpoint), ("transcript.final", final), ("recommendations", recs),
                         ("intent (player controls, none)", control)):
        if values:
            lines.append(f"| {name} | {len(values)} | {percentile(values, 50):.0f} | {percentile(values, 95):.0f} | {max(values):.0f} |")
    lines += ["", f"Finals decoded at a pause: {result['speculative_used']:.0f} used, {result['speculative_discarded']:.0f} "
              f"discarded (speech resumed); recognizer time per 160 ms chunk: {result['asr_step_mean_ms']} ms mean."]
    fp = result.get("final_pass", {})
    if final_pass == "whisper" and fp:
        total = sum(fp.values())
        lines += ["", f"Second pass: {total:.0f} finals: Whisper's text {fp['whisper']:.0f}, the rule chose the CTC text "
                  f"{fp['ctc']:.0f}, dropped (no speech / low confidence) {fp['dropped']:.0f}, budget fallback to the CTC "
                  f"final {fp['budget']:.0f} ({fp['budget'] / max(total, 1):.0%}), busy {fp['busy']:.0f}, failed {fp['failed']:.0f}; "
                  f"its compute time {result['final_pass_mean_ms']} ms mean."]
    rates = ErrorRates()
    for r in rows:
        rates.add(normalize_text(r["text"]), r.get("heard", ""))
    lines += [f"Finals against the spoken commands: WER {rates.wer:.1%}, sentences exact {rates.exact / max(rates.utterances, 1):.0%}.",
              "", "| idle CPU (room noise only) | RSS | peak RSS | mic blocks dropped |", "|---|---|---|---|",
              f"| {result['idle_cpu_pct']:.2f} % of one core | {result['rss_mb']:.0f} MB | {result['peak_rss_mb']:.0f} MB | {result['dropped_mic_blocks']:.0f} |"]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--utterances", type=int, default=len(COMMANDS))
    ap.add_argument("--gap-s", type=float, default=1.5, help="room noise between commands")
    ap.add_argument("--idle-s", type=float, default=30.0, help="how long to measure CPU while silent")
    ap.add_argument("--model", help="recognizer checkpoint (default: models/asr.pt, else random weights)")
    ap.add_argument("--final-pass", choices=("whisper", "ctc", "both"), default="both",
                    help="[asr] final_pass of the daemon; both = one run each")
    ap.add_argument("--json", help="also write the raw rows here")
    args = ap.parse_args()
    modes = ("whisper", "ctc") if args.final_pass == "both" else (args.final_pass,)
    commands_text = (COMMANDS * (args.utterances // len(COMMANDS) + 1))[: args.utterances]
    with tempfile.TemporaryDirectory(prefix="bench-daemon-") as tmp_name:
        tmp = Path(tmp_name)
        model, model_desc = ensure_model(tmp, args.model)
        commands = synthesize(tmp / "wav", commands_text)
        results = {}
        for mode in modes:
            with VirtualMic(tmp / f"pulse-{mode}") as vm:
                player = PacedPlayer(vm)
                daemon = DaemonProcess(tmp, model, {**os.environ, **vm.env, "ASSISTANT_ASR_FINAL_PASS": mode})
                try:
                    results[mode] = asyncio.run(measure(daemon, player, commands, args.gap_s, args.idle_s))
                finally:
                    rc = daemon.stop()
                    player.close()
            print(summarize(results[mode], model_desc, VadConfig().hangover_ms, mode))
            print(f"\n(daemon exit status {rc})\n", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
