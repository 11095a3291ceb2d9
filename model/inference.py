"""The one inference path: any image source -> decoded, fitted pixels -> batched model -> score and verdict.

Training-time evaluation, `realcheck evaluate`, the server and the Streamlit app all go through `Detector`,
so the same file gets the same score everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.errors import ImageDecodeError
from model.evaluation import DecisionRule
from model.imaging import DEFAULT_MAX_PIXELS, ImageSource, InputSpec, load_model_input
from model.labels import verdict_for_score


@dataclass(frozen=True)
class Prediction:
    """The result for one image: P(AI) and verdict, or the reason it could not be scored."""

    score: float | None
    verdict: str | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Detector:
    """A loaded model with its input spec and decision rule.

    `predict` takes paths, bytes or PIL images of any size, decodes them in parallel threads and runs the
    model in batches.
    """

    def __init__(self, model, metadata: dict, max_pixels: int = DEFAULT_MAX_PIXELS):
        self.model = model
        self.metadata = metadata
        self.spec = InputSpec(size=int(metadata["input_size"]), mode=metadata.get("input_mode", "resize"))
        self.rule = DecisionRule(float(metadata["threshold"]), tuple(metadata["uncertainty_band"]))
        self.max_pixels = max_pixels
        self._forward = None

    @property
    def name(self) -> str:
        return self.metadata["name"]

    @property
    def version(self) -> str:
        return self.metadata["version"]

    def prepare(self, source: ImageSource) -> np.ndarray:
        """Decode one image into the model's input array (raises ImageDecodeError)."""
        return load_model_input(source, self.spec, self.max_pixels)

    def scores(self, batch: np.ndarray) -> np.ndarray:
        """P(AI) for a batch of prepared inputs of shape (n, size, size, 3)."""
        if len(batch) == 0:
            return np.zeros((0,), dtype=np.float32)
        if self._forward is None:
            self._forward = _compile(self.model, self.spec.size)
        return np.asarray(self._forward(np.asarray(batch, dtype=np.float32))).reshape(-1)

    def verdict(self, score: float) -> str:
        return verdict_for_score(score, self.rule.threshold, self.rule.band)

    def predict(
        self, images: Iterable[ImageSource], batch_size: int = 32, workers: int = 4
    ) -> list[Prediction]:
        """Score every image; undecodable ones get a Prediction with `error` set instead of a score."""
        return [prediction for _, prediction in self.iter_predict(images, batch_size, workers)]

    def iter_predict(
        self, images: Iterable[ImageSource], batch_size: int = 32, workers: int = 4
    ) -> Iterator[tuple[int, Prediction]]:
        """Yield (index, Prediction) in input order, a batch at a time, so huge folders stream."""
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for start, chunk in _chunks(images, batch_size):
                prepared = list(pool.map(self._try_prepare, chunk))
                good = [i for i, item in enumerate(prepared) if isinstance(item, np.ndarray)]
                batch_scores = self.scores(np.stack([prepared[i] for i in good])) if good else []
                by_position = dict(zip(good, batch_scores))
                for offset, item in enumerate(prepared):
                    if offset in by_position:
                        score = float(by_position[offset])
                        yield start + offset, Prediction(score, self.verdict(score))
                    else:
                        yield start + offset, Prediction(None, None, item)

    def _try_prepare(self, source: ImageSource):
        try:
            return self.prepare(source)
        except ImageDecodeError as error:
            return str(error)


def _compile(model, size: int):
    import tensorflow as tf

    # One trace for every batch size: the fastest Keras path at small batches on CPU.
    signature = [tf.TensorSpec([None, size, size, 3], tf.float32)]
    forward = tf.function(
        lambda x: model(x, training=False), input_signature=signature, reduce_retracing=True
    )
    return lambda batch: forward(tf.convert_to_tensor(batch)).numpy()


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


def load_detector(folder: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Detector:
    """Load an artifact folder into a ready Detector."""
    from model.artifact import load_artifact

    model, metadata = load_artifact(folder)
    return Detector(model, metadata, max_pixels=max_pixels)


def score_paths(detector: Detector, paths: Sequence[str | Path], batch_size: int = 32) -> np.ndarray:
    """Scores for files that are known to decode (verified samples); raises if one does not."""
    scores = np.zeros(len(paths), dtype=np.float64)
    for index, prediction in detector.iter_predict(paths, batch_size=batch_size):
        if not prediction.ok:
            raise ImageDecodeError(f"{paths[index]}: {prediction.error}")
        scores[index] = prediction.score
    return scores
