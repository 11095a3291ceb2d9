"""Server configuration: CLI flags become one ServerConfig, and the app reads nothing else.

`resolve_model_dir` is the one place that decides which artifact is served: the one named, else the default
model bundled with the package.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from model.artifact import bundled_model_dir, bundled_models_root
from model.errors import RealCheckError
from model.imaging import DEFAULT_MAX_PIXELS
from model.provenance import ProvenanceReader

BACKENDS = ("auto", "onnx", "tensorflow")
EXTENSION_ORIGIN_PREFIXES = ("chrome-extension://", "moz-extension://")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
MIB = 1024 * 1024


def default_cache_dir() -> Path:
    """Where derived runtimes (ONNX exports) are kept: $REALCHECK_CACHE, else the user's cache folder."""
    explicit = os.environ.get("REALCHECK_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "realcheck"


def resolve_model_dir(requested: str | Path | None) -> Path:
    """The artifact folder to load: the one asked for, else the bundled default; a clear error otherwise."""
    if requested:
        path = Path(requested).expanduser()
        if not path.is_dir():
            raise RealCheckError(f"model folder not found: {path}")
        return path
    bundled = bundled_model_dir()
    if bundled is None:
        raise RealCheckError(
            f"no model given and the bundled default model is missing from {bundled_models_root()}: "
            "pass --model DIR, an artifact folder written by `realcheck train`, or reinstall RealCheck"
        )
    return bundled


@dataclass
class ServerConfig:
    """Everything the API server needs; built from `realcheck serve` flags or directly in Python."""

    model_dir: str | Path | None = None
    backend: str = "auto"
    cache_dir: str | Path | None = None
    # Micro-batching: a batch closes at max_batch_size images or max_wait_ms after its first image.
    max_batch_size: int = 16
    max_wait_ms: float = 5.0
    max_queue: int = 512
    result_cache_size: int = 4096
    # Input limits: generous enough for camera photos (TorchServe's 6.5 MB default is a known complaint).
    max_request_bytes: int = 64 * MIB
    max_image_bytes: int = 25 * MIB
    max_images_per_request: int = 64
    max_pixels: int = DEFAULT_MAX_PIXELS
    # Access control: CORS for the extension's origins (when enabled) and explicitly listed origins.
    allow_extension_origins: bool = False
    cors_origins: list[str] = field(default_factory=list)
    api_key: str | None = None
    rate_limit_per_minute: int = 0  # 0: no limit
    # "This verdict is wrong" reports: a SQLite file path, sqlite:///FILE or postgresql://...; None is
    # $REALCHECK_FEEDBACK_DB, else a file in the user's data folder (server.feedback_store). Opened on first use.
    feedback_db: str | Path | None = None
    # Production server (waitress).
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    threads: int = 16
    connection_limit: int = 200
    channel_timeout_s: int = 30
    # A request must arrive within this many seconds plus 1 s per 64 KiB of it (slow-client guard).
    request_timeout_s: float = 20.0
    # Load and warm up the model in a background thread so /healthz answers during start-up.
    load_in_background: bool = False
    warmup: bool = True
    # PEM file of root certificates whose C2PA signers count as `trusted` (none: intact manifests are `valid`).
    c2pa_trust_anchors: str | Path | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise RealCheckError(f"unknown backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")
        for name in ("max_batch_size", "max_queue", "max_request_bytes", "max_image_bytes"):
            if int(getattr(self, name)) < 1:
                raise RealCheckError(f"{name.replace('_', '-')} must be at least 1")
        if self.max_images_per_request < 1 or self.threads < 1:
            raise RealCheckError("max-images-per-request and threads must be at least 1")
        if self.request_timeout_s <= 0:
            raise RealCheckError("request-timeout must be above 0 seconds")
        if self.max_wait_ms < 0 or self.result_cache_size < 0 or self.rate_limit_per_minute < 0:
            raise RealCheckError("max-wait-ms, cache size and rate limit must not be negative")
        for origin in self.cors_origins:
            if origin == "*" or not origin.startswith(("http://", "https://", *EXTENSION_ORIGIN_PREFIXES)):
                raise RealCheckError(
                    f"CORS origin {origin!r} must be a full origin such as https://example.org (no wildcards)"
                )

    def provenance_reader(self) -> ProvenanceReader:
        """The provenance reader for served images (reads the trust anchors file; a bad one fails here)."""
        return ProvenanceReader.from_trust_anchors_file(self.c2pa_trust_anchors)

    @property
    def resolved_cache_dir(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else default_cache_dir()

    @property
    def transport_body_limit(self) -> int:
        """The hard cap waitress enforces before the app sees a body (plain-text 413 beyond it).

        It sits well above `max_request_bytes` so that ordinary oversize uploads reach the app and get a JSON
        413, while a client declaring gigabytes is refused before anything is buffered.
        """
        return max(2 * self.max_request_bytes, self.max_request_bytes + 16 * MIB)
