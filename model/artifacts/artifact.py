"""The artifact: one folder holding everything needed to serve and explain a model.

model.keras        the Keras model (raw RGB 0..255 of any size in, P(AI) out)
metadata.json      name, version, backbone, input, threshold, band, labels, data summary, metrics...
                   (every field, its type and meaning: `realcheck.model.artifacts.metadata.FIELDS`)
README.md          the model card
plots/             evaluation and training plots
config.json, split.csv, history.json, evaluation.json, skipped.json   how it was made
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from realcheck.model.artifacts.metadata import (
    build_metadata,
    validate_metadata,
    validate_new_metadata,
    with_defaults,
)
from realcheck.model.artifacts.model_card import model_card
from realcheck.model.errors import ArtifactError

MODEL_FILE = "model.keras"
METADATA_FILE = "metadata.json"
CARD_FILE = "README.md"


def save_artifact(folder: str | Path, model, metadata: dict) -> Path:
    """Write the model, its metadata and its model card into `folder`."""
    import keras

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # A new functional model over the same layers: the file gets the weights without the optimizer's
    # state, which is twice their size and of no use to anyone serving the model.
    keras.Model(model.inputs, model.outputs, name=model.name).save(folder / MODEL_FILE)
    write_metadata(folder, metadata)
    (folder / CARD_FILE).write_text(model_card(metadata, folder), encoding="utf-8")
    return folder


def save_untrained_artifact(folder: str | Path, backbone: str, size: int, name: str, version: str) -> Path:
    """An artifact of an untrained network at `size` px, written in seconds: as fast as a trained one, for
    benchmarks and tests of serving (its scores mean nothing)."""
    import keras

    from realcheck.model.networks import architecture
    from realcheck.model.settings import HeadParams

    keras.utils.set_random_seed(
        0
    )  # the seed its metadata records: the same weights, so the same scores, each time
    model = architecture.build_model(backbone, size=size, weights="none")
    metadata = build_metadata(
        name,
        version,
        backbone=backbone,
        weights="none",
        head=HeadParams().to_dict(),
        input_size=size,
        input_mode="resize",
        threshold=0.5,
        uncertainty_band=[0.45, 0.55],
        seed=0,
        training_data={"layout": "none", "n": 0, "real": 0, "ai": 0},
        metrics={},
    )
    return save_artifact(folder, model, metadata)


def write_metadata(folder: str | Path, metadata: dict) -> None:
    """Write an artifact's metadata.json, checked against the table of fields first."""
    path = Path(folder) / METADATA_FILE
    write_json(path, validate_new_metadata(metadata, path))


def read_metadata(folder: str | Path) -> dict:
    """The artifact's metadata.json, checked for the fields serving needs."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ArtifactError(f"model folder not found: {folder}")
    path = folder / METADATA_FILE
    if not path.is_file():
        raise ArtifactError(f"{folder} is not a RealCheck artifact: {METADATA_FILE} is missing")
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ArtifactError(f"cannot read {path}: {error}") from error
    return with_defaults(validate_metadata(metadata, path))


def load_artifact(folder: str | Path):
    """(Keras model, metadata) from an artifact folder."""
    import keras

    from realcheck.model.networks import architecture  # noqa: F401  registers the custom layers before loading

    folder = Path(folder)
    metadata = read_metadata(folder)
    model_path = folder / MODEL_FILE
    if not model_path.is_file():
        raise ArtifactError(f"{folder} lacks {MODEL_FILE}")
    import zipfile

    # Keras reports a damaged archive as "File not found"; say what is wrong instead.
    if not zipfile.is_zipfile(model_path):
        raise ArtifactError(
            f"{model_path} is damaged: not a Keras model archive (copy the artifact again or retrain it)"
        )
    try:
        model = keras.saving.load_model(model_path, compile=False)
    except Exception as error:  # Keras raises many types for damaged archives.
        raise ArtifactError(f"cannot load {model_path}: {error}") from error
    return model, metadata


def write_json(path: str | Path, data) -> None:
    """Pretty JSON, written atomically so a crash never leaves half a file."""
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
    temporary.replace(path)


def write_model_card(folder: str | Path) -> None:
    """Regenerate an artifact's README.md from its metadata.json (after the metadata gained results)."""
    folder = Path(folder)
    (folder / CARD_FILE).write_text(model_card(read_metadata(folder), folder), encoding="utf-8")


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, read in blocks (model files are large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bundled_models_root() -> Path:
    """The folder inside the package that holds the bundled default model."""
    return Path(__file__).resolve().parents[1] / "bundled"


def bundled_model_dir() -> Path | None:
    """The default model shipped with RealCheck, used when no model is named; None if it is missing."""
    root = bundled_models_root()
    found = sorted(p.parent for p in root.glob(f"*/{METADATA_FILE}")) if root.is_dir() else []
    return found[-1] if found else None


def resolve_model_dir(requested: str | Path | None) -> Path:
    """The artifact folder to load: the one asked for, else the bundled default; a clear error otherwise.

    The one place that decides which artifact a command or the server uses.
    """
    if requested:
        path = Path(requested).expanduser()
        if not path.is_dir():
            raise ArtifactError(f"model folder not found: {path}")
        return path
    bundled = bundled_model_dir()
    if bundled is None:
        raise ArtifactError(
            f"no model given and the bundled default model is missing from {bundled_models_root()}: "
            "pass --model DIR, an artifact folder written by `realcheck train`, or reinstall RealCheck"
        )
    return bundled
