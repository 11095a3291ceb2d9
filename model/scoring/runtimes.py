"""Runtimes: what turns a batch of prepared inputs into P(AI). Plug-ins of the scoring core (`realcheck.model.scoring.inference`).

Both take the uint8 arrays `Detector.prepare` produces, so switching runtime changes speed, not scores (they
agree within `realcheck.model.artifacts.export.TOLERANCE`). TensorFlow and ONNX Runtime are imported only by the runtime in use.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Protocol

import numpy as np

log = logging.getLogger("realcheck")


class Runtime(Protocol):
    """A model the scoring core can run: a name and device for reports, and the forward pass."""

    name: str
    device: str

    def scores(self, batch: np.ndarray) -> np.ndarray:
        """P(AI) for a non-empty batch of shape (n, size, size, 3)."""
        ...


class KerasRuntime:
    """A Keras model through one compiled forward pass (the GPU path when TensorFlow sees one)."""

    name = "tensorflow"

    def __init__(self, model, size: int):
        import tensorflow as tf

        self.model = model
        # One trace for every batch size: the fastest Keras path at small batches on CPU.
        signature = [tf.TensorSpec([None, size, size, 3], tf.float32)]
        self._forward = tf.function(
            lambda x: model(x, training=False), input_signature=signature, reduce_retracing=True
        )
        gpus = tf.config.list_physical_devices("GPU")
        self.device = f"GPU ({', '.join(g.name for g in gpus)})" if gpus else "CPU"

    @classmethod
    def load(cls, folder: str | Path) -> tuple[KerasRuntime, dict]:
        """An artifact folder's Keras model as a runtime, with the artifact's metadata."""
        from realcheck.model.artifacts.artifact import load_artifact

        model, metadata = load_artifact(folder)
        return cls(model, int(metadata["input_size"])), metadata

    def scores(self, batch: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        return self._forward(tf.convert_to_tensor(batch, dtype=tf.float32)).numpy().reshape(-1)


class OnnxRuntime:
    """An ONNX export of the artifact in an ONNX Runtime session (CUDA when an onnxruntime-gpu build has it)."""

    name = "onnxruntime"

    def __init__(self, path: str | Path):
        import onnxruntime as ort

        available = ort.get_available_providers()
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        self.session = ort.InferenceSession(str(path), providers=providers)
        self.input_name = self.session.get_inputs()[0].name
        self.device = ", ".join(self.session.get_providers())
        self.path = Path(path)

    def scores(self, batch: np.ndarray) -> np.ndarray:
        feed = {self.input_name: np.asarray(batch, dtype=np.float32)}
        return np.asarray(self.session.run(None, feed)[0]).reshape(-1)


def shipped_onnx(model_dir: Path, model_digest: str) -> Path | None:
    """The artifact's model.onnx when its export record says it was made from this very model.keras, and
    (when the record has its digest) the file is still the one exported: a damaged copy is never served."""
    from realcheck.model.artifacts.artifact import file_sha256

    path = model_dir / "model.onnx"
    try:
        record = json.loads(path.with_name(path.name + ".export.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (path.is_file() and isinstance(record, dict) and record.get("source_sha256") == model_digest):
        return None
    if "onnx_sha256" in record and record["onnx_sha256"] != file_sha256(path):
        log.warning("%s does not match its export record (damaged?): not used", path)
        return None
    return path
