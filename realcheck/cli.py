"""`realcheck`: the one command line of RealCheck, composed of each face's commands.

model (train, tune, finetune, compare, evaluate, export), server (serve, check, scan, feedback) and
streamlit_app (app) each register their own subcommands. Errors a user can fix print one line and exit with
status 2; nothing prints a traceback for them.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from realcheck import __version__
from realcheck.model import commands as model_commands
from realcheck.model import quiet_import
from realcheck.model.errors import RealCheckError
from realcheck.model.flags import DefaultsHelpFormatter
from realcheck.server import commands as server_commands
from realcheck.streamlit_app import commands as app_commands

log = logging.getLogger("realcheck")


def build_parser() -> argparse.ArgumentParser:
    """The `realcheck` parser with every face's subcommands."""
    parser = argparse.ArgumentParser(
        prog="realcheck", description="Tell real photographs from AI-generated images."
    )
    parser.add_argument("--version", action="version", version=f"realcheck {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for face in (model_commands, app_commands, server_commands):
        face.add_commands(commands)
    for command in commands.choices.values():
        command.formatter_class = DefaultsHelpFormatter
    return parser


def configure_logging(quiet: bool) -> None:
    """RealCheck's own messages on stderr; other libraries only when they warn."""
    handler = logging.StreamHandler(quiet_import.VisibleStderr())
    handler.setFormatter(logging.Formatter("realcheck: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False
    logging.getLogger("tf2onnx").setLevel(logging.WARNING)
    # TensorFlow's C++ start-up chatter drowns the useful lines; set before TF is first imported.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    quiet_import.install()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `realcheck` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    configure_logging(args.quiet)
    try:
        return args.handler(args)
    except RealCheckError as error:
        print(f"realcheck: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("realcheck: interrupted", file=sys.stderr)
        return 130
