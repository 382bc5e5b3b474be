"""The headline end-to-end figure: say a song, get that song.

Spoken commands that name catalog songs, artists and "like X" requests, in
voices that never trained the recognizer, clean and with real kitchen noise at
10 and 0 dB SNR, streamed as remote audio over the daemon's WebSocket (the
public protocol, docs/protocol.md) to a daemon this script starts itself.
Scored on what comes back: the named song first (the artist for artist-only
requests, the name in the intent's slots or its sure catalog match for "like X"), with misses by kind.

    .venv/bin/python bench/spoken_e2e.py                       # held-out voices, full run (~15 min on 2 cores)
    .venv/bin/python bench/spoken_e2e.py --quick               # a few commands
    .venv/bin/python bench/spoken_e2e.py --voices train        # the validation set (training voices, other songs)
    .venv/bin/python bench/spoken_e2e.py --dump runs/spoken/valid --voices train   # clips + manifest.jsonl, no daemon
    .venv/bin/python bench/spoken_e2e.py --write-results       # also bench/RESULTS.md and the README's table
    .venv/bin/python bench/spoken_e2e.py --at HEAD             # the daemon of a commit, not the working tree
    .venv/bin/python bench/spoken_e2e.py --from-results R.json --baseline B.json --write-results  # re-render a run

Results: runs/spoken_e2e/results-<voices>.json (every command, event and score).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from spoken_audio import (RATE_HZ, ClipMaker, VoiceSetting, load_noise, snr_label,  # noqa: E402
                          voice_settings, write_wav)
from spoken_commands import KINDS, Command, load_catalog, make_commands, used_keys  # noqa: E402

HELDOUT_SEED = 21
TRAIN_SEED = 2121
DEFAULT_COMMANDS = {"heldout": 96, "train": 180}
HELDOUT_RESERVE = 400      # the train set avoids every name of the first 400 held-out commands
QUICK_COMMANDS = 8
DEFAULT_SNRS = "clean,10,0"
DEFAULT_NOISE = REPO.parent / "shared" / "data" / "noise" / "kitchen.flac"
DEFAULT_CATALOG = REPO / "index" / "default_catalog.csv"
FRAME_MS = 20
TAIL_S = 2.5               # noise (or quiet) streamed after a clip while an utterance is still open
MAX_SPEED = 1.5            # the daemon drops remote audio sent faster than this (beyond a 3 s head start)
OUT_DIR = REPO / "runs" / "spoken_e2e"
CACHE_DIR = REPO / "runs" / "spoken_cache"
RESULTS_MD = REPO / "bench" / "RESULTS.md"
README = REPO / "README.md"
SECTION = "## Spoken end to end"
README_START, README_END = "<!-- spoken-e2e:start -->", "<!-- spoken-e2e:end -->"


@dataclass(frozen=True)
class Item:
    """One clip to send: a command, its voice and noise level."""

    command: Command
    voice: VoiceSetting
    snr_db: float | None


# --------------------------------------------------------------------------- plan

def parse_snrs(text: str) -> list[float | None]:
    out: list[float | None] = []
    for part in text.split(","):
        part = part.strip().lower()
        if part == "clean":
            out.append(None)
            continue
        try:
            out.append(float(part.removesuffix("db")))
        except ValueError:
            raise SystemExit(f"error: --snr: expected 'clean' or a number of dB, got {part!r}") from None
    if not out:
        raise SystemExit("error: --snr: no level given")
    return out


def commands_for(kind: str, n: int, catalog: Path) -> list[Command]:
    """The held-out set (seed 21), or the validation set (seed 2121) with none of the held-out names."""
    songs = load_catalog(catalog)
    if kind == "heldout":
        return make_commands(songs, n, HELDOUT_SEED, prefix="h")
    reserve = used_keys(make_commands(songs, max(HELDOUT_RESERVE, DEFAULT_COMMANDS["heldout"]), HELDOUT_SEED))
    return make_commands(songs, n, TRAIN_SEED, exclude=reserve, prefix="v")


def build_plan(commands: list[Command], voices: list[VoiceSetting], snrs: list[float | None]) -> list[Item]:
    """Command i is spoken by voice i mod len(voices), at every noise level (levels next to each other)."""
    return [Item(c, voices[i % len(voices)], s) for i, c in enumerate(commands) for s in snrs]


# --------------------------------------------------------------------------- dump

def dump(items: list[Item], maker: ClipMaker, out_dir: Path) -> Path:
    """Write every clip as a 16 kHz WAV and a manifest.jsonl beside them; no daemon needed."""
    from assistant.training.synth import speaker_slug

    audio_dir = out_dir / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    manifest = out_dir / "manifest.jsonl"
    tmp = manifest.with_suffix(".jsonl.part")
    t0 = time.monotonic()
    with open(tmp, "w", encoding="utf-8") as f:
        for k, it in enumerate(items):
            clip, speech_s = maker.clip(it.voice, it.command.id, it.command.text, it.snr_db)
            tag = "clean" if it.snr_db is None else f"snr{it.snr_db:g}"
            name = f"{it.command.id}_{speaker_slug(it.voice.speaker)}_x{it.voice.speed:g}_{tag}.wav"
            write_wav(audio_dir / name, clip)
            c = it.command
            f.write(json.dumps({"audio": f"audio/{name}", "text": c.text, "kind": c.kind,
                                "expected": {"name": c.name, "title": c.expected_title, "artist": c.expected_artist,
                                             "catalog_title": c.catalog_title, "catalog_artist": c.catalog_artist},
                                "command_id": c.id, "voice": it.voice.label, "speaker": it.voice.speaker,
                                "speed": it.voice.speed, "snr_db": it.snr_db,
                                "duration_s": round(len(clip) / RATE_HZ, 3), "speech_s": round(speech_s, 3)}) + "\n")
            if (k + 1) % 50 == 0:
                print(f"  {k + 1}/{len(items)} clips ({time.monotonic() - t0:.0f} s)", flush=True)
    tmp.replace(manifest)
    return manifest


# --------------------------------------------------------------------------- streaming

class Connection:
    """One WebSocket client: a reader task files events by source and by request id."""

    def __init__(self, ws):
        self.ws = ws
        self.events: list[dict] = []
        self.changed = asyncio.Event()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            if isinstance(raw, bytes):
                continue
            msg = json.loads(raw)
            msg["_t"] = time.monotonic()
            self.events.append(msg)
            self.changed.set()

    async def wait_for(self, pred, timeout_s: float, since: int = 0) -> dict | None:
        """The first event from index `since` on (already received or still to come) for which `pred` holds."""
        deadline = time.monotonic() + timeout_s
        seen = since
        while True:
            for ev in self.events[seen:]:
                if pred(ev):
                    return ev
            seen = len(self.events)
            left = deadline - time.monotonic()
            if left <= 0 or self.task.done():
                return None
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except asyncio.TimeoutError:
                pass

    def of_source(self, source: str) -> list[dict]:
        return [e for e in self.events if e.get("source") == source]


def _utterances(events: list[dict]) -> dict[str, dict]:
    """utterance id -> {start, end, final, intent, recs, error} from one source's events."""
    out: dict[str, dict] = {}
    for e in events:
        uid = e.get("utterance")
        if not uid:
            continue
        u = out.setdefault(uid, {})
        key = {"vad.start": "start", "vad.end": "end", "transcript.final": "final", "intent": "intent",
               "recommendations": "recs", "error": "error", "answer": "answer"}.get(e["type"])
        if key:
            u[key] = e
    return out


def _settled(utts: dict[str, dict]) -> bool:
    """Every utterance ended, and every accepted one has its final and then its intent (or an error)."""
    for u in utts.values():
        if "end" not in u and "final" not in u:
            return False
        if u.get("end", {}).get("accepted", True) is False:
            continue
        if "final" not in u:
            return False
        f = u["final"]
        if f.get("accepted") and f.get("command") and "intent" not in u and "error" not in u:
            return False
    return True


async def stream_item(conn: Connection, item: Item, clip: np.ndarray, tail: np.ndarray, speech_s: float,
                      speed: float, timeout_s: float, k: int) -> dict:
    """Stream one clip as its own remote audio stream; wait for its answer; return what came back."""
    ws = conn.ws
    await ws.send(json.dumps({"type": "audio.start", "id": f"a{k}",
                              "format": {"encoding": "pcm_s16le", "sample_rate_hz": RATE_HZ, "channels": 1}}))
    ack = await conn.wait_for(lambda e: e.get("type") in ("ack", "error") and e.get("request") == f"a{k}", 30)
    if ack is None or ack["type"] != "ack":
        raise RuntimeError(f"audio.start refused: {ack}")
    source = ack["source"]
    frame = RATE_HZ * FRAME_MS // 1000
    pcm = (np.clip(np.concatenate([clip, tail]), -1, 1) * 32767).astype("<i2").tobytes()
    n_main = -(-len(clip) // frame)
    n_all = -(-(len(clip) + len(tail)) // frame)
    t0 = time.monotonic()
    speech_end_t = t0 + (0.5 + speech_s) / speed
    sent = 0
    for i in range(n_all):
        if i >= n_main:  # the tail: only while an utterance is open, or none has ended yet
            utts = _utterances(conn.of_source(source))
            if any("end" in u for u in utts.values()) and all("end" in u for u in utts.values()):
                break
        delay = t0 + i * FRAME_MS / 1000 / speed - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await ws.send(pcm[2 * i * frame: 2 * (i + 1) * frame])
        sent = i + 1
    await ws.send(json.dumps({"type": "audio.end", "id": f"e{k}"}))
    await conn.wait_for(lambda e: e.get("request") == f"e{k}", 30)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not _settled(_utterances(conn.of_source(source))):
        await conn.wait_for(lambda e: e.get("source") == source, deadline - time.monotonic(), since=len(conn.events))
    # recommendations follow their intent in the same queue: a pong after them means all have arrived
    await ws.send(json.dumps({"type": "ping", "id": f"p{k}"}))
    await conn.wait_for(lambda e: e.get("type") == "pong" and e.get("request") == f"p{k}", 30)
    utts = _utterances(conn.of_source(source))
    timed_out = not _settled(utts)
    return _collect(utts, speech_end_t, timed_out, sent * FRAME_MS / 1000 - len(clip) / RATE_HZ)


def _collect(utts: dict[str, dict], speech_end_t: float, timed_out: bool, tail_sent_s: float) -> dict:
    finals = [u["final"] for u in utts.values() if "final" in u and u["final"].get("accepted")]
    with_intent = [u for u in utts.values() if "intent" in u]
    music = [u for u in with_intent if u["intent"].get("name") != "none"]
    answer = (music or with_intent or [{}])[-1]
    intent, recs = answer.get("intent"), answer.get("recs")
    return {
        "finals": [f["text"] for f in finals],
        "transcript": " ".join(f["text"] for f in finals) if finals else None,
        "intent": {"name": intent["name"], "slots": intent.get("slots"), "confidence": intent.get("confidence")}
        if intent else None,
        "items": [{"title": i.get("title"), "artist": i.get("artist")} for i in recs["items"][:5]] if recs else None,
        "utterances": len(utts),
        "vad_end": [u["end"].get("reason") + ("" if u["end"].get("accepted", True) else " (too short)")
                    for u in utts.values() if "end" in u],
        "utterance_ms": [u["end"].get("duration_ms") for u in utts.values() if "end" in u],
        "catalog_names": [n for f in finals for n in (f.get("names") or [])],
        "rejected_finals": [u["final"].get("text") for u in utts.values() if "final" in u and not u["final"].get("accepted")],
        "errors": [u["error"].get("message") for u in utts.values() if "error" in u],
        "timed_out": timed_out,
        "tail_sent_s": round(max(tail_sent_s, 0.0), 2),
        "final_after_speech_ms": round(1000 * (finals[-1]["_t"] - speech_end_t)) if finals else None,
        "recs_after_speech_ms": round(1000 * (recs["_t"] - speech_end_t)) if recs else None,
    }


async def typed_ceiling(conn: Connection, commands: list[Command]) -> dict[str, dict]:
    """Each command's text as a typed `query`: what the rest of the product does with a perfect transcript."""
    out = {}
    for k, c in enumerate(commands):
        rid = f"q{k}"
        await conn.ws.send(json.dumps({"type": "query", "id": rid, "text": c.text}))
        intent = await conn.wait_for(lambda e: e.get("request") == rid and e.get("type") in ("intent", "error"), 60)
        await conn.ws.send(json.dumps({"type": "ping", "id": f"qp{k}"}))
        await conn.wait_for(lambda e: e.get("type") == "pong" and e.get("request") == f"qp{k}", 30)
        recs = next((e for e in conn.events if e.get("request") == rid and e.get("type") == "recommendations"), None)
        out[c.id] = {"intent": {"name": intent["name"], "slots": intent.get("slots")}
                     if intent and intent["type"] == "intent" else None,
                     "items": [{"title": i.get("title"), "artist": i.get("artist")} for i in recs["items"][:5]]
                     if recs else None}
    return out


async def _open(url: str) -> Connection:
    from websockets.asyncio.client import connect

    conn = Connection(await connect(url, max_size=None))
    await conn.wait_for(lambda e: e.get("type") == "hello", 30)
    return conn


def export_commit(rev: str) -> tuple[Path, str]:
    """`git archive` of `rev` under runs/spoken_e2e/tree-<sha> (reused when present): its daemon runs, not the working tree's."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", rev], cwd=REPO, capture_output=True, text=True,
                             check=True, timeout=30).stdout.strip()
    except subprocess.CalledProcessError:
        raise ValueError(f"--at: no such commit {rev!r}") from None
    tree = OUT_DIR / f"tree-{sha}"
    if not (tree / "assistant" / "__init__.py").is_file():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", sha], cwd=REPO, capture_output=True, check=True, timeout=300).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True, timeout=300)
    return tree, sha


async def run_daemon_bench(items: list[Item], commands: list[Command], maker: ClipMaker, args) -> dict:
    from websockets.exceptions import ConnectionClosed

    from daemon_common import DaemonProcess, ensure_model

    tree = Path(args.tree) if args.tree else REPO
    with tempfile.TemporaryDirectory(prefix="spoken-e2e-") as td:
        tmp = Path(td)
        if args.model or tree == REPO:
            model, model_name = ensure_model(tmp, args.model)
        else:
            model, model_name = tree / "models" / "asr.pt", "models/asr.pt"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        daemon = DaemonProcess(tmp, model, env, extra_args=["--input", "none"], cwd=tree)
        conn = None
        try:
            t0 = time.monotonic()
            await daemon.wait_ready(need_listening=False, timeout_s=600)
            print(f"daemon ready in {time.monotonic() - t0:.0f} s on port {daemon.port}", flush=True)
            records, reconnects = [], 0
            conn = await _open(daemon.url)
            hello = next((e for e in conn.events if e.get("type") == "hello"), None)
            status = hello["snapshot"]["status"] if hello else {}
            ceiling = await typed_ceiling(conn, commands) if not args.no_typed else {}
            t_run = time.monotonic()
            for k, it in enumerate(items):
                clip, speech_s = maker.clip(it.voice, it.command.id, it.command.text, it.snr_db)
                full, _ = maker.clip(it.voice, it.command.id, it.command.text, it.snr_db, trail_s=0.5 + TAIL_S)
                try:
                    got = await stream_item(conn, it, clip, full[len(clip):], speech_s, args.speed, args.timeout_s, k)
                except ConnectionClosed as exc:  # say so, reconnect, go on with the next command
                    got = _collect({}, 0.0, True, 0.0)
                    got["errors"] = [f"connection closed: {exc}"]
                    reconnects += 1
                    conn.task.cancel()
                    conn = await _open(daemon.url)
                records.append(_record(it, got, speech_s, ceiling.get(it.command.id)))
                r = records[-1]
                print(f"[{k + 1}/{len(items)}] {'HIT ' if r['hit'] else 'miss'} {snr_label(it.snr_db):>6} "
                      f"{it.voice.label:<28} {it.command.text!r} -> {r['transcript']!r}"
                      + ("" if r["hit"] else f" ({r['miss']})") + (f" {r['errors']}" if r["errors"] else ""),
                      flush=True)
            stream_s = time.monotonic() - t_run
            rss = daemon.memory_mb()
            final_pass = _final_pass_counts(daemon)
            choice_s = _histogram_quantiles(daemon, "assistant_final_choice_seconds")
        finally:
            if conn is not None:
                conn.task.cancel()
                await conn.ws.close()
            code = daemon.stop()
            log_tail = daemon.log.read_text(errors="replace")[-2000:] if daemon.log.exists() else ""
            if daemon.log.exists():
                OUT_DIR.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(daemon.log, OUT_DIR / f"daemon-{args.voices}.log")
    return {"records": records, "model": model_name, "status": status, "stream_s": round(stream_s, 1),
            "reconnects": reconnects, "final_pass_counts": final_pass, "final_choice_seconds": choice_s,
            "load_avg_end": f"{os.getloadavg()[0]:.1f}",
            "daemon_exit": code, "daemon_memory": rss,
            "daemon_log_tail": log_tail if code not in (0, -15) else ""}


def _final_pass_counts(daemon) -> dict[str, float]:
    """The daemon's assistant_final_pass_total by outcome (whisper, ctc, budget, busy, failed), from /metrics."""
    try:
        text = daemon.metrics()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("assistant_final_pass_total{"):
            label = line.split("{", 1)[1].split("}", 1)[0]
            out[label.split("=", 1)[-1].strip('"')] = float(line.rsplit(" ", 1)[1])
    return out


def _histogram_quantiles(daemon, name: str, qs=(0.5, 0.95)) -> dict:
    """Count and quantile upper bounds (the bucket each quantile falls in, seconds) of a /metrics histogram."""
    try:
        text = daemon.metrics()
    except OSError:
        return {}
    buckets = []
    for line in text.splitlines():
        if line.startswith(name + "_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
    if not buckets or buckets[-1][1] == 0:
        return {"count": 0}
    total = buckets[-1][1]
    return {"count": int(total), **{f"p{round(q * 100)}_le_s": next(b for b, c in buckets if c >= q * total) for q in qs}}


def _record(it: Item, got: dict, speech_s: float, typed: dict | None) -> dict:
    from spoken_score import score

    c = it.command.to_dict()
    o = score(c, got["transcript"], got["intent"], got["items"])
    rec = {**c, "voice": it.voice.label, "snr": snr_label(it.snr_db), "snr_db": it.snr_db,
           "speech_s": round(speech_s, 2), **got, "hit": o.hit, "miss": o.miss, "heard": o.heard}
    if typed is not None:
        t = score(c, c["text"], typed["intent"], typed["items"])
        rec["typed_hit"] = t.hit
        rec["typed_miss"] = t.miss
    return rec


# --------------------------------------------------------------------------- reporting

def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "assistant", "models"],
                               cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
        return out + (" (with uncommitted changes in assistant/ or models/)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def report(result: dict, path: Path | None = None) -> str:
    """The markdown section for bench/RESULTS.md, from a results dict (as written to the JSON file)."""
    from daemon_common import machine, percentile
    from spoken_score import markdown_tables, pct, summarize

    recs, snrs, voices = result["records"], result["snrs"], result["voices"]
    s = summarize(recs)
    typed = [r for r in recs if "typed_hit" in r and r["snr"] == snrs[0]]
    lat = [r["recs_after_speech_ms"] for r in recs if r.get("recs_after_speech_ms") is not None]
    n_cmd = len({r["id"] for r in recs})
    kinds = ", ".join(f"{k} {len({r['id'] for r in recs if r['kind'] == k})}" for k in KINDS)
    speakers = {v.rsplit(" x", 1)[0] for v in voices}
    kind = result.get("voices_kind", "heldout")
    who = "held-out (reserved, never trained on)" if kind == "heldout" else "training (validation set)"
    lines = [
        SECTION, "",
        f"`{result['command_line']}`, {result['date']}, commit {result['commit']}, "
        f"{result.get('machine') or machine()}, load average {result['load_avg']} at the start (other engineers' "
        f"jobs). The script starts the daemon (`serve --input none`, shipped models: {result['model']}, final pass "
        f"{result['final_pass']}) and streams each clip as remote audio over `/ws` (16 kHz int16, 20 ms frames, "
        f"{result['speed']:g}x real time), one after another; {n_cmd} commands ({kinds}) from the default catalog, "
        f"seed {result['seed']}, each said by one of {len(voices)} {who} voice settings ({len(speakers)} voices x 2 "
        f"speeds) at every noise level: {len(recs)} clips in {result['stream_s'] / 60:.1f} min. Noise: the real "
        "kitchen noise of ../shared/data/noise, SNR over the speech, seeded offset; 0.5 s of quiet (with the noise "
        "going on) before and after the speech.", "",
        "Hit: the named song first in the recommendations (the artist for artist-only requests; for \"like X\" "
        "the name X in the intent's slots, as heard or as the catalog name the parser is sure it means), names compared normalized and fuzzily (ratio >= 90, spaces ignored). "
        "Misses by their first cause: no accepted final, intent `none`, no recommendations, the name's words not "
        "in the final, or another item although the name was heard.", "",
        markdown_tables(s, voices, snrs, list(KINDS)),
    ]
    base = result.get("baseline")
    if base:
        same = "the same clips" if base.get("same_clips") else "other clips"
        before = ", ".join(f"{k} {pct(base['by_snr'][k])}" for k in snrs if k in base["by_snr"])
        lines.append(f"At commit {base['commit']} ({base['date']}, {same}): {before}."
                     + (f" This run won {base['won']} and lost {base['lost']} of them; among the {base['no_names']} clips "
                        f"whose final took no catalog name, {base['no_names_changed']} changed anyway (run-to-run "
                        "differences: which pass makes the final depends on timing under load, and other commits), "
                        "so a few clips either way are noise." if "won" in base else ""))
    heard = ", ".join(f"{k} {100 * sum(r['heard'] for r in recs if r['snr'] == k) / max(1, sum(r['snr'] == k for r in recs)):.0f} %"
                      for k in snrs)
    lines.append(f"The named song and artist words in the final transcript: {heard}.")
    if typed:
        th = sum(r["typed_hit"] for r in typed)
        lines.append(f"The same {len(typed)} commands typed (`query`, a perfect transcript): {th}/{len(typed)} "
                     f"({100 * th / len(typed):.0f} %) hit; the rest of the gap to the clean figure is the recognizer's.")
    if lat:
        lines.append(f"Recommendations after the end of speech (as streamed): median {percentile(lat, 50):.0f} ms, "
                     f"p95 {percentile(lat, 95):.0f} ms (the 400 ms hangover included).")
    if result.get("final_pass_counts"):
        fp = ", ".join(f"{k} {v:g}" for k, v in result["final_pass_counts"].items())
        lines.append(f"Finals by the daemon's final-pass outcome (/metrics `assistant_final_pass_total`): {fp}; "
                     f"load average {result.get('load_avg_end', '?')} at the end.")
    swapped = [r for r in recs if r.get("catalog_names")]
    if swapped:
        from collections import Counter

        from spoken_score import same_name

        def expected(r: dict, n: dict) -> bool:
            return any(x and same_name(str(n.get("name", "")), x) for x in (r["name"], r["expected_artist"]))

        right = sum(any(expected(r, n) for n in r["catalog_names"]) for r in swapped)
        other = Counter(str(n.get("name")) for r in swapped for n in r["catalog_names"] if not expected(r, n))
        lines.append(f"Finals that took catalog names (`transcript.final` `names`): {len(swapped)} clips, {right} of "
                     f"them with the named song or artist; other names put in, most often: "
                     + ", ".join(f"\"{k}\" {v}" for k, v in other.most_common(6)) + ".")
    timeouts = sum(r["timed_out"] for r in recs)
    split = sum(r["utterances"] > 1 for r in recs)
    lines.append(f"Clips cut into several utterances by the VAD: {split}; clips with no answer within "
                 f"{result.get('timeout_s', 30):g} s: {timeouts}; reconnections: {result.get('reconnects', 0)}.")
    misses = [r for k in snrs for r in [r for r in recs if not r["hit"] and r["snr"] == k][:5]]
    if misses:
        lines += ["", "The first misses at each level (said -> final transcript -> first song, or the slots):", ""]
        for r in misses:
            got = (f"{r['items'][0]['title']} / {r['items'][0]['artist']}" if r.get("items")
                   else json.dumps((r.get("intent") or {}).get("slots"), ensure_ascii=False))
            lines.append(f"- {r['snr']}, {r['voice']}: \"{r['text']}\" -> \"{r['transcript']}\" -> {got} ({r['miss']})")
    headline = ", ".join(f"{k} {pct(s['by_snr'][k])}" for k in snrs if k in s["by_snr"])
    lines += ["", f"Headline: {headline} (issue 21's targets: >= 95 % clean, >= 90 % at 10 dB, >= 80 % at 0 dB). "
              f"Every command, event and score: `{_rel(path) if path else f'runs/spoken_e2e/results-{kind}.json'}` (not committed)."]
    return "\n".join(lines) + "\n"


def rescore_records(result: dict) -> dict:
    """Score a saved run's records again with today's rule (bench/spoken_score.py) from what the daemon sent:
    runs saved before a change of the rule stay comparable."""
    from spoken_score import score

    for r in result["records"]:
        command = {k: r.get(k) for k in ("id", "text", "kind", "name", "expected_title", "expected_artist",
                                         "catalog_title", "catalog_artist")}
        o = score(command, r.get("transcript"), r.get("intent"), r.get("items"))
        r["hit"], r["miss"], r["heard"] = o.hit, o.miss, o.heard
    return result


def attach_baseline(result: dict, path: str) -> None:
    """Put an earlier run's per-level figures beside this one's (`--baseline`)."""
    from spoken_score import summarize

    base = rescore_records(json.loads(Path(path).read_text(encoding="utf-8")))
    clips = lambda r: {(x["id"], x["voice"], x["snr"]) for x in r["records"]}  # noqa: E731
    before = {(r["id"], r["voice"], r["snr"]): r for r in base["records"]}
    pairs = [(before[k], r) for r in result["records"] if (k := (r["id"], r["voice"], r["snr"])) in before]
    result["baseline"] = {"commit": str(base["commit"]).split()[0], "date": base["date"],
                          "by_snr": summarize(base["records"])["by_snr"], "same_clips": clips(base) == clips(result),
                          "won": sum(not b["hit"] and a["hit"] for b, a in pairs),
                          "lost": sum(b["hit"] and not a["hit"] for b, a in pairs),
                          "no_names": sum(not a.get("catalog_names") for _, a in pairs),
                          "no_names_changed": sum(not a.get("catalog_names") and a["hit"] != b["hit"] for b, a in pairs)}


def _interrupted(signum, frame) -> None:
    raise SystemExit(128 + signum)


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def _machine() -> str:
    from daemon_common import machine

    return machine()


def publish(result: dict, path: Path, write: bool) -> None:
    """Print the section; with `write`, put it in bench/RESULTS.md (and, for held-out voices, the README table)."""
    section = report(result, path)
    print("\n" + section)
    print(f"results: {path}")
    if write and result.get("voices_kind", "heldout") != "heldout":
        print("not written: bench/RESULTS.md and the README hold the held-out voices' figures only")
    elif write:
        RESULTS_MD.write_text(replace_section(RESULTS_MD.read_text(encoding="utf-8"), section), encoding="utf-8")
        README.write_text(replace_readme(README.read_text(encoding="utf-8"), readme_table(result)), encoding="utf-8")
        print(f"updated {RESULTS_MD.relative_to(REPO)} and README.md")


def readme_table(result: dict) -> str:
    from spoken_score import pct, summarize

    snrs = result["snrs"]
    s = summarize(result["records"])
    n_cmd = len({r["id"] for r in result["records"]})
    head = "| spoken command, held-out voices | " + " | ".join(snrs) + " |\n|---|" + "---|" * len(snrs)
    row = "| named song (or artist) first | " + " | ".join(pct(s["by_snr"].get(k, {"n": 0})) for k in snrs) + " |"
    base = result.get("baseline")
    if base:
        row += (f"\n| the same at commit {base['commit']} | "
                + " | ".join(pct(base["by_snr"].get(k, {"n": 0})) for k in snrs) + " |")
    sha = str(result["commit"]).split()[0]
    return (f"{README_START}\nSay a song, get that song (`bench/spoken_e2e.py`, {result['date']}, commit {sha}): "
            f"{n_cmd} spoken commands naming a catalog song or artist, in voices that never trained the recognizer, "
            "streamed to the daemon, clean and with kitchen noise; targets 95 / 90 / 80 %. "
            "Details and misses: `bench/RESULTS.md`.\n\n"
            f"{head}\n{row}\n{README_END}")


def replace_section(text: str, section: str) -> str:
    """Put `section` in place of the existing '## Spoken end to end' section, or before the first '## '."""
    if SECTION in text:
        start = text.index(SECTION)
        nxt = text.find("\n## ", start + len(SECTION))
        return text[:start] + section + ("\n" + text[nxt + 1:] if nxt >= 0 else "")
    first = text.find("\n## ")
    if first < 0:
        return text.rstrip("\n") + "\n\n" + section
    return text[:first + 1] + section + "\n" + text[first + 1:]


def replace_readme(text: str, table: str) -> str:
    """The table between the markers, or after the README's first paragraph."""
    if README_START in text and README_END in text:
        a, b = text.index(README_START), text.index(README_END) + len(README_END)
        return text[:a] + table + text[b:]
    first = text.find("\n## ")
    return text[:first + 1] + table + "\n" + text[first:] if first >= 0 else text + "\n" + table + "\n"


# --------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--voices", choices=("heldout", "train"), default="heldout",
                    help="heldout: the reserved voices (the benchmark); train: training voices and other songs (validation)")
    ap.add_argument("--commands", type=int, default=None, help="number of commands (default 96 heldout, 180 train)")
    ap.add_argument("--quick", action="store_true", help=f"{QUICK_COMMANDS} commands")
    ap.add_argument("--snr", default=DEFAULT_SNRS, help=f"noise levels, comma separated (default {DEFAULT_SNRS})")
    ap.add_argument("--noise", default=str(DEFAULT_NOISE), help="noise file (default ../shared/data/noise/kitchen.flac)")
    ap.add_argument("--catalog", default=str(DEFAULT_CATALOG), help="catalog CSV the commands name")
    ap.add_argument("--dump", metavar="DIR", help="write the clips (16 kHz WAV) and manifest.jsonl to DIR; no daemon")
    ap.add_argument("--speed", type=float, default=1.0, help=f"send audio this many times faster than real time (max {MAX_SPEED})")
    ap.add_argument("--timeout-s", type=float, default=30.0, help="per command, after the audio ends")
    ap.add_argument("--model", help="recognizer checkpoint (default: the shipped models/asr.pt)")
    ap.add_argument("--at", metavar="REV", help="run the daemon of this commit (a git archive under runs/), not the working tree")
    ap.add_argument("--no-typed", action="store_true", help="skip the typed-query ceiling")
    ap.add_argument("--out", help="results JSON (default runs/spoken_e2e/results-<voices>.json)")
    ap.add_argument("--from-results", metavar="JSON", help="report (and with --write-results, write) a saved run; runs nothing")
    ap.add_argument("--baseline", metavar="JSON", help="an earlier run's results file, shown beside this run's figures")
    ap.add_argument("--write-results", action="store_true", help="replace the section in bench/RESULTS.md and the README table")
    args = ap.parse_args(argv)
    if args.from_results:
        try:
            result = rescore_records(json.loads(Path(args.from_results).read_text(encoding="utf-8")))
            result.setdefault("voices_kind", "train" if "--voices train" in result.get("command_line", "") else "heldout")
            if args.baseline:
                attach_baseline(result, args.baseline)
        except (OSError, ValueError, KeyError) as exc:
            print(f"error: --from-results: {exc}", file=sys.stderr)
            return 2
        publish(result, Path(args.from_results), args.write_results)
        return 0
    if not 0.1 <= args.speed <= MAX_SPEED:
        print(f"error: --speed must be between 0.1 and {MAX_SPEED} (the daemon drops faster audio), got {args.speed}",
              file=sys.stderr)
        return 2
    if args.timeout_s <= 0:
        print(f"error: --timeout-s must be > 0, got {args.timeout_s}", file=sys.stderr)
        return 2
    n = QUICK_COMMANDS if args.quick else (args.commands if args.commands is not None else DEFAULT_COMMANDS[args.voices])
    if n < 1:
        print(f"error: --commands must be >= 1, got {n}", file=sys.stderr)
        return 2
    snrs = parse_snrs(args.snr)
    try:
        commands = commands_for(args.voices, n, Path(args.catalog))
        noise = load_noise(args.noise) if any(s is not None for s in snrs) else None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            voices = voice_settings(args.voices)
        for w in caught:
            print(f"warning: {w.message}", file=sys.stderr)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.tree, commit = None, git_commit()
    if args.at and not args.dump:
        try:
            tree, sha = export_commit(args.at)
        except (ValueError, OSError, subprocess.SubprocessError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        args.tree, commit = str(tree), f"{sha} (exported; the working tree's changes not included)"
    seed = HELDOUT_SEED if args.voices == "heldout" else TRAIN_SEED
    maker = ClipMaker(CACHE_DIR, noise, seed)
    items = build_plan(commands, voices, snrs)
    print(f"{len(commands)} commands x {len(snrs)} noise levels = {len(items)} clips; "
          f"{len(voices)} voice settings: {', '.join(v.label for v in voices)}", flush=True)
    if args.dump:
        manifest = dump(items, maker, Path(args.dump))
        print(f"wrote {manifest} ({len(items)} clips)")
        return 0
    load_avg = f"{os.getloadavg()[0]:.1f}"
    for sig in (signal.SIGTERM, signal.SIGINT):  # a kill stops the daemon too (the `finally` runs)
        signal.signal(sig, _interrupted)
    t0 = time.monotonic()
    result = asyncio.run(run_daemon_bench(items, commands, maker, args))
    status = result.pop("status") or {}
    result.update(
        command_line="bench/spoken_e2e.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        date=datetime.now(timezone.utc).strftime("%Y-%m-%d"), commit=commit, seed=seed,
        load_avg=load_avg, voices=[v.label for v in voices], snrs=[snr_label(s) for s in snrs],
        final_pass=(status.get("asr") or {}).get("final_pass", "unknown"), wall_s=round(time.monotonic() - t0, 1),
        speed=args.speed, timeout_s=args.timeout_s, voices_kind=args.voices, machine=_machine())
    from spoken_score import summarize

    result["summary"] = summarize(result["records"])
    if args.baseline:
        try:
            attach_baseline(result, args.baseline)
        except (OSError, ValueError, KeyError) as exc:
            print(f"warning: --baseline not used: {exc}", file=sys.stderr)
    out = Path(args.out) if args.out else OUT_DIR / f"results-{args.voices}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
    publish(result, out, args.write_results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
