"""How `realcheck app` starts the page: `streamlit run` on app.py with the model after `--`."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import threading
import webbrowser
from pathlib import Path

APP_PATH = Path(__file__).resolve().parent / "app.py"
DEFAULT_PORT = 8501
DEFAULT_ADDRESS = "127.0.0.1"


def streamlit_command(
    model: str | Path | None = None,
    port: int = DEFAULT_PORT,
    address: str = DEFAULT_ADDRESS,
    feedback_db: str | None = None,
) -> list[str]:
    """The `streamlit run` command line for the app; usage statistics are always off.

    Always headless: Streamlit then never asks for an e-mail address (which makes it exit 255 without a
    terminal); `run_streamlit` opens the browser itself when asked to.
    """
    from realcheck.streamlit_app.analysis import max_upload_bytes

    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_PATH),
        "--server.port",
        str(port),
        "--server.address",
        address,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        # The upload widget states the app's own limit, not Streamlit's 200 MB.
        "--server.maxUploadSize",
        str(max(1, math.ceil(max_upload_bytes() / 1_000_000))),
        # People checking images need no "Deploy" button or developer menu.
        "--client.toolbarMode",
        "minimal",
    ]
    app_args = []
    if model is not None:
        app_args += ["--model", str(Path(model).expanduser().resolve())]
    if feedback_db is not None:
        app_args += ["--feedback-db", feedback_db]
    return command + (["--", *app_args] if app_args else [])


def run_streamlit(command: list[str], open_url: str | None = None) -> int:
    """Run the server until it exits and return its exit status; open `open_url` in a browser once it is up.

    Ctrl+C reaches both processes through the terminal; a SIGTERM sent to us alone (a supervisor, `kill`)
    is passed on, so no orphaned server keeps the port.
    """
    process = subprocess.Popen(command)
    if open_url:
        opener = threading.Timer(3.0, webbrowser.open, [open_url])
        opener.daemon = True
        opener.start()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: process.terminate())
    try:
        status = process.wait()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if process.poll() is None:  # interrupted while waiting
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    return 128 - status if status < 0 else status
