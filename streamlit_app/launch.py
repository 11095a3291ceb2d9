"""How `realcheck app` starts the page: `streamlit run` on app.py with the model after `--`."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

APP_PATH = Path(__file__).resolve().parent / "app.py"
DEFAULT_PORT = 8501
DEFAULT_ADDRESS = "127.0.0.1"


def streamlit_command(
    model: str | Path | None = None,
    port: int = DEFAULT_PORT,
    address: str = DEFAULT_ADDRESS,
    open_browser: bool = True,
) -> list[str]:
    """The `streamlit run` command line for the app; usage statistics are always off."""
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
        # Headless means "do not open a browser tab" (and never ask for an e-mail address on first start).
        "--server.headless",
        "false" if open_browser else "true",
        "--browser.gatherUsageStats",
        "false",
        # People checking images need no "Deploy" button or developer menu.
        "--client.toolbarMode",
        "minimal",
    ]
    if model is not None:
        command += ["--", "--model", str(Path(model).expanduser().resolve())]
    return command


def run_streamlit(command: list[str]) -> int:
    """Run the server until it exits and return its exit status.

    Ctrl+C reaches both processes through the terminal; a SIGTERM sent to us alone (a supervisor, `kill`)
    is passed on, so no orphaned server keeps the port.
    """
    process = subprocess.Popen(command)
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
