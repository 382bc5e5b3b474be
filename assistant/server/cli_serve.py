"""`assistant serve`: run the daemon (microphone, file or remote audio -> WebSocket events)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys

from assistant.config import default_config_path, load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", default="mic", metavar="SOURCE",
                        help='local audio input: "mic" (default, [audio] device), "none" (remote audio and text only), or an audio file')
    parser.add_argument("--host", help="bind address (overrides [server] host)")
    parser.add_argument("--port", type=int, help="port (overrides [server] port; 0 = any free port)")
    parser.add_argument("--wait-for-client", action="store_true", help="with a file input: start playing once the first WebSocket client has connected")
    parser.add_argument("--fast", action="store_true", help="with a file input: feed it as fast as possible instead of in real time")
    parser.add_argument("--exit-after-input", action="store_true", help="with a file input: stop once it has been played and answered")
    parser.add_argument("--loop-input", action="store_true", help="with a file input: play it again and again (soak runs, demos)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


def run(args: argparse.Namespace) -> int:
    # Progress bars of model loading are noise in a service's journal.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from assistant.daemon import Daemon, DaemonOptions, serve  # heavy imports only when serving

    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("websockets", "faiss"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    config = load_config(args.config or default_config_path())
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if overrides:
        server = dataclasses.replace(config.server, **overrides)
        server.validate("server")
        config = dataclasses.replace(config, server=server)
    options = DaemonOptions(input=args.input, realtime=not args.fast, wait_for_client=args.wait_for_client,
                            exit_after_input=args.exit_after_input, loop_input=args.loop_input)
    return serve(Daemon(config, options))
