"""Helpers for serving tests: a real `realcheck serve` process on a free loopback port, and test images."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import imagegen
import processes
from PIL import Image

STARTUP_TIMEOUT_S = 180


def free_port() -> int:
    """A port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def realcheck_command() -> list[str]:
    """`realcheck` of this interpreter (the code under test, not whatever an installed script points at)."""
    return [sys.executable, "-m", "realcheck"]


class LiveServer:
    """`realcheck serve` in a subprocess; `url` is its base address."""

    def __init__(
        self, model_dir: Path, cache_dir: Path, log_path: Path, *extra: str, port: int | None = None
    ):
        # A given port lets a test restart a server at the same address (clients keep their URL).
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115  closed in stop()
        command = [
            *realcheck_command(),
            "serve",
            "--model",
            str(model_dir),
            "--port",
            str(self.port),
            "--cache-dir",
            str(cache_dir),
            *extra,
        ]
        env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "2"}
        self.process = processes.spawn(command, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def wait_healthy(self) -> None:
        """Until /healthz answers (the model may still be loading)."""
        self._wait_for("/healthz")

    def wait_ready(self) -> None:
        """Until /readyz answers 200 (model loaded and warmed up)."""
        self._wait_for("/readyz")

    def _wait_for(self, path: str) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}: {self.log()}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"no 200 from {path} after {STARTUP_TIMEOUT_S} s: {self.log()}")

    def get_json(self, path: str) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def get_text(self, path: str) -> str:
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return response.read().decode()

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> int:
        """SIGTERM (a clean shutdown), SIGKILL after 30 s; the exit status."""
        status = processes.stop(self.process)
        self._log.close()
        return status


def jpeg_bytes(label: str = "real", size: int = 64, seed: int = 0, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(imagegen.make_array(label, size, seed)).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def varied_images(count: int, size: int = 64) -> list[bytes]:
    """Distinct images of both classes and formats (no two share bytes, so none is a cache hit)."""
    images = []
    for index in range(count):
        label = "ai" if index % 2 else "real"
        if index % 3 == 0:
            images.append(imagegen.image_bytes(label, size + index, seed=index, fmt="PNG"))
        else:
            images.append(jpeg_bytes(label, size + index, seed=index))
    return images
