"""`assistant devices`: list the audio input devices the daemon can open."""

from __future__ import annotations

import argparse
import json

from assistant.audio.capture_worker import import_sounddevice


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object per device")


def input_devices() -> list[dict]:
    sd = import_sounddevice()
    try:
        default_in = sd.query_devices(kind="input")["index"]
    except (sd.PortAudioError, ValueError):
        default_in = None
    apis = sd.query_hostapis()
    out = []
    for d in sd.query_devices():
        if d["max_input_channels"] < 1:
            continue
        out.append({"index": d["index"], "name": d["name"], "host_api": apis[d["hostapi"]]["name"],
                    "channels": d["max_input_channels"], "default_sample_rate_hz": int(d["default_samplerate"]),
                    "default": d["index"] == default_in})
    return out


def run(args: argparse.Namespace) -> int:
    devices = input_devices()
    if args.json:
        for d in devices:
            print(json.dumps(d))
        return 0
    if not devices:
        print("no audio input devices found (is a microphone connected, or PulseAudio/PipeWire running?)")
        return 1
    print(f"{'':2}{'index':>5}  {'name':40}  {'host API':12}  {'ch':>3}  {'rate Hz':>7}")
    for d in devices:
        mark = "*" if d["default"] else " "
        print(f"{mark:2}{d['index']:>5}  {d['name'][:40]:40}  {d['host_api'][:12]:12}  {d['channels']:>3}  {d['default_sample_rate_hz']:>7}")
    print('\n* = system default. Set [audio] device in config.toml to an index or a name substring ("" = default).')
    return 0
