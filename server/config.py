"""Server configuration: one ServerConfig, and the app reads nothing else.

Each setting's default and `realcheck serve` flag (help text, choices) are declared on its field once
(`realcheck.model.flags`); `realcheck.model.artifacts.artifact.resolve_model_dir` decides which artifact is served.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from realcheck.model.errors import RealCheckError
from realcheck.model.flags import (
    bounded,
    check_values,
    non_negative_float,
    non_negative_int,
    option,
    positive_float,
    positive_int,
)
from realcheck.model.flags import port as tcp_port
from realcheck.model.settings import DEFAULT_MAX_PIXELS

if TYPE_CHECKING:  # the reader loads Pillow: only `serve` and `check` need it
    from realcheck.model.scoring.provenance import ProvenanceReader

BACKENDS = ("auto", "onnx", "tensorflow")
EXTENSION_ORIGIN_PREFIXES = ("chrome-extension://", "moz-extension://")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
MIB = 1024 * 1024

__all__ = ["ServerConfig", "default_cache_dir"]


def _mib_as_bytes(text: str) -> int:
    return int(positive_float(text) * MIB)


# argparse type: a positive number of MiB, as bytes (at least one).
megabytes = bounded(_mib_as_bytes, lambda size: size >= 1, "must be at least 1 byte, got {value}")


def default_cache_dir() -> Path:
    """Where derived runtimes (ONNX exports) are kept: $REALCHECK_CACHE, else the user's cache folder."""
    explicit = os.environ.get("REALCHECK_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "realcheck"


@dataclass
class ServerConfig:
    """Everything the API server needs; built from `realcheck serve` flags or directly in Python."""

    model_dir: str | Path | None = option(
        None, name="--model", help="artifact folder to serve (default: the bundled model)"
    )
    backend: str = option(
        "auto", choices=BACKENDS, help="runtime: auto is TensorFlow on a GPU, ONNX Runtime on a CPU"
    )
    cache_dir: str | Path | None = option(
        None, help="where ONNX exports are cached (default: $REALCHECK_CACHE, else ~/.cache/realcheck)"
    )
    # Micro-batching: a batch closes at max_batch_size images or max_wait_ms after its first image.
    max_batch_size: int = option(16, parse=positive_int, help="images per model call (1: off)")
    max_wait_ms: float = option(5.0, parse=non_negative_float, help="longest wait for a batch to fill, in ms")
    max_queue: int = 512
    result_cache_size: int = option(
        4096, name="--cache-size", parse=non_negative_int, help="results kept by content hash"
    )
    # Input limits: generous enough for camera photos (TorchServe's 6.5 MB default is a known complaint).
    max_request_bytes: int = option(
        64 * MIB,
        name="--max-request-mb",
        parse=megabytes,
        typed_default=lambda size: f"{size / MIB:g}",
        help="largest request body, in MiB",
    )
    max_image_bytes: int = 25 * MIB
    max_images_per_request: int = option(
        64, name="--max-images", parse=positive_int, help="most images in one request"
    )
    max_pixels: int = DEFAULT_MAX_PIXELS
    # Access control: CORS for the extension's origins (when enabled) and explicitly listed origins.
    allow_extension_origins: bool = option(
        False, help="allow chrome-extension:// and moz-extension:// origins (the browser extension)"
    )
    cors_origins: list[str] = option(
        default_factory=list,
        name="--cors-origin",
        help="allow this web origin (repeatable), e.g. https://x.org",
    )
    allowed_hosts: list[str] = option(
        default_factory=list,
        name="--allowed-host",
        help="also answer requests addressed to this host name (repeatable; loopback names and IP addresses "
        "always are; * answers any name, e.g. behind a proxy that checks it)",
    )
    api_key: str | None = option(
        None,
        env="REALCHECK_API_KEY",
        help="require this key in the X-API-Key header (default: $REALCHECK_API_KEY; none: open)",
    )
    rate_limit_per_minute: int = option(
        0, name="--rate-limit", parse=non_negative_int, help="requests a minute per client (0: no limit)"
    )
    rate_limit_storage: str = option(
        "memory://",
        metavar="URI",
        help="where rate-limit counts live: memory:// (this process) or redis://HOST:PORT (shared by "
        "replicas)",
    )
    trusted_proxies: int = option(
        0,
        parse=non_negative_int,
        metavar="N",
        help="proxies in front of the server whose X-Forwarded-For and X-Forwarded-Proto to trust (a load "
        "balancer: 1), so rate limits count clients, not the balancer (0: none)",
    )
    # "This verdict is wrong" reports, opened on first use (server.feedback.store).
    feedback_db: str | Path | None = option(
        None,
        metavar="PATH_OR_URL",
        help="where wrong-verdict reports are kept: a SQLite file, sqlite:///FILE or "
        "postgresql://USER:PASS@HOST/DB (default: $REALCHECK_FEEDBACK_DB, else "
        "~/.local/share/realcheck/feedback.sqlite3)",
    )
    # Production server (waitress).
    host: str = option(DEFAULT_HOST, help="interface to listen on (0.0.0.0 for all)")
    port: int = option(DEFAULT_PORT, parse=tcp_port, help="port to listen on")
    threads: int = option(16, parse=positive_int, help="request worker threads")
    max_decodes: int = option(
        4,
        parse=positive_int,
        help="images decoded at once across all requests (each may take up to 600 MB while it decodes)",
    )
    connection_limit: int = option(200, parse=positive_int, help="most open connections at once")
    channel_timeout_s: int = 30
    request_timeout_s: float = option(
        20.0,
        name="--request-timeout",
        parse=positive_float,
        help="seconds a request may take to arrive, plus 1 s per 64 KiB of it (slow clients get a 408)",
    )
    # Load and warm up the model in a background thread so /healthz answers during start-up.
    load_in_background: bool = False
    warmup: bool = True
    c2pa_trust_anchors: str | Path | None = option(
        None,
        metavar="PEM",
        help="root certificates (PEM) whose Content Credentials signers count as trusted "
        "(e.g. the C2PA trust list; none: intact manifests are reported as valid, signer unverified)",
    )

    def __post_init__(self) -> None:
        try:
            check_values(self)
        except ValueError as error:
            raise RealCheckError(str(error)) from None
        if self.max_queue < 1 or self.max_image_bytes < 1:  # the two limits without a flag
            raise RealCheckError("max-queue and max-image-bytes must be at least 1")
        for origin in self.cors_origins:
            if origin == "*" or not origin.startswith(("http://", "https://", *EXTENSION_ORIGIN_PREFIXES)):
                raise RealCheckError(
                    f"CORS origin {origin!r} must be a full origin such as https://example.org (no wildcards)"
                )

    @property
    def trusted_host_names(self) -> list[str] | None:
        """Host names (besides IP addresses) the server answers for; None: any (`--allowed-host *`)."""
        if "*" in self.allowed_hosts:
            return None
        return sorted({"localhost", *(name.lower() for name in self.allowed_hosts)})

    def provenance_reader(self) -> ProvenanceReader:
        """The provenance reader for served images (reads the trust anchors file; a bad one fails here)."""
        from realcheck.model.scoring.provenance import ProvenanceReader

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
