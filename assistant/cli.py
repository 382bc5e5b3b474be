"""Command-line entry point: `assistant SUBCOMMAND ...` (also `python -m assistant`).

Each subcommand lives beside the code it drives, in a module exposing
`add_arguments(parser)` and `run(args) -> int`. Modules are imported only when
their subcommand runs, so `assistant --help` stays fast and does no work.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from assistant import __version__
from assistant.errors import AssistantError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("assistant.server.cli_serve", "run the daemon: microphone/file/remote audio -> WebSocket events"),
    "devices": ("assistant.audio.cli_devices", "list audio input devices"),
    "transcribe": ("assistant.asr.cli", "transcribe audio files with the streaming recognizer"),
    "evaluate": ("assistant.training.cli_evaluate", "WER/CER of the recognizer on a JSONL manifest"),
    "train": ("assistant.training.cli_train", "train the speech recognizer from a config file"),
    "synth": ("assistant.training.cli_synth", "build the synthesized speech corpus"),
    "parse": ("assistant.nlu.cli", "parse a command text into intent and slots"),
    "nlu": ("assistant.nlu.cli_train", "train the learned intent parser (nlu train)"),
    "recommend": ("assistant.recommend.cli_recommend", "recommend songs for a command text"),
    "index": ("assistant.recommend.cli_index", "build the catalog's semantic index"),
    "voices": ("assistant.voices.cli", "enrol, list and remove the voices that choose whose profile is used"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="assistant", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"assistant {__version__}")
    parser.add_argument("--config", metavar="FILE", help="config.toml to use (default: ./config.toml when present, else built-in defaults)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        # Arguments are added lazily in main(); `--help` on a subcommand needs them.
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # Find the subcommand and let its module add its arguments before the real parse.
    command = next((a for a in argv if a in COMMANDS), None)
    if command is not None:
        module = importlib.import_module(COMMANDS[command][0])
        sub_action = next(a for a in parser._subparsers._group_actions if isinstance(a, argparse._SubParsersAction))
        module.add_arguments(sub_action.choices[command])
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except AssistantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
