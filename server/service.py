"""The prediction service behind the API: artifact, runtime, micro-batcher and result cache.

Request threads call `predict`: they hash and decode their own images (decoding is the one decode path in
`model/imaging.py`, reached through `Detector.prepare`) and hand the arrays to the batcher thread, which is
the only thread that runs the model.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.artifact import read_metadata
from model.errors import ImageDecodeError, RealCheckError
from model.provenance import NO_PROVENANCE, Provenance, decide
from server.batching import BatcherStopped, MicroBatcher, Overloaded
from server.cache import ResultCache
from server.config import ServerConfig, resolve_model_dir
from server.errors import ApiError, InvalidImage, NotReady, without_paths
from server.metrics import Metrics

log = logging.getLogger("realcheck")
RESULT_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class ImageResult:
    """The answer for one image: a score and verdict, or (in a request of several images) an error.

    `verdict` is the decision; `model_verdict` the model's own, and `basis` says which one decided
    (`provenance` when the file declares itself AI-generated, else `model`).
    """

    sha256: str
    score: float | None = None
    verdict: str | None = None
    cached: bool = False
    time_ms: float = 0.0
    error: str | None = None
    model_verdict: str | None = None
    basis: str = "model"
    provenance: Provenance = NO_PROVENANCE

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Upload:
    """One image of a request: its bytes and, for multipart parts, the client's file name."""

    data: bytes
    filename: str | None = None

    def describe(self, index: int) -> str:
        return f"image {index}" + (f" ({self.filename})" if self.filename else "")


class PredictionService:
    """Loads an artifact into a runtime, warms it up, and scores uploads through the batcher and cache."""

    def __init__(self, config: ServerConfig, metrics: Metrics | None = None):
        self.config = config
        self.metrics = metrics or Metrics()
        self.model_dir: Path | None = None
        self.metadata: dict = {}
        self.state = "starting"
        self.failure: str | None = None
        self.runtime = None
        self.detector = None
        self.batcher: MicroBatcher | None = None
        self.cache = ResultCache(config.result_cache_size)
        self.provenance = config.provenance_reader()
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

    def wait_until_loaded(self, timeout: float | None = None) -> bool:
        """Block until loading finished (ready or failed); True when ready."""
        if self._loader is not None:
            self._loader.join(timeout)
        return self.ready

    def load(self) -> None:
        """Load the runtime, warm it up at batch 1 and at the largest batch, start the batcher."""
        from server.runtimes import load_runtime

        self.state = "loading"
        started = time.perf_counter()
        self.runtime, self.detector = load_runtime(
            self.model_dir,
            self.metadata,
            self.config.backend,
            self.config.resolved_cache_dir,
            self.config.max_pixels,
        )
        if self.config.warmup:
            self.state = "warming_up"
            size = self.detector.spec.size
            for batch in sorted({1, self.config.max_batch_size}):
                self.runtime.scores(np.zeros((batch, size, size, 3), dtype=np.uint8))
        self.batcher = MicroBatcher(
            self.runtime.scores,
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
            self.runtime.device,
            self.runtime.name,
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
        return {
            "runtime": getattr(self.runtime, "name", None),
            "device": getattr(self.runtime, "device", None),
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
        hashes: list[str] = [""] * count
        scores: list[float | None] = [None] * count
        provenances: list[Provenance] = [NO_PROVENANCE] * count
        cached = [False] * count
        started = [0.0] * count
        elapsed = [0.0] * count
        errors: list[str | None] = [None] * count
        waiting: list[int] = []
        with self.batcher.incoming(count) as ticket:
            arrays = []
            for index, upload in enumerate(uploads):
                started[index] = time.perf_counter()
                hashes[index] = hashlib.sha256(upload.data).hexdigest()
                hit = self.cache.get(hashes[index])
                if hit is not None:
                    (scores[index], provenances[index]), cached[index] = hit, True
                    elapsed[index] = time.perf_counter() - started[index]
                    continue
                try:
                    arrays.append(self.detector.prepare(upload.data))
                except ImageDecodeError as error:
                    if count == 1:
                        raise InvalidImage(f"{upload.describe(index)}: {error}") from None
                    errors[index] = f"{upload.describe(index)}: {error}"
                    continue
                provenances[index] = self.provenance.read(upload.data)
                waiting.append(index)
            try:
                futures = ticket.submit(arrays) if arrays else []
            except Overloaded as error:
                raise ApiError(
                    f"server overloaded: {error}", status=503, code="overloaded", headers={"Retry-After": "1"}
                ) from None
            except BatcherStopped as error:
                raise NotReady(str(error)) from None
        for index, future in zip(waiting, futures):
            score = future.result(timeout=RESULT_TIMEOUT_S)
            scores[index] = score
            elapsed[index] = time.perf_counter() - started[index]
            self.cache.put(hashes[index], (score, provenances[index]))
        self.metrics.images.inc(len(waiting) + sum(cached))
        self.metrics.cache_hits.inc(sum(cached))
        self.metrics.cache_misses.inc(len(waiting))
        self.metrics.invalid_images.inc(count - len(waiting) - sum(cached))
        return [
            ImageResult(sha256=hashes[i], error=errors[i])
            if errors[i] is not None
            else self._result(hashes[i], float(scores[i]), provenances[i], cached[i], elapsed[i])
            for i in range(count)
        ]

    def _result(
        self, sha256: str, score: float, provenance: Provenance, cached: bool, elapsed_s: float
    ) -> ImageResult:
        model_verdict = self.detector.verdict(score)
        decision = decide(model_verdict, provenance)
        return ImageResult(
            sha256=sha256,
            score=score,
            verdict=decision.verdict,
            cached=cached,
            time_ms=round(elapsed_s * 1000.0, 3),
            model_verdict=model_verdict,
            basis=decision.basis,
            provenance=provenance,
        )
