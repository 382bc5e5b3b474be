"""`assistant voices add NAME FILE...`, `assistant voices list`, `assistant voices remove NAME`.

add: enrols NAME from audio files (any format libsndfile reads; three
sentences read aloud is best). Each recording is checked (speech, one voice);
a refused one is named with the reason and nothing is stored. Only the
embeddings are kept, never the audio. remove: deletes every embedding of NAME.
The store is `[voices] db_path` (default: voices.sqlite3 beside the preference
database); a running daemon picks changes up at its next utterance.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from assistant.config import default_config_path, load_config
from assistant.errors import AssistantError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="voices_action", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="enrol a person's voice from audio files")
    add.add_argument("name", help="the person's name, used as their profile's user id (e.g. Anna)")
    add.add_argument("files", nargs="+", metavar="FILE", help="recordings of that person alone (three sentences is best)")
    lst = sub.add_parser("list", help="list the enrolled voices")
    lst.add_argument("--json", action="store_true", help="print JSON")
    rm = sub.add_parser("remove", help="delete a person's voice (their embeddings)")
    rm.add_argument("name")


def _service(args: argparse.Namespace):
    from assistant.voices.service import VoiceService

    config = load_config(args.config or default_config_path())
    service = VoiceService.from_config(config.voices, config.preferences)
    if service.error:
        raise AssistantError(service.error)
    return service


def run(args: argparse.Namespace) -> int:
    from assistant.audio.io import load_audio
    from assistant.voices.speech_check import NotOneSpeaker

    service = _service(args)
    try:
        if args.voices_action == "add":
            recordings = []
            for path in args.files:
                try:
                    recordings.append(load_audio(path))
                except Exception as exc:  # noqa: BLE001 - libsndfile raises several kinds
                    raise AssistantError(f"cannot read {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; "
                                         "expected an audio file (WAV, FLAC, Ogg, MP3)") from None
            try:
                result = service.enrol(args.name, recordings)
            except NotOneSpeaker as exc:
                raise AssistantError(f"{args.name}'s voice was not saved: {exc}") from None
            for warning in result.warnings:
                print(f"warning: {warning}", file=sys.stderr)
            print(f"enrolled {result.name}: {result.recordings} recording(s), {result.speech_s:.1f} s of speech")
        elif args.voices_action == "list":
            voices = service.voices()
            if args.json:
                print(json.dumps([{"name": v.user, "recordings": v.utterances, "speech_s": round(v.speech_s, 1),
                                   "enrolled": v.enrolled_ts} for v in voices]))
            elif not voices:
                print("no voices enrolled")
            for v in voices if not args.json else ():
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(v.enrolled_ts))
                print(f"{v.user}\t{v.utterances} recording(s)\t{v.speech_s:.1f} s\t{when}")
        else:
            removed = service.forget(args.name)
            if not removed:
                raise AssistantError(f"no voice named {args.name!r} is enrolled; `assistant voices list` shows them")
            print(f"removed {args.name}'s voice ({removed} recording(s))")
    finally:
        service.close()
    return 0
