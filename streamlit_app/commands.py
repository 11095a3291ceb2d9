"""The upload app's command: `realcheck app` starts the Streamlit page."""

from __future__ import annotations

import argparse
import logging

from realcheck.model.flags import add_flags, port
from realcheck.server.config import ServerConfig
from realcheck.streamlit_app.launch import DEFAULT_ADDRESS, DEFAULT_PORT

log = logging.getLogger("realcheck")


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register app."""
    app = commands.add_parser(
        "app", help="the Streamlit upload page: verdicts, Grad-CAM heatmaps, CSV export"
    )
    app.add_argument(
        "--model", default=None, help="artifact folder (default: $REALCHECK_MODEL, else the bundled model)"
    )
    app.add_argument("--port", type=port, default=DEFAULT_PORT, help="port to listen on")
    app.add_argument("--address", default=DEFAULT_ADDRESS, help="interface to listen on (0.0.0.0 for all)")
    app.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    add_flags(app, ServerConfig, only=("feedback_db",))
    app.set_defaults(handler=command_app)


def command_app(args: argparse.Namespace) -> int:
    from realcheck.model.artifacts.artifact import read_metadata
    from realcheck.streamlit_app.launch import run_streamlit, streamlit_command

    if args.model:
        read_metadata(args.model)  # a wrong folder fails here in a line, not later in the browser
    command = streamlit_command(args.model, args.port, args.address, args.feedback_db)
    url = f"http://{args.address}:{args.port}"
    log.info("starting the app on %s (Ctrl+C stops it)", url)
    return run_streamlit(command, open_url=None if args.no_browser else url)
