"""Derived runtimes exported from an artifact: ONNX (ONNX Runtime) and SavedModel (TF Serving, KServe, Triton).

Every export is checked against the Keras model on sample inputs before it is reported as done.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from realcheck.model.artifacts.artifact import MODEL_FILE, file_sha256, load_artifact, write_json
from realcheck.model.errors import RealCheckError

log = logging.getLogger("realcheck")
FORMATS = ("onnx", "savedmodel")
TOLERANCE = 1e-4


def sample_inputs(size: int, count: int = 4, seed: int = 0) -> np.ndarray:
    """Deterministic varied inputs (noise, gradients, flat) to compare runtimes on."""
    rng = np.random.default_rng(seed)
    batch = rng.uniform(0, 255, size=(count, size, size, 3)).astype(np.float32)
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    batch[1] = ramp[None, :, None]
    if count > 2:
        batch[2] = 128.0
    return batch


def export_artifact(model_dir: str | Path, fmt: str, out: str | Path | None = None) -> dict:
    """Export the artifact to `fmt`; returns {"path", "format", "max_abs_diff"} after checking outputs."""
    if fmt not in FORMATS:
        raise RealCheckError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    model_dir = Path(model_dir)
    model, metadata = load_artifact(model_dir)
    model = inference_model(model)
    inputs = sample_inputs(int(metadata["input_size"]))
    expected = np.asarray(model.predict_on_batch(inputs)).reshape(-1)
    if fmt == "onnx":
        path = Path(out) if out else model_dir / "model.onnx"
        path.parent.mkdir(parents=True, exist_ok=True)
        model.export(str(path), format="onnx", verbose=False)
        actual = run_onnx(path, inputs)
    else:
        path = Path(out) if out else model_dir / "savedmodel" / "1"
        if path.exists():
            shutil.rmtree(path)
        model.export(str(path), format="tf_saved_model", verbose=False)
        actual = run_savedmodel(path, inputs)
    difference = float(np.max(np.abs(actual - expected)))
    if difference > TOLERANCE:
        raise RealCheckError(
            f"{fmt} export differs from the Keras model by {difference:.2e} (> {TOLERANCE}): not usable"
        )
    record = {
        "format": fmt,
        "path": str(path),
        "max_abs_diff": difference,
        "model": metadata["name"],
        "version": metadata["version"],
        # Lets a server use an export shipped in the artifact only if it came from this model.keras.
        "source_sha256": file_sha256(model_dir / MODEL_FILE),
    }
    if fmt == "onnx":
        record["onnx_sha256"] = file_sha256(path)  # and only if the file is still the one exported
    write_json(
        path.with_name(path.name + ".export.json") if fmt == "onnx" else path.parent / "export.json", record
    )
    log.info("exported %s to %s (max difference from Keras %.2e)", fmt, path, difference)
    return record


def inference_model(model):
    """The model with inference mode baked into the graph.

    Exporters trace `model(x)` with `training` unset, which runs BatchNorm layers of a backbone trained from
    scratch in training mode; fixing `training=False` in a wrapper makes every runtime score alike.
    """
    import keras

    image = keras.Input((None, None, 3), name="image")
    return keras.Model(image, model(image, training=False), name=f"{model.name}_inference")


def run_onnx(path: str | Path, inputs: np.ndarray) -> np.ndarray:
    """P(AI) from an ONNX file through ONNX Runtime on the CPU."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.asarray(session.run(None, {name: inputs.astype(np.float32)})[0]).reshape(-1)


def run_savedmodel(path: str | Path, inputs: np.ndarray) -> np.ndarray:
    """P(AI) from a SavedModel's `serve` endpoint."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    return np.asarray(loaded.serve(tf.constant(inputs))).reshape(-1)


def export_onnx_in_child(model_dir: str | Path, out: str | Path) -> dict:
    """`export_artifact(model_dir, "onnx", out)` in a child process; returns its record.

    The exporter (tf2onnx) needs several GB for a big graph and keeps much of it: in a child, a server or a
    test session gets all of it back when the child exits, and never imports TensorFlow for it.
    """
    command = [sys.executable, "-m", "realcheck.model.artifacts.export", str(model_dir), str(out)]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        lines = [line for line in completed.stderr.strip().splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit status {completed.returncode}"
        raise RealCheckError(f"ONNX export of {model_dir} failed: {reason}")
    return json.loads(Path(str(out) + ".export.json").read_text(encoding="utf-8"))


def _die_with_parent() -> None:
    # Linux: the kernel sends SIGTERM when the process that started this one exits (a killed server or
    # test run leaves no orphaned exporter behind).
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    """`python -m realcheck.model.artifacts.export MODEL_DIR OUT.onnx`: the child process of `export_onnx_in_child`."""
    _die_with_parent()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    model_dir, out = argv if argv is not None else sys.argv[1:]
    try:
        export_artifact(model_dir, "onnx", out)
    except RealCheckError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
