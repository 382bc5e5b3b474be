"""Soak run: the daemon for half an hour with a looping spoken-command file, 10 clients and a remote stream.

    nice -n 5 .venv/bin/python bench/soak.py [--minutes 30] [--clients 10] [--sample-s 30] [--json FILE]

`assistant serve --input FILE --loop-input` on the default configuration (the shipped recognizer with its
Whisper second pass, the default catalog, a preference database in a temporary folder). FILE holds eight
espeak-ng commands separated by 2 s of room noise; the daemon plays it in real time, again and again. One more
client streams eight other commands the same way as remote audio (20 ms frames, real time, looping). Ten
clients listen to everything; each also types a request every two minutes and reports the top song as
`played`.

Measured, every `--sample-s`: the daemon's resident memory (VmRSS) and CPU time, the mean end-of-speech ->
transcript.final latency over the interval (the daemon's own histogram, every source), the recognizer's
queue depth (work owed), the load average.
At the end:
  - finals missed: spoken commands (file and remote, located by their position in the source's stream,
    from vad.start/vad.end) that ended before the soak did and got no transcript.final, and accepted
    utterances (vad.end accepted) without a final. At the end the stream stops and the clients keep
    listening while the daemon works off what it still owes (at most `--drain-s`): a late final is
    counted as late (latency), not as missed;
  - events lost: finals that some listening client did not receive, summed over the ten clients;
  - latency drift: the remote stream's end-of-speech -> final latency, median of the first and of the last
    five minutes; the daemon's mean final latency per interval;
  - RSS growth: from the first sample after two minutes (warm: model, catalog, caches loaded) to the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from daemon_common import COMMANDS, RATE, DaemonProcess, ensure_model, machine, percentile, synthesize
from fuzz_protocol import metric

FRAME = RATE * 20 // 1000  # remote audio frames of 20 ms
GAP_S = 2.0                # room noise between commands
TAIL_SILENCE_MS = 1500     # what the file input appends to each round (assistant/audio/file_source.py)


def speech_span(audio: np.ndarray) -> tuple[int, int]:
    """First and last sample of the 10 ms frames louder than 1 % of the loudest."""
    frames = audio[: len(audio) // 160 * 160].reshape(-1, 160)
    rms = np.sqrt((frames ** 2).mean(axis=1) + 1e-12)
    loud = np.flatnonzero(rms > rms.max() * 0.01)
    return int(loud[0] * 160), int((loud[-1] + 1) * 160)


def program(clips: list, seed: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Commands separated by room noise -> (audio, [(speech start, speech end) in samples])."""
    rng = np.random.default_rng(seed)
    noise = lambda n: (0.003 * rng.standard_normal(n)).astype(np.float32)  # noqa: E731
    parts, spans, pos = [noise(RATE)], [], RATE
    for _, audio, _ in clips:
        start, end = speech_span(audio)
        spans.append((pos + start, pos + end))
        parts += [audio + noise(len(audio)), noise(int(GAP_S * RATE))]
        pos += len(audio) + int(GAP_S * RATE)
    return np.concatenate(parts), spans


class Listener:
    """One of the ten clients: records every final; types a request every two minutes."""

    def __init__(self, n: int, url: str, stop: asyncio.Event, query_every_s: float):
        self.n, self.url, self.stop, self.query_every_s = n, url, stop, query_every_s
        self.finals: set[tuple[str, str]] = set()
        self.connected_at = None
        self.queries = self.answered = self.played_acked = 0
        self.closed_early = None

    async def run(self, texts: list[str]) -> None:
        from websockets.asyncio.client import connect

        async with connect(self.url, max_size=None) as ws:
            self.connected_at = time.time()
            pending: dict[str, float] = {}

            async def typist() -> None:
                await asyncio.sleep(12 * self.n)
                k = 0
                while not self.stop.is_set():
                    rid = f"l{self.n}-q{k}"
                    pending[rid] = time.monotonic()
                    await ws.send(json.dumps({"type": "query", "id": rid, "text": texts[(self.n + k) % len(texts)],
                                              "user": f"listener{self.n}"}))
                    self.queries += 1
                    k += 1
                    try:
                        await asyncio.wait_for(self.stop.wait(), self.query_every_s)
                    except TimeoutError:
                        pass

            typing = asyncio.create_task(typist())
            try:
                while not self.stop.is_set():
                    try:
                        msg = json.loads(await asyncio.wait_for(ws.recv(), 1.0))
                    except TimeoutError:
                        continue
                    kind = msg["type"]
                    if kind == "transcript.final":
                        self.finals.add((msg["source"], msg["utterance"], msg["ts"]))
                    elif msg.get("request") in pending and kind in ("recommendations", "intent", "error"):
                        if kind != "intent" or msg.get("name") not in ("play", "recommend", "similar", "next"):
                            pending.pop(msg["request"])
                            self.answered += 1
                        if kind == "recommendations" and msg["items"]:
                            await ws.send(json.dumps({"type": "feedback", "id": f"{msg['request']}-p", "song_id": msg["items"][0]["id"],
                                                      "kind": "played", "user": f"listener{self.n}"}))
                    elif kind == "ack" and msg.get("of") == "feedback":
                        self.played_acked += 1
            except Exception as exc:  # noqa: BLE001 - the daemon closed us: reported, counted as lost events
                self.closed_early = repr(exc)
            finally:
                typing.cancel()


class Streamer:
    """The remote audio client: loops its program in real time; records what it sent and when."""

    def __init__(self, url: str, audio: np.ndarray, spans: list[tuple[int, int]], stop: asyncio.Event):
        self.url, self.audio, self.spans, self.stop = url, audio, spans, stop
        self.stop_sending = asyncio.Event()  # set at the end of the soak; `stop` once its finals have come
        self.source = None
        self.sent_ends: list[tuple[int, float]] = []   # (stream position of a command's end in samples, monotonic time sent)
        self.vad: dict[str, dict] = {}                 # utterance -> {"start_ms", "end_ms", "accepted"}
        self.finals: dict[str, float] = {}             # utterance -> monotonic time received
        self.errors: list[dict] = []
        self.position = 0

    async def run(self) -> None:
        from websockets.asyncio.client import connect

        pcm = (np.clip(self.audio, -1, 1) * 32767).astype("<i2").tobytes()
        n = len(self.audio)  # (longer than a frame)
        async with connect(self.url, max_size=None) as ws:
            await ws.send(json.dumps({"type": "audio.start", "id": "soak", "format": {"encoding": "pcm_s16le", "sample_rate_hz": RATE}}))

            async def reader() -> None:
                async for raw in ws:
                    msg = json.loads(raw)
                    kind = msg["type"]
                    if kind == "ack" and msg.get("request") == "soak":
                        self.source = msg["source"]
                    elif msg.get("source") != self.source or self.source is None:
                        continue
                    elif kind == "vad.start":
                        self.vad[msg["utterance"]] = {"start_ms": msg["speech_start_ms"]}
                    elif kind == "vad.end":
                        self.vad.setdefault(msg["utterance"], {}).update(end_ms=msg["speech_end_ms"], accepted=msg["accepted"])
                    elif kind == "transcript.final":
                        self.finals[msg["utterance"]] = time.monotonic()
                    elif kind == "error":
                        self.errors.append(msg)

            task = asyncio.create_task(reader())
            looped = pcm + pcm  # frames that cross the end of the program continue at its start
            t0 = time.monotonic()
            k = 0
            while not self.stop_sending.is_set():
                i = self.position % n
                delay = t0 + k * FRAME / RATE - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await ws.send(looped[2 * i:2 * (i + FRAME)])
                for _, end in self.spans:  # a command's last sample just went out
                    for e in (end, end + n):
                        if i < e <= i + FRAME:
                            self.sent_ends.append((self.position + (e - i), time.monotonic()))
                self.position += FRAME
                k += 1
            await ws.send(json.dumps({"type": "audio.end"}))
            await self.stop.wait()  # still reading: the late finals of what was sent
            task.cancel()


class FileWatcher:
    """Follows the file input's vad and final events (on the first listener's own connection)."""

    def __init__(self, url: str, stop: asyncio.Event):
        self.url, self.stop = url, stop
        self.vad: dict[str, dict] = {}
        self.finals: set[str] = set()

    async def run(self) -> None:
        from websockets.asyncio.client import connect

        async with connect(self.url, max_size=None) as ws:
            while not self.stop.is_set():
                try:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 1.0))
                except TimeoutError:
                    continue
                if msg.get("source") != "file":
                    continue
                if msg["type"] == "vad.start":
                    self.vad[msg["utterance"]] = {"start_ms": msg["speech_start_ms"]}
                elif msg["type"] == "vad.end":
                    self.vad.setdefault(msg["utterance"], {}).update(end_ms=msg["speech_end_ms"], accepted=msg["accepted"])
                elif msg["type"] == "transcript.final":
                    self.finals.add(msg["utterance"])


def heard_commands(spans_ms: list[tuple[float, float]], vad: dict[str, dict], finals, horizon: float) -> tuple[int, int, int]:
    """(expected, heard, accepted utterances without a final) for the commands at `spans_ms` (stream ms) that
    ended by `horizon` (the stream's position when the soak ended)."""
    expected = [(s, e) for s, e in spans_ms if e <= horizon]
    final_spans = [(v["start_ms"], v["end_ms"]) for u, v in vad.items() if u in finals and "end_ms" in v and "start_ms" in v]
    heard = sum(any(fs < e and fe > s for fs, fe in final_spans) for s, e in expected)
    return len(expected), heard, pending(vad, finals, horizon)


def final_latency(metrics: str) -> tuple[float, int]:
    total = count = 0.0
    for line in metrics.splitlines():
        if line.startswith("assistant_final_latency_seconds_sum"):
            total = float(line.split()[-1])
        elif line.startswith("assistant_final_latency_seconds_count"):
            count = float(line.split()[-1])
    return total, int(count)


def pending(vad: dict[str, dict], finals, horizon_ms: float) -> int:
    """Accepted utterances that ended by `horizon_ms` (stream time) and have no final yet."""
    return sum(1 for u, v in vad.items() if v.get("accepted") and v["end_ms"] <= horizon_ms and u not in finals)


async def soak(d: DaemonProcess, minutes: float, n_clients: int, sample_s: float, remote: tuple, texts: list[str],
               drain_s: float) -> dict:
    await d.wait_ready(need_listening=True, timeout_s=900)
    stop = asyncio.Event()
    listeners = [Listener(i, d.url, stop, 120.0) for i in range(n_clients)]
    watcher = FileWatcher(d.url, stop)
    streamer = Streamer(d.url, *remote, stop)
    tasks = [asyncio.create_task(x.run(texts)) for x in listeners] + [asyncio.create_task(watcher.run()),
                                                                     asyncio.create_task(streamer.run())]
    t0 = time.monotonic()
    samples = []
    last_sum, last_count = final_latency(d.metrics())
    horizons = None
    while d.proc.poll() is None:
        await asyncio.sleep(sample_s)
        elapsed = time.monotonic() - t0
        if horizons is None and elapsed >= minutes * 60:  # the end of the soak: the stream stops, the backlog drains
            streamer.stop_sending.set()
            t_end = time.time()
            file_ms = max((v.get("end_ms", 0) for v in watcher.vad.values()), default=0)
            horizons = {"file_ms": file_ms, "remote_ms": streamer.position * 1000 / RATE, "t_end": t_end, "t_end_s": round(elapsed, 1)}
        if d.proc.poll() is not None:
            break
        try:
            text = d.metrics()
        except OSError:  # a starved daemon did not answer /metrics within its timeout: this sample has no latency
            text = ""
        total, count = final_latency(text) if text else (last_sum, last_count)
        samples.append({"t_s": round(elapsed, 1), "phase": "soak" if horizons is None else "drain", **d.memory_mb(),
                        "cpu_s": round(d.cpu_s(), 1), "finals": count,
                        "mean_final_latency_ms": round(1000 * (total - last_sum) / (count - last_count), 1) if count > last_count else None,
                        "asr_queue": metric(text, 'assistant_queue_depth{queue="asr_worker"}') if text else None,
                        "final_pass_queue": metric(text, 'assistant_queue_depth{queue="final_pass_worker"}') if text else None,
                        "load1": os.getloadavg()[0]})
        last_sum, last_count = total, count
        print(json.dumps(samples[-1]), flush=True)
        if horizons is not None:
            left = pending(watcher.vad, watcher.finals, horizons["file_ms"]) + pending(streamer.vad, streamer.finals, horizons["remote_ms"])
            if left == 0 or elapsed - horizons["t_end_s"] > drain_s:
                horizons["drained_s"] = round(elapsed - horizons["t_end_s"], 1)
                horizons["left"] = left
                break
    stop.set()
    await asyncio.wait(tasks, timeout=30)
    return {"samples": samples, "listeners": listeners, "watcher": watcher, "streamer": streamer, "horizons": horizons or {},
            "t_stop": time.time(), "alive": d.proc.poll() is None}


def summarize(r: dict, file_spans: list, round_samples: int, remote_spans: list, remote_len: int, minutes: float) -> dict:
    samples, h = r["samples"], r["horizons"]
    # finals missed, per source, by stream position: commands that ended before the soak did
    rounds = int(h["file_ms"] * RATE / 1000 // round_samples) + 2
    file_ms = [((k * round_samples + s) * 1000 / RATE, (k * round_samples + e) * 1000 / RATE)
               for k in range(rounds) for s, e in file_spans]
    f_expected, f_heard, f_no_final = heard_commands(file_ms, r["watcher"].vad, r["watcher"].finals, h["file_ms"])
    st = r["streamer"]
    laps = st.position // remote_len + 2
    remote_ms = [((k * remote_len + s) * 1000 / RATE, (k * remote_len + e) * 1000 / RATE) for k in range(laps) for s, e in remote_spans]
    r_expected, r_heard, r_no_final = heard_commands(remote_ms, st.vad, st.finals, h["remote_ms"])
    # remote latency: the end of each command as sent -> its utterance's final
    ends = {pos * 1000 / RATE: t for pos, t in st.sent_ends}
    latencies = []  # (time sent, ms)
    for u, v in st.vad.items():
        if u in st.finals and "end_ms" in v:
            sent = [(pos_ms, t) for pos_ms, t in ends.items() if v["start_ms"] < pos_ms <= v["end_ms"] + 1000]
            if sent:
                pos_ms, t = max(sent)
                latencies.append((t, 1000 * (st.finals[u] - t)))
    latencies.sort()
    t_first = latencies[0][0] if latencies else 0
    first5 = [ms for t, ms in latencies if t - t_first <= 300]
    last5 = [ms for t, ms in latencies if t >= latencies[-1][0] - 300] if latencies else []
    # events lost: finals that reached some listener but not another, while all of them were connected
    listeners = r["listeners"]
    t_all = max(l.connected_at or 0 for l in listeners) + 1.0
    window = lambda fs: {(s, u) for s, u, ts in fs if t_all <= ts <= r["t_stop"] - 10}  # noqa: E731
    union = set().union(*(window(l.finals) for l in listeners))
    lost = sum(len(union - window(l.finals)) for l in listeners)
    soaked = [s for s in samples if s["phase"] == "soak"]
    warm = next((s for s in soaked if s["t_s"] >= 120), soaked[0] if soaked else None)
    end = soaked[-1] if soaked else None
    lat = [s["mean_final_latency_ms"] for s in soaked if s["mean_final_latency_ms"] is not None]
    third = max(1, len(lat) // 3)
    return {
        "minutes": round(h.get("t_end_s", 0) / 60, 1), "drain_s": h.get("drained_s"), "alive": r["alive"],
        "daemon_cpu_pct_of_a_core": round(100 * (end["cpu_s"] - soaked[0]["cpu_s"]) / (end["t_s"] - soaked[0]["t_s"]), 1)
        if end and end is not soaked[0] else None,
        "rss_mb_after_drain": samples[-1]["rss_mb"] if samples else None,
        "rss_mb_warm": warm and warm["rss_mb"], "rss_mb_end": end and end["rss_mb"], "peak_rss_mb": end and end["peak_rss_mb"],
        "rss_growth_pct": round(100 * (end["rss_mb"] - warm["rss_mb"]) / warm["rss_mb"], 2) if warm and end else None,
        "file_commands": f_expected, "file_heard": f_heard, "remote_commands": r_expected, "remote_heard": r_heard,
        "finals_missed": (f_expected - f_heard) + (r_expected - r_heard), "accepted_without_final": f_no_final + r_no_final,
        "finals_total": len(union), "events_lost": lost, "listeners_closed_early": sum(l.closed_early is not None for l in listeners),
        "queries": sum(l.queries for l in listeners), "queries_answered": sum(l.answered for l in listeners),
        "played_acked": sum(l.played_acked for l in listeners),
        "remote_latency_ms_first5": {"p50": round(percentile(first5, 50)), "p95": round(percentile(first5, 95)), "n": len(first5)} if first5 else None,
        "remote_latency_ms_last5": {"p50": round(percentile(last5, 50)), "p95": round(percentile(last5, 95)), "n": len(last5)} if last5 else None,
        "daemon_mean_final_latency_ms_first_third": round(statistics.mean(lat[:third]), 1) if lat else None,
        "daemon_mean_final_latency_ms_last_third": round(statistics.mean(lat[-third:]), 1) if lat else None,
        "remote_errors": sorted({e["code"] for e in st.errors}),
        "load1_mean": round(statistics.mean(s["load1"] for s in soaked), 2) if soaked else None,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--sample-s", type=float, default=30.0)
    ap.add_argument("--drain-s", type=float, default=900.0, help="after the soak, how long the finals still owed may take")
    ap.add_argument("--model", help="recognizer checkpoint (default: models/asr.pt)")
    ap.add_argument("--json", help="write the samples and the summary here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp_name:
        tmp = Path(tmp_name)
        model, model_desc = ensure_model(tmp, args.model)
        clips = synthesize(tmp / "wav", COMMANDS[:16])
        file_audio, file_spans = program(clips[:8], 1)
        remote_audio, remote_spans = program(clips[8:16], 2)
        import soundfile as sf

        wav = tmp / "commands.wav"
        sf.write(str(wav), file_audio, RATE, subtype="PCM_16")
        round_samples = len(file_audio) + RATE * TAIL_SILENCE_MS // 1000
        d = DaemonProcess(tmp, model, dict(os.environ), extra_args=["--input", str(wav), "--loop-input"])
        try:
            r = asyncio.run(soak(d, args.minutes, args.clients, args.sample_s, (remote_audio, remote_spans), COMMANDS, args.drain_s))
        finally:
            rc = d.stop()
        summary = summarize(r, file_spans, round_samples, remote_spans, len(remote_audio), args.minutes)
        log_tail = [line for line in d.log.read_text(errors="replace").splitlines() if "Traceback" in line or " ERROR " in line][:20]
    result = {"bench": "soak", "machine": machine(), "model": model_desc, "exit_status": rc, "summary": summary,
              "log_errors": log_tail, "samples": r["samples"]}
    print(json.dumps(summary, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0 if summary["alive"] and summary["finals_missed"] == 0 and summary["events_lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
