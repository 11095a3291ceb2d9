"""The artifact's metadata.json: one table of its fields, from which it is built, checked and documented.

Writers (training, fine-tuning, the default-model build, the untrained artifacts of tests and benchmarks)
start from `build_metadata`; `realcheck.model.artifacts.artifact` checks what it writes and what it reads against the table; the
API serves the `PUBLIC_FIELDS` and its OpenAPI `Model` schema is `openapi_properties`. A new field is one
more row here. No TensorFlow: the server and the CLI read metadata without it.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from realcheck.model.data.imaging import IMAGE_CONDITIONS
from realcheck.model.errors import ArtifactError
from realcheck.model.labels import LABEL_NAMES


def rule_key(condition: str) -> str:
    """The metadata key of the threshold and band for images meeting `condition` (`imaging.IMAGE_CONDITIONS`:
    their scores sit elsewhere, so one rule cannot serve both): `small_image_rule`, `compressed_image_rule`."""
    return f"{condition}_rule"


def condition_rules(metadata: Mapping) -> dict[str, Mapping]:
    """The rule entries (`<condition>_rule`) an artifact's metadata holds, by condition, in the order
    `IMAGE_CONDITIONS` tries them."""
    return {c: metadata[rule_key(c)] for c in IMAGE_CONDITIONS if metadata.get(rule_key(c))}


FORMAT_VERSION = 1

# JSON type -> the Python types `json.loads` gives for it (bool is an int to Python, never to JSON).
JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list, tuple),
    "object": (dict,),
}


@dataclass(frozen=True)
class Field:
    """One key of metadata.json."""

    key: str
    json_type: str  # a key of JSON_TYPES
    description: str
    required: bool = False  # serving cannot work without it
    public: bool = False  # served by /v1/models; the rest (commands, library versions) stays local
    network: bool = False  # describes the trained network: a fine-tuned model keeps it from its parent
    nullable: bool = False
    items: str | None = None  # the JSON type of an array's items or an object's values
    default: str | None = None  # what readers take when an (older) artifact leaves the key out


FIELDS: tuple[Field, ...] = (
    Field("format_version", "integer", "artifact format; a reader refuses a newer one"),
    Field("name", "string", "model name", required=True, public=True),
    Field("version", "string", "model version (when it was made, sortable)", required=True, public=True),
    Field("backbone", "string", "backbone network", required=True, public=True, network=True),
    Field(
        "weights",
        "string",
        "the backbone's initial weights: imagenet, file or none",
        public=True,
        network=True,
    ),
    Field("head", "object", "the classification head's hyperparameters", network=True),
    Field(
        "input_size",
        "integer",
        "pixels per side of the model's input (the resized image or the window)",
        required=True,
        public=True,
        network=True,
    ),
    Field(
        "input_mode",
        "string",
        "resize: the whole image resized to input_size; crop: windows at native resolution",
        public=True,
        network=True,
        default="resize",
    ),
    Field(
        "input_fill",
        "string",
        "crop: how an image smaller than the window reaches it: upscale (resampled) or mirror (reflected at "
        "its edges, never resampled)",
        public=True,
        default="upscale",
    ),
    Field("training_crop_size", "integer", "pixels per side of the training crops", network=True),
    Field(
        "pooling",
        "string",
        "average: the backbone's last layer; stages: every stage's mean, std and max (the probe)",
        public=True,
        network=True,
        default="average",
    ),
    Field(
        "probe",
        "object",
        "the linear probe: its L2 strength, validation ROC AUCs, images scored out of source",
    ),
    Field(
        "input_filter",
        "string",
        "fixed filter inside the model before the backbone",
        network=True,
        default="none",
    ),
    Field(
        "threshold",
        "number",
        "`ai` when P(AI) >= threshold (chosen on validation)",
        required=True,
        public=True,
    ),
    Field(
        "uncertainty_band",
        "array",
        "[low, high]: a score inside it is `uncertain` (chosen on validation)",
        required=True,
        public=True,
        items="number",
    ),
    Field(
        "small_image_rule",
        "object",
        "crop: the threshold and band for small images (their scores sit elsewhere), what they apply to and "
        "what they were fitted on",
        public=True,
    ),
    Field(
        "compressed_image_rule",
        "object",
        "the threshold and band for heavily compressed JPEG files (their scores sit elsewhere), what they "
        "apply to and what they were fitted on",
        public=True,
    ),
    Field("calibration", "object", "Platt scaling inside the graph and validation ECE before and after"),
    Field("labels", "object", "class index -> label name", public=True, items="string"),
    Field("score", "string", "what a score means", public=True),
    Field("input", "object", "what the model takes: dtype, value range, channels, shape"),
    Field("training_data", "object", "the data set: layout, images per class, split and source", public=True),
    Field("metrics", "object", "metrics per split (val, test) at the threshold and band", public=True),
    Field("created_at", "string", "when the artifact was made (ISO 8601, UTC)", public=True),
    Field("seed", "integer", "random seed of the run"),
    Field("precision", "string", "Keras precision policy used in training"),
    Field("device", "string", "devices that trained it"),
    Field(
        "replicas", "integer", "replicas that trained it in step: devices, times workers with several workers"
    ),
    Field("training_seconds", "number", "wall-clock training time"),
    Field("epoch_seconds", "object", "mean seconds per epoch, per training phase", items="number"),
    Field("parameters", "integer", "number of model parameters"),
    Field("library_versions", "object", "versions of the libraries that shape the numbers", items="string"),
    Field("git_commit", "string", "source commit that trained it (-dirty with local changes)", nullable=True),
    Field("command", "string", "the command line that made it"),
    Field("fine_tuned_from", "object", "name, version and path of the artifact it was fine-tuned from"),
    Field("source_holdout", "object", "results of the source-held-out protocol"),
    Field(
        "adaptation",
        "object",
        "settings of the backbone adaptation recipe (realcheck.model.training.adaptation)",
    ),
    Field(
        "operating_point",
        "object",
        "how the threshold and band were chosen, and the verdict rates measured at them (AI images caught, "
        "real photos called AI, uncertain) on a named protocol",
        public=True,
    ),
    Field(
        "cross_collection",
        "object",
        "results of the cross-collection protocol (train on one, test on another)",
    ),
    Field("shortcut_audit", "object", "how well processing traces alone separate the classes (ROC AUC)"),
    Field("gflop_per_image", "number", "compute per image"),
    Field("inference_speed", "string", "measured scoring speed and how to measure it"),
    Field("reproduce", "string", "command that reproduces this model"),
    Field("data_description", "string", "the data folders it was made from"),
    Field("intended_use", "string", "what the model is for, and not for"),
    Field("known_limitations", "array", "limitations found in its evaluation", items="string"),
)

FIELDS_BY_KEY: dict[str, Field] = {field.key: field for field in FIELDS}
REQUIRED_FIELDS = tuple(field.key for field in FIELDS if field.required)
PUBLIC_FIELDS = tuple(field.key for field in FIELDS if field.public)
NETWORK_FIELDS = tuple(field.key for field in FIELDS if field.network)


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a model's numbers."""
    from importlib import metadata as importlib_metadata  # slow to import; only writers of artifacts need it

    versions = {"python": platform.python_version()}
    for package in (
        "realcheck",
        "tensorflow",
        "tensorflow-cpu",
        "keras",
        "keras-tuner",
        "numpy",
        "pillow",
        "scikit-learn",
        "onnxruntime",
        "tf2onnx",
    ):
        try:
            versions[package] = importlib_metadata.version(package)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions


def git_commit(start: Path | None = None) -> str | None:
    """The commit of the source tree that ran (with `-dirty` when it has local changes), if known."""
    cwd = start or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def new_version() -> str:
    """A sortable version string naming when the model was made."""
    return datetime.now(timezone.utc).strftime("%Y.%m.%d-%H%M%S")


def build_metadata(name: str, version: str | None = None, **fields) -> dict:
    """A new artifact's metadata: the fields every artifact has, then `fields` (keys of the table), and the
    table's default for any it leaves out.

    An unknown key or a value of the wrong type fails here, before a long training, not when it is saved.
    """
    metadata = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "version": version or new_version(),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "labels": {str(k): v for k, v in LABEL_NAMES.items()},
        "score": "P(ai): probability that the image is AI-generated",
        "input": {"dtype": "float32", "range": [0, 255], "channels": "RGB", "shape": [None, None, None, 3]},
        "library_versions": library_versions(),
        "git_commit": git_commit(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    } | fields
    metadata = with_defaults(metadata)
    _check_known(metadata, f"metadata of {name}")
    _check_types(metadata, f"metadata of {name}")
    return metadata


def validate_metadata(metadata, source: str | Path) -> dict:
    """`metadata` as read from `source`, checked for what serving needs: format, required keys, types.

    Keys the table does not know are kept (a newer RealCheck of the same format may add some).
    """
    if not isinstance(metadata, dict):
        raise ArtifactError(f"{source} is not a JSON object")
    if "format_version" in metadata:
        _check_value(FIELDS_BY_KEY["format_version"], metadata["format_version"], source)
    if metadata.get("format_version", 0) > FORMAT_VERSION:
        raise ArtifactError(
            f"{source} has artifact format {metadata['format_version']}; this RealCheck reads up to "
            f"{FORMAT_VERSION}: upgrade RealCheck"
        )
    missing = [key for key in REQUIRED_FIELDS if key not in metadata]
    if missing:
        raise ArtifactError(f"{source} lacks {', '.join(missing)}")
    _check_types(metadata, source)
    return metadata


def with_defaults(metadata: Mapping) -> dict:
    """`metadata` with the table's default for every key it leaves out that has one."""
    return {field.key: field.default for field in FIELDS if field.default is not None} | dict(metadata)


def validate_new_metadata(metadata: dict, source: str | Path) -> dict:
    """`metadata` about to be written to `source`: valid to read, and every key in the table."""
    validate_metadata(metadata, source)
    _check_known(metadata, source)
    return metadata


def openapi_properties(keys: Iterable[str]) -> dict[str, dict]:
    """OpenAPI 3.1 (JSON Schema 2020-12) schemas of the fields `keys`, typed and described as in the table."""
    properties = {}
    for key in keys:
        field = FIELDS_BY_KEY[key]
        schema: dict = {
            "type": [field.json_type, "null"] if field.nullable else field.json_type,
            "description": field.description,
        }
        if field.items:
            schema["items" if field.json_type == "array" else "additionalProperties"] = {"type": field.items}
        properties[key] = schema
    return properties


def _check_known(metadata: Mapping, source: str | Path) -> None:
    unknown = [key for key in metadata if key not in FIELDS_BY_KEY]
    if unknown:
        raise ArtifactError(
            f"{source}: unknown metadata field(s) {', '.join(unknown)}: add them to model/artifacts/metadata.py FIELDS"
        )


def _check_types(metadata: Mapping, source: str | Path) -> None:
    for key, value in metadata.items():
        if key in FIELDS_BY_KEY:
            _check_value(FIELDS_BY_KEY[key], value, source)


def _check_value(field: Field, value, source: str | Path) -> None:
    if value is None and field.nullable:
        return
    if not _is_json_type(value, field.json_type):
        raise ArtifactError(f"{source}: {field.key} should be a JSON {field.json_type}, not {value!r:.80}")
    if field.items:
        members = value if field.json_type == "array" else value.values()
        if not all(_is_json_type(member, field.items) for member in members):
            raise ArtifactError(f"{source}: every item of {field.key} should be a JSON {field.items}")


def _is_json_type(value, json_type: str) -> bool:
    return isinstance(value, JSON_TYPES[json_type]) and (
        json_type == "boolean" or not isinstance(value, bool)
    )
