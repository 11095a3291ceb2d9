"""The prediction service behind the API: artifact, runtime, micro-batcher and result cache.

Request threads call `predict`: they hash their images, look them up in the cache, and prepare the others
through the scoring core (`Detector.prepare`: decode and provenance); the batcher thread, the only one that
runs the model, scores them (`Detector.scores`), and the core judges the scores (`Detector.judge`).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realcheck.model.artifacts.artifact import read_metadata, resolve_model_dir
from realcheck.model.errors import ImageDecodeError, RealCheckError
from realcheck.model.scoring.inference import Detector, Prediction, PreparedImage
from realcheck.model.scoring.provenance import ProvenanceReader
from realcheck.server.batching import BatcherStopped, MicroBatcher, Overloaded
from realcheck.server.cache import ResultCache
from realcheck.server.config import ServerConfig
from realcheck.server.errors import ApiError, InvalidImage, NotReady, without_paths
from realcheck.server.metrics import Metrics

log = logging.getLogger("realcheck")
RESULT_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class ImageResult:
    """The answer for one image: the core's Prediction, whether it came from the cache, and how long it took."""

    prediction: Prediction
    cached: bool = False
    time_ms: float = 0.0


@dataclass(frozen=True)
class Upload:
    """One image of a request: its bytes and, for multipart parts, the client's file name."""

    data: bytes
    filename: str | None = None

    def describe(self, index: int) -> str:
        """How an error names this image: its place in the request (from 1) and the client's file name."""
        return f"image {index + 1}" + (f" ({self.filename})" if self.filename else "")


class PredictionService:
    """Loads an artifact into a runtime, warms it up, and scores uploads through the batcher and cache."""

    def __init__(self, config: ServerConfig, metrics: Metrics | None = None):
        self.config = config
        self.metrics = metrics or Metrics()
        self.model_dir: Path | None = None
        self.metadata: dict = {}
        self.state = "starting"
        self.failure: str | None = None
        self.detector: Detector | None = None
        self.batcher: MicroBatcher | None = None
        self.cache = ResultCache(config.result_cache_size)
        self.provenance: ProvenanceReader = config.provenance_reader()
        # Decoding is where an image's memory is spent (up to 600 MB at the pixel limit): bounded across
        # requests, so the server's peak is bounded however many clients send large images at once.
        self.decode_slots = threading.BoundedSemaphore(config.max_decodes)
        self._loader: threading.Thread | None = None

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    @property
    def loading(self) -> bool:
        """True while the background loader is still at work."""
        return self._loader is not None and self._loader.is_alive()

    def start(self) -> PredictionService:
        """Read the artifact's metadata now (a bad folder fails at once), then load and warm up the model.

        With `config.load_in_background` the slow part runs in a thread so /healthz answers meanwhile and
        /readyz reports ready when it is done.
        """
        self.model_dir = resolve_model_dir(self.config.model_dir)
        self.metadata = read_metadata(self.model_dir)
        if self.config.load_in_background:
            self._loader = threading.Thread(
                target=self._load_logging_failure, name="realcheck-loader", daemon=True
            )
            self._loader.start()
        else:
            self.load()
        return self

    def load(self) -> None:
        """Load the runtime, warm it up at batch 1 and at the largest batch, start the batcher."""
        from realcheck.server.backends import load_runtime

        self.state = "loading"
        started = time.perf_counter()
        runtime = load_runtime(
            self.model_dir, self.metadata, self.config.backend, self.config.resolved_cache_dir
        )
        self.detector = Detector(runtime, self.metadata, self.config.max_pixels, self.provenance)
        if self.config.warmup:
            self.state = "warming_up"
            size = self.detector.spec.size
            for batch in sorted({1, self.config.max_batch_size}):
                self.detector.scores(np.zeros((batch, size, size, 3), dtype=np.uint8))
        self.batcher = MicroBatcher(
            self.detector.scores,
            max_batch_size=self.config.max_batch_size,
            max_wait_s=self.config.max_wait_ms / 1000.0,
            max_queue=self.config.max_queue,
            on_batch=self.metrics.observe_batch,
        ).start()
        self.state = "ready"
        self.metrics.ready.set(1)
        log.info(
            "model %s %s ready on %s via %s (%s) in %.1f s; batches up to %d, wait up to %.1f ms",
            self.metadata["name"],
            self.metadata["version"],
            runtime.device,
            runtime.name,
            self.model_dir,
            time.perf_counter() - started,
            self.config.max_batch_size,
            self.config.max_wait_ms,
        )

    def _load_logging_failure(self) -> None:
        try:
            self.load()
        except Exception as error:  # reported by /readyz; the process stays up so operators can see why
            self.state = "failed"
            detail = str(error) if isinstance(error, RealCheckError) else repr(error)
            log.error("model failed to load: %s", detail)  # the operator's log keeps the full paths
            self.failure = without_paths(detail)

    def stop(self) -> None:
        """Stop the batcher after it finished the queued images."""
        if self.batcher is not None:
            self.batcher.stop()

    def describe_runtime(self) -> dict:
        """Runtime, device and batching settings, for /v1/models and /readyz."""
        runtime = self.detector.runtime if self.detector is not None else None
        return {
            "runtime": getattr(runtime, "name", None),
            "device": getattr(runtime, "device", None),
            "max_batch_size": self.config.max_batch_size,
            "max_wait_ms": self.config.max_wait_ms,
        }

    def predict(self, uploads: list[Upload]) -> list[ImageResult]:
        """Score every upload, in order.

        An image that cannot be decoded gets its own error result and costs no model time; the others are
        scored. A request of one image that cannot be decoded raises InvalidImage instead (a 400).
        """
        if not self.ready:
            raise NotReady(
                f"model failed to load: {self.failure}"
                if self.failure
                else "model is loading; retry shortly",
                headers={"Retry-After": "2"},
            )
        count = len(uploads)
        results: list[ImageResult | None] = [None] * count
        waiting: list[tuple[int, PreparedImage, float]] = []
        with self.batcher.incoming(count) as ticket:
            for index, upload in enumerate(uploads):
                started = time.perf_counter()
                sha256 = hashlib.sha256(upload.data).hexdigest()
                hit = self.cache.get(sha256)
                if hit is not None:
                    results[index] = ImageResult(hit, cached=True, time_ms=_ms_since(started))
                    continue
                try:
                    with self.decode_slots:
                        prepared = self.detector.prepare(upload.data, sha256)
                    waiting.append((index, prepared, started))
                except ImageDecodeError as error:
                    if count == 1:
                        raise InvalidImage(f"{upload.describe(index)}: {error}") from None
                    results[index] = ImageResult(
                        Prediction(sha256, error=f"{upload.describe(index)}: {error}")
                    )
            try:
                futures = ticket.submit([image.pixels for _, image, _ in waiting]) if waiting else []
            except Overloaded as error:
                raise ApiError(
                    f"server overloaded: {error}", status=503, code="overloaded", headers={"Retry-After": "1"}
                ) from None
            except BatcherStopped as error:
                raise NotReady(str(error)) from None
        for (index, image, started), future in zip(waiting, futures):
            prediction = self.detector.judge(image, future.result(timeout=RESULT_TIMEOUT_S))
            self.cache.put(image.sha256, prediction)
            results[index] = ImageResult(prediction, time_ms=_ms_since(started))
        hits = sum(result is not None and result.cached for result in results)
        self.metrics.images.inc(len(waiting) + hits)
        self.metrics.cache_hits.inc(hits)
        self.metrics.cache_misses.inc(len(waiting))
        self.metrics.invalid_images.inc(count - len(waiting) - hits)
        return results


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 3)
