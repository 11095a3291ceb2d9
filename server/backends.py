"""Which runtime serves an artifact (TensorFlow on a GPU, ONNX Runtime on a CPU) and the cached ONNX export.

The runtimes themselves are `realcheck.model.scoring.runtimes`; the server wraps the chosen one in the scoring core's Detector.
"""

from __future__ import annotations

import glob
import logging
import os
import sys
from pathlib import Path

from realcheck.model.artifacts.artifact import MODEL_FILE, file_sha256
from realcheck.model.errors import ArtifactError
from realcheck.model.scoring.runtimes import KerasRuntime, OnnxRuntime, Runtime, shipped_onnx

log = logging.getLogger("realcheck")
KEY_LENGTH = 20  # hex digits of the model file's SHA-256 in an export's name


def gpu_available() -> bool:
    """True when TensorFlow sees a GPU; cheap (no TensorFlow import) on machines without NVIDIA devices."""
    if sys.platform.startswith("linux") and not glob.glob("/dev/nvidia[0-9]*"):
        return False
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def choose_backend(requested: str) -> str:
    """`onnx` or `tensorflow` for a requested backend; `auto` is TensorFlow on a GPU, ONNX Runtime on a CPU."""
    if requested != "auto":
        return requested
    return "tensorflow" if gpu_available() else "onnx"


def ensure_onnx_export(model_dir: str | Path, cache_dir: str | Path, name: str = "model") -> Path:
    """The ONNX export of an artifact, exported (and checked against Keras) only when not cached yet.

    The cache key is the SHA-256 of the artifact's model.keras, so a retrained or replaced model is
    re-exported and a stale export can never be served. Exports are written under a temporary name and
    renamed, so concurrent servers never load half a file.
    """
    from realcheck.model.artifacts.export import export_onnx_in_child

    model_file = Path(model_dir) / MODEL_FILE
    if not model_file.is_file():
        raise ArtifactError(f"{model_dir} lacks {MODEL_FILE}")
    folder = Path(cache_dir) / "onnx"
    folder.mkdir(parents=True, exist_ok=True)
    digest = file_sha256(model_file)
    shipped = shipped_onnx(Path(model_dir), digest)
    if shipped is not None:
        log.info("using the artifact's own ONNX export %s", shipped)
        return shipped
    key = digest[:KEY_LENGTH]
    target = folder / f"{_safe(name)}-{key}.onnx"
    if target.is_file():
        log.info("using cached ONNX export %s", target)
        return target
    log.info(
        "exporting %s to ONNX in a child process (once per model version; checked against Keras)", model_dir
    )
    temporary = folder / f".{target.stem}.{os.getpid()}.tmp.onnx"
    record = export_onnx_in_child(model_dir, temporary)
    os.replace(temporary, target)
    sidecar = temporary.with_name(temporary.name + ".export.json")
    if sidecar.is_file():
        os.replace(sidecar, target.with_name(target.name + ".export.json"))
    _remove_stale_exports(folder, _safe(name), target)
    log.info("ONNX export cached at %s (max difference from Keras %.2e)", target, record["max_abs_diff"])
    return target


def _remove_stale_exports(folder: Path, safe_name: str, keep: Path) -> None:
    # Older exports of the same model name are superseded; a running server has its copy in memory already.
    for path in folder.glob(f"{safe_name}-{'?' * KEY_LENGTH}.onnx*"):
        if not path.name.startswith(keep.name):
            path.unlink(missing_ok=True)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._" else "_" for c in name) or "model"


def load_runtime(model_dir: str | Path, metadata: dict, backend: str, cache_dir: str | Path) -> Runtime:
    """The runtime that serves an artifact: its Keras model in TensorFlow, or its ONNX export."""
    if choose_backend(backend) == "tensorflow":
        return KerasRuntime.load(model_dir)[0]
    path = ensure_onnx_export(model_dir, cache_dir, metadata["name"])
    try:
        return OnnxRuntime(path)
    except Exception as error:  # ONNX Runtime raises its own types for damaged files
        if Path(model_dir) in path.parents:
            raise ArtifactError(
                f"{path.name} in the artifact cannot be loaded ({error}); delete it"
            ) from error
        # A damaged cached export (a full disk, a killed copy) is replaced, not served forever.
        log.warning("cached ONNX export %s cannot be loaded (%s); exporting again", path, error)
        path.unlink(missing_ok=True)
        return OnnxRuntime(ensure_onnx_export(model_dir, cache_dir, metadata["name"]))
