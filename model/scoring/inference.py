"""The scoring core: any image source -> bytes -> fitted pixels and provenance -> runtime -> score -> verdict.

Every face scores through `Detector`: training-time evaluation, `realcheck evaluate`, `check`/`scan`, the
server (which adds only its cache and micro-batcher around `prepare`, `scores` and `judge`) and the Streamlit
app, so the same file gets the same score and the same decision everywhere. The runtime that runs the model
(Keras/TensorFlow or ONNX Runtime, `realcheck.model.scoring.runtimes`) is a plug-in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from realcheck.model.artifacts.metadata import with_defaults
from realcheck.model.data.imaging import (
    DEFAULT_MAX_PIXELS,
    ImageSource,
    InputSpec,
    InputTraits,
    read_model_input,
)
from realcheck.model.errors import ImageDecodeError
from realcheck.model.scoring.decision import DecisionRule, RuleSet, decide
from realcheck.model.scoring.provenance import NO_PROVENANCE, Provenance, ProvenanceReader
from realcheck.model.scoring.runtimes import KerasRuntime, OnnxRuntime, Runtime, shipped_onnx

# Bytes per pixel an image file may take: 16-bit RGBA uncompressed. A larger file cannot hold an image within
# the pixel limit, so it is refused before it is read into memory.
MAX_FILE_BYTES_PER_PIXEL = 8


@dataclass(frozen=True)
class Prediction:
    """What the core says about one image: P(AI), the model's verdict and the decision, or why it failed.

    `verdict` is the decision; `model_verdict` the model's own, and `basis` says which one decided
    (`provenance` when the file declares itself AI-generated, else `model`). `rule` is the decision rule that
    gave `model_verdict`, and `image_rule` its name: the artifact's rule for the image's condition (small,
    heavily compressed: `InputTraits.condition`) where it holds one, else `main`. `sha256` names the image's
    bytes (None for an in-memory picture).
    """

    sha256: str | None = None
    score: float | None = None
    model_verdict: str | None = None
    verdict: str | None = None
    basis: str = "model"
    provenance: Provenance = NO_PROVENANCE
    rule: DecisionRule | None = None
    image_rule: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def record(self) -> dict:
        """The image's RECORD_FIELDS (realcheck.model.scoring.decision), with the ranges of the rule that gave
        its model verdict."""
        return {
            "verdict": self.verdict,
            "basis": self.basis,
            "score": self.score,
            "model_verdict": self.model_verdict,
            # An image not scored (an error) had no rule applied: no ranges.
            **(self.rule.range_fields() if self.rule else {"real_below": None, "ai_above": None}),
            "image_rule": self.image_rule,
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class PreparedImage:
    """One decoded image waiting for the model: its input pixels, its bytes' SHA-256, its provenance and its
    traits (small, JPEG quality), which pick its decision rule."""

    pixels: np.ndarray
    sha256: str | None
    provenance: Provenance
    traits: InputTraits = InputTraits()


class Detector:
    """An artifact's model on a runtime, with its input spec, decision rules (`rules`: the main `rule` and one
    per image condition the artifact holds) and (optionally) provenance reader.

    Without a provenance reader every decision is the model's (training and evaluation measure the model);
    with one, a file that declares itself AI-generated is decided by its provenance.
    """

    def __init__(
        self,
        runtime: Runtime,
        metadata: dict,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        provenance: ProvenanceReader | None = None,
    ):
        self.runtime = runtime
        self.metadata = metadata = with_defaults(metadata)
        self.spec = InputSpec(int(metadata["input_size"]), metadata["input_mode"], metadata["input_fill"])
        self.rules = RuleSet.from_metadata(metadata)
        self.rule = self.rules.main
        self.max_pixels = max_pixels
        self.provenance = provenance

    @property
    def name(self) -> str:
        return self.metadata["name"]

    @property
    def version(self) -> str:
        return self.metadata["version"]

    def pixels(self, source: ImageSource) -> np.ndarray:
        """Decode one image into the model's input array (raises ImageDecodeError)."""
        return self._decode(source)[0]

    def prepare(self, source: ImageSource, sha256: str | None = None) -> PreparedImage:
        """Read, hash, decode and read the provenance of one image (raises ImageDecodeError).

        `sha256` is the bytes' digest when the caller has it already (the server hashes for its cache).
        """
        data = self._read(source)
        pixels, traits = self._decode(data)
        if isinstance(data, Image.Image):
            return PreparedImage(pixels, None, NO_PROVENANCE, traits)
        provenance = self.provenance.read(data) if self.provenance is not None else NO_PROVENANCE
        return PreparedImage(pixels, sha256 or hashlib.sha256(data).hexdigest(), provenance, traits)

    def scores(self, batch: np.ndarray) -> np.ndarray:
        """P(AI) for a batch of prepared inputs of shape (n, size, size, 3)."""
        if len(batch) == 0:
            return np.zeros((0,), dtype=np.float32)
        return np.asarray(self.runtime.scores(np.asarray(batch))).reshape(-1)

    def judge(self, image: PreparedImage, score: float) -> Prediction:
        """The verdicts for a scored image: the model's by the rule for its condition, then the decision."""
        condition = image.traits.condition
        rule = self.rules.rule_for(condition)
        model_verdict = rule.verdict(score)
        decision = decide(model_verdict, image.provenance)
        return Prediction(
            sha256=image.sha256,
            score=score,
            model_verdict=model_verdict,
            verdict=decision.verdict,
            basis=decision.basis,
            provenance=image.provenance,
            rule=rule,
            image_rule=self.rules.name_for(condition),
        )

    def predict(
        self, images: Iterable[ImageSource], batch_size: int = 32, workers: int = 4
    ) -> list[Prediction]:
        """Score every image; undecodable ones get a Prediction with `error` set instead of a score."""
        return [prediction for _, prediction in self.iter_predict(images, batch_size, workers)]

    def iter_predict(
        self, images: Iterable[ImageSource], batch_size: int = 32, workers: int = 4
    ) -> Iterator[tuple[int, Prediction]]:
        """Yield (index, Prediction) in input order, a batch at a time, so huge folders stream.

        Images are taken from `images` only as batches fill, so a lazy iterable can stop the run early.
        """
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for start, chunk in _chunks(images, max(1, batch_size)):
                prepared = list(pool.map(self._try_prepare, chunk))
                ready = [item for item in prepared if isinstance(item, PreparedImage)]
                scores = iter(self.scores(np.stack([item.pixels for item in ready])) if ready else ())
                for offset, item in enumerate(prepared):
                    yield (
                        start + offset,
                        (self.judge(item, float(next(scores))) if isinstance(item, PreparedImage) else item),
                    )

    def _try_prepare(self, source: ImageSource) -> PreparedImage | Prediction:
        try:
            data = self._read(source)
        except ImageDecodeError as error:
            return Prediction(error=str(error))
        # Hashed before decoding, so an image that fails still names its bytes.
        sha256 = None if isinstance(data, Image.Image) else hashlib.sha256(data).hexdigest()
        try:
            return self.prepare(data, sha256)
        except ImageDecodeError as error:
            return Prediction(sha256, error=str(error))

    def _decode(self, source: ImageSource) -> tuple[np.ndarray, InputTraits]:
        return read_model_input(source, self.spec, self.max_pixels)

    def _read(self, source: ImageSource) -> bytes | Image.Image:
        if isinstance(source, Image.Image):
            return source
        if isinstance(source, (bytes, bytearray, memoryview)):
            return bytes(source)
        path = Path(source)
        try:
            size = path.stat().st_size
            if not path.is_file():
                raise ImageDecodeError(f"not a file: {path}")
            if size > MAX_FILE_BYTES_PER_PIXEL * self.max_pixels:
                raise ImageDecodeError(
                    f"file too large to hold an image within the pixel limit: {size:,} bytes ({path})"
                )
            return path.read_bytes()
        except FileNotFoundError:
            raise ImageDecodeError(f"no such file: {path}") from None
        except OSError as error:
            raise ImageDecodeError(f"cannot read {path}: {error.strerror or error}") from None


def _chunks(items: Iterable, size: int) -> Iterator[tuple[int, list]]:
    chunk: list = []
    start = 0
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield start, chunk
            start += size
            chunk = []
    if chunk:
        yield start, chunk


def keras_detector(
    model, metadata: dict, max_pixels: int = DEFAULT_MAX_PIXELS, provenance: ProvenanceReader | None = None
) -> Detector:
    """A Detector that runs an in-memory Keras model (training, evaluation, the TensorFlow serving path)."""
    return Detector(KerasRuntime(model, int(metadata["input_size"])), metadata, max_pixels, provenance)


def load_detector(
    folder: str | Path,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    provenance: ProvenanceReader | None = None,
    runtime: str = "auto",
) -> Detector:
    """An artifact folder as a ready Detector.

    `runtime` "auto" scores with the artifact's own ONNX export when it ships one checked against its
    model.keras (ONNX Runtime: no TensorFlow import, a fraction of the memory and start-up), else with Keras;
    "keras" always loads the Keras model (Grad-CAM and training need it).
    """
    if runtime == "auto":
        from realcheck.model.artifacts.artifact import MODEL_FILE, file_sha256, read_metadata

        folder = Path(folder)
        model_file = folder / MODEL_FILE
        onnx = shipped_onnx(folder, file_sha256(model_file)) if model_file.is_file() else None
        if onnx is not None:
            return Detector(OnnxRuntime(onnx), read_metadata(folder), max_pixels, provenance)
    keras_runtime, metadata = KerasRuntime.load(folder)
    return Detector(keras_runtime, metadata, max_pixels, provenance)


def score_paths(detector: Detector, paths: Sequence[ImageSource], batch_size: int = 32) -> np.ndarray:
    """Scores for files (or image bytes) that are known to decode (verified samples); raises if one does not."""
    scores = np.zeros(len(paths), dtype=np.float64)
    for index, prediction in detector.iter_predict(paths, batch_size=batch_size):
        if not prediction.ok:
            raise ImageDecodeError(f"{paths[index]}: {prediction.error}")
        scores[index] = prediction.score
    return scores
