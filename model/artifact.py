"""The artifact: one folder holding everything needed to serve and explain a model.

model.keras        the Keras model (raw RGB 0..255 of any size in, P(AI) out)
metadata.json      name, version, backbone, input, threshold, band, labels, data summary, metrics...
                   (every field, its type and meaning: `realcheck.model.metadata.FIELDS`)
README.md          the model card
plots/             evaluation and training plots
config.json, split.csv, history.json, evaluation.json, skipped.json   how it was made
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from realcheck.model.errors import ArtifactError
from realcheck.model.metadata import build_metadata, validate_metadata, validate_new_metadata

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

    from realcheck.model import architecture
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
    return validate_metadata(metadata, path)


def load_artifact(folder: str | Path):
    """(Keras model, metadata) from an artifact folder."""
    import keras

    from realcheck.model import architecture  # noqa: F401  registers the custom layers before loading

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


def store_weights_as_float16(folder: str | Path) -> tuple[int, int]:
    """Rewrite the artifact's model file with its large arrays in float16, compressed: ~46% of the size.

    Keras casts them back to float32 when it loads them, so every runtime computes in float32 as before;
    only the weights' last bits change (check verdicts against the float32 model before shipping).
    Returns (bytes before, bytes after).
    """
    import zipfile

    path = Path(folder) / MODEL_FILE
    before = path.stat().st_size
    compact = path.with_suffix(".float16.tmp")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(compact, "w", zipfile.ZIP_DEFLATED) as target:
        for entry in source.infolist():
            data = source.read(entry.filename)
            if entry.filename.endswith(".h5"):
                data = _float16_h5(data)
            target.writestr(entry.filename, data)
    compact.replace(path)
    return before, path.stat().st_size


# Arrays smaller than this (BatchNorm statistics, biases, small kernels: under 10% of ResNet-50's bytes) stay
# float32: their rounding moves scores most per byte saved.
FLOAT16_MIN_SIZE = 65_536


def _float16_h5(data: bytes) -> bytes:
    """A Keras weights file with every large float32 array stored as float16."""
    import io

    import h5py
    import numpy as np

    buffer = io.BytesIO()
    with h5py.File(io.BytesIO(data), "r") as source, h5py.File(buffer, "w") as target:
        target.attrs.update(source.attrs)

        def copy(name, item):
            if isinstance(item, h5py.Dataset):
                values = item[()]
                if values.dtype == np.float32 and values.size >= FLOAT16_MIN_SIZE:
                    values = values.astype(np.float16)
                target.create_dataset(name, data=values)
            else:
                target.require_group(name)
            target[name].attrs.update(item.attrs)

        source.visititems(copy)
    return buffer.getvalue()


def write_json(path: str | Path, data) -> None:
    """Pretty JSON, written atomically so a crash never leaves half a file."""
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
    temporary.replace(path)


def model_card(metadata: dict, folder: Path | None = None) -> str:
    """The model card (README.md of the artifact), generated from the metadata so the two never disagree."""
    metrics = metadata.get("metrics", {}).get("test") or {}
    data = metadata.get("training_data", {})

    def number(key):
        value = metrics.get(key)
        return "n/a" if value is None else f"{value:.4f}"

    lines = [
        f"# {metadata['name']} {metadata['version']}",
        "",
        "RealCheck detector: scores an image with P(AI), the probability that it is AI-generated, and gives a "
        "verdict `ai`, `real` or `uncertain`.",
        "",
        *([f"**Intended use.** {metadata['intended_use']}", ""] if metadata.get("intended_use") else []),
        "## Model",
        f"- Backbone: {metadata['backbone']} ({metadata.get('weights', 'unknown')} initial weights), head "
        f"{metadata.get('head', {})}",
        f"- Input: raw RGB 0..255, any size; {metadata.get('input_mode', 'resize')} to "
        f"{metadata['input_size']}x{metadata['input_size']} inside the inference path"
        + _training_input_note(metadata),
        f"- Decision: `ai` when P(AI) >= {metadata['threshold']:.4f}; `uncertain` inside "
        f"[{metadata['uncertainty_band'][0]:.4f}, {metadata['uncertainty_band'][1]:.4f}] (both chosen on the "
        "validation split)",
        *_calibration_lines(metadata.get("calibration")),
        *(
            [f"- Compute: {metadata['gflop_per_image']} GFLOP per image"]
            if metadata.get("gflop_per_image")
            else []
        ),
        f"- Seed {metadata.get('seed')}, git commit {metadata.get('git_commit')}, created {metadata.get('created_at')}",
        f"- Command: `{metadata.get('command', '')}`",
        "",
        "## Training data",
        f"- Layout: {data.get('layout', 'unknown')}, folder `{data.get('root_name', '?')}`; "
        f"{data.get('n', '?')} usable images ({data.get('real', '?')} real, {data.get('ai', '?')} ai), "
        f"{data.get('skipped', 0)} skipped",
    ]
    for split_name, counts in data.get("splits", {}).items():
        lines.append(
            f"- {split_name}: {counts.get('n')} images ({counts.get('real')} real, {counts.get('ai')} ai)"
        )
    for generator, counts in data.get("by_generator", {}).items():
        lines.append(f"- source `{generator}`: {counts['real']} real, {counts['ai']} ai")
    lines += ["", "## Metrics on the held-out test split"]
    if metrics:
        (tn, fp), (fn, tp) = metrics["confusion_matrix"]
        lines += [
            "| metric | value |",
            "|---|---|",
            *(
                f"| {key.replace('_', ' ')} | {number(key)} |"
                for key in (
                    "accuracy",
                    "balanced_accuracy",
                    "precision",
                    "recall",
                    "f1",
                    "roc_auc",
                    "average_precision",
                    "ece",
                )
            ),
            f"| images | {metrics['n']} |",
            "",
            f"Confusion matrix (rows true real/ai, columns predicted real/ai): [[{tn}, {fp}], [{fn}, {tp}]]",
        ]
        for generator, entry in metrics.get("per_generator", {}).items():
            lines.append(f"- `{generator}`: n={entry['n']}, accuracy {entry['accuracy']:.4f}")
    elif metadata.get("source_holdout"):
        lines.append(
            "No test split: every image served for training or validation; the source-held-out results below are its test."
        )
    else:
        lines.append("Not evaluated.")
    lines += _held_out_section(metadata)
    lines += _cross_collection_section(metadata.get("cross_collection"))
    lines += _shortcut_audit_section(metadata.get("shortcut_audit"))
    lines += _source_holdout_section(metadata.get("source_holdout"))
    if folder is not None and (folder / "plots").is_dir():
        lines += [
            "",
            "## Plots",
            *(f"![{p.stem}](plots/{p.name})" for p in sorted((folder / "plots").glob("*.png"))),
        ]
    lines += [
        "",
        "## Provenance beside the score",
        "- The score above is this model's guess from pixels alone. Every RealCheck face also reads what the "
        "file declares (`model/provenance.py`): an intact C2PA manifest or an explicit metadata declaration "
        "(IPTC DigitalSourceType, generator settings) that the image is AI-generated makes the verdict `ai` "
        "with basis `provenance`, this model's score reported beside it. Nothing else overrides the model: a "
        "signed camera capture is shown, never decisive, and missing metadata is no evidence of anything.",
        "",
        "## Limitations",
        "- Scores are only as general as the training data: generators, image sources and post-processing not "
        "seen in training can be misjudged. Check the per-source numbers above before relying on a verdict.",
        "- A score is evidence, not proof; `uncertain` means the model cannot tell at its validated accuracy.",
        *(f"- {text}" for text in metadata.get("known_limitations", [])),
        "",
    ]
    for key, title in (
        ("reproduce", "Reproduce this model"),
        ("production_command", "Train a production model (DeepGuardDB, ImageNet weights, GPU machine)"),
    ):
        if metadata.get(key):
            lines += [f"## {title}", "", "```bash", metadata[key], "```", ""]
    return "\n".join(lines)


def _training_input_note(metadata: dict) -> str:
    notes = []
    crop = metadata.get("training_crop_size")
    if crop and crop != metadata["input_size"]:
        notes.append(f"trained on random {crop}x{crop} crops at native resolution (fully convolutional)")
    if metadata.get("input_filter", "none") != "none":
        notes.append(f"{metadata['input_filter']} input filter inside the model")
    return "; " + "; ".join(notes) if notes else ""


TIER_TITLES = {
    "clean": "clean (as stored)",
    "web_768_q60": "longest side <= 768 px, JPEG q60",
    "web_512_q40": "longest side <= 512 px, JPEG q40",
}


def _calibration_lines(calibration: dict | None) -> list[str]:
    if not calibration:
        return []
    return [
        f"- Calibration: {calibration['method']} scaling on the {calibration['fitted_on']} split, "
        f"P = sigmoid({calibration['scale']:.4f} * logit(p) + {calibration['bias']:.4f}) inside the graph; "
        f"validation ECE {calibration['val_ece_before']:.4f} before, {calibration['val_ece_after']:.4f} after"
    ]


def _source_holdout_section(protocol: dict | None) -> list[str]:
    """The source-held-out protocol: pooled numbers per copy, then what each unseen source's images were called."""
    if not protocol:
        return []
    tiers = [tier for tier in TIER_TITLES if tier in protocol]
    baseline = protocol.get("baseline") or {}
    lines = [
        "",
        "## Source-held-out results",
        "",
        f"Every source (a generator, a camera collection) was held out of training in one of "
        f"{len(protocol.get('folds', {}))} folds and scored by the model trained without it, with that "
        "model's own threshold, calibration and band (fitted on other held-out sources). `ai` and `uncertain` "
        "are verdict rates; for an AI source `ai` is the share caught, for a real source the share of real "
        "photographs accused.",
        "",
        "| model | copy | images | ROC AUC | balanced accuracy | ECE | AI caught | real called AI | uncertain |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [("this model", protocol)]
    if baseline:
        rows += [("this model, the previous default's images", baseline.get("this_model", {}))]
        rows += [(baseline.get("name", "previous default"), baseline)]
    for name, results in rows:
        for tier in tiers:
            entry = results.get(tier)
            if entry and "roc_auc" in entry:
                lines.append(
                    f"| {name} | {TIER_TITLES[tier]} | {entry['n']} | {entry['roc_auc']:.3f} | "
                    f"{entry['balanced_accuracy']:.3f} | {entry['ece']:.3f} | {entry['ai_caught']:.1%} | "
                    f"{entry['real_called_ai']:.1%} | {entry['uncertain']:.1%} |"
                )
    header = " | ".join(f"{tier}: ai / uncertain" for tier in tiers)
    previous = (baseline.get("clean") or {}).get("sources", {})
    header += " | previous default, clean: ai / uncertain" if previous else ""
    columns = len(tiers) + (1 if previous else 0)
    lines += ["", f"| source | class | images | {header} |", "|---|---|---|" + "---|" * columns]
    for source, entry in protocol[tiers[0]]["sources"].items():
        rates = [protocol[t]["sources"][source] for t in tiers]
        if previous:
            rates.append(previous.get(source))
        cells = " | ".join(
            f"{rate['verdict_ai']:.0%} / {rate['verdict_uncertain']:.0%}" if rate else "-" for rate in rates
        )
        lines.append(f"| {source} | {entry['label']} | {entry['n']} | {cells} |")
    if baseline:
        lines += [
            "",
            f"The previous default ({baseline.get('name')}) was scored on the same images; it was trained on part "
            "of the dhanush-dev sources, so its numbers there are not held out.",
        ]
    return lines


def _cross_collection_section(protocol: dict | None) -> list[str]:
    """Train on one collection, test on another built independently: the number RealCheck steers by."""
    if not protocol:
        return []
    lines = [
        "",
        "## Cross-collection results",
        "",
        protocol.get("description", ""),
        "",
        "| recipe | trained -> tested | copy | images | ROC AUC | balanced accuracy | ECE | AI caught | "
        "real called AI | worst real source called AI | uncertain |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for recipe, directions in protocol.get("recipes", {}).items():
        for direction, entry in directions.items():
            for tier, title in TIER_TITLES.items():
                measured = entry.get(tier)
                if not measured or "roc_auc" not in measured:
                    continue
                lines.append(
                    f"| {recipe} | {direction} | {title} | {measured['n']} | {measured['roc_auc']:.3f} | "
                    f"{measured['balanced_accuracy']:.3f} | {measured['ece']:.3f} | {measured['ai_caught']:.1%} | "
                    f"{measured['real_called_ai']:.1%} | {_percent(measured['worst_real_source_called_ai'])} | "
                    f"{measured['uncertain']:.1%} |"
                )
    previous = protocol.get("previous_default")
    for tier, title in TIER_TITLES.items() if previous else ():
        measured = previous.get(tier)
        if measured:
            lines.append(
                f"| previous default ({previous.get('name')}) | its own training data -> B | {title} | "
                f"{measured['n']} | {measured['roc_auc']:.3f} | {measured['balanced_accuracy']:.3f} | "
                f"{measured['ece']:.3f} | {measured['ai_caught']:.1%} | {measured['real_called_ai']:.1%} | - | "
                f"{measured['uncertain']:.1%} |"
            )
    bundled = protocol.get("recipes", {}).get(protocol.get("bundled_recipe"), {})
    if bundled:
        lines += [
            "",
            f"Per source, the bundled recipe ({protocol['bundled_recipe']}), clean copies: the share called `ai` "
            "(for an AI source the share caught, for a real source the share accused; a source of both classes "
            "shows both, AI first) and the share `uncertain`.",
            "",
            "| trained -> tested | source | class | images | ai | uncertain |",
            "|---|---|---|---|---|---|",
        ]
        for direction, entry in bundled.items():
            for source, rates in (entry.get("clean") or {}).get("sources", {}).items():
                shares = [f"{rates[key]:.0%}" for key in ("ai_caught", "real_called_ai") if key in rates]
                lines.append(
                    f"| {direction} | {source} | {rates['label']} | {rates['n']} | {' / '.join(shares)} | "
                    f"{rates['uncertain']:.0%} |"
                )
    return lines


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _shortcut_audit_section(audit: dict | None) -> list[str]:
    if not audit:
        return []
    return [
        "",
        "## Shortcut audit",
        "",
        audit.get("summary", ""),
        "",
        f"Command: `{audit.get('command', '')}`",
    ]


def _held_out_section(metadata: dict) -> list[str]:
    """Clean vs web-degraded results on the held-out split, and how the stored weights were checked."""
    results = metadata.get("held_out_results")
    if not results:
        return []
    lines = [
        "",
        "### Clean and web-degraded copies of the held-out split",
        "| copy | images | accuracy | balanced accuracy | ROC AUC | ECE | confusion matrix |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, entry in results.items():
        lines.append(
            f"| {TIER_TITLES.get(key, key)} | {entry['n']} | {entry['accuracy']:.4f} | {entry['balanced_accuracy']:.4f} "
            f"| {entry['roc_auc']:.4f} | {entry.get('ece', float('nan')):.4f} | {entry['confusion_matrix']} |"
        )
    storage = metadata.get("weights_storage")
    if storage:
        lines += [
            "",
            f"Weights are stored as {storage['dtype']} ({storage['float16_bytes'] / 1e6:.1f} MB instead of "
            f"{storage['float32_bytes'] / 1e6:.1f} MB) and computed in float32; on the held-out split they give "
            f"the same verdicts as the float32 weights on {storage['same_verdicts_as_float32']} images.",
        ]
    speed = metadata.get("inference_speed")
    if speed:
        lines += ["", f"Inference speed: {speed}"]
    return lines


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
    return Path(__file__).resolve().parent / "bundled"


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
