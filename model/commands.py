"""The model package's commands: train, tune, finetune, compare, evaluate and export.

Training flags come from `realcheck.model.settings.TrainConfig` (defaults, choices and help text live on its fields);
each handler turns its arguments into one TrainConfig and calls the package. Imports of TensorFlow-heavy
modules are inside the handlers, so `realcheck --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from realcheck.model.errors import RealCheckError
from realcheck.model.flags import add_flags, flag_values, option, positive_int
from realcheck.model.settings import (
    BACKBONES,
    KEPT_FROM_ARTIFACT,
    TUNE_SEARCHES_HEADS,
    AugmentConfig,
    HeadParams,
    TrainConfig,
)


@dataclass
class TrainingInputs:
    """Flags that are no setting themselves: files and a switch that `make_config` turns into TrainConfig's
    head and augmentation. Declared like the settings, so every refusal of a training flag is a `refused_by`."""

    head_params: str | None = option(
        None,
        help="best_hyperparameters.json from `realcheck tune`",
        refused_by={"finetune": KEPT_FROM_ARTIFACT, "tune": TUNE_SEARCHES_HEADS},
    )
    # tune computes features once from unaugmented images: augmentation settings would change nothing.
    no_augment: bool = option(
        False, help="train on unmodified images", refused_by={"tune": TUNE_SEARCHES_HEADS}
    )
    augment_config: str | None = option(
        None,
        help="JSON file of augmentation settings (keys of AugmentConfig; the rest keep their defaults)",
        refused_by={"tune": TUNE_SEARCHES_HEADS},
    )


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register train, tune, finetune, compare, evaluate and export."""
    _add_training_commands(commands)
    _add_evaluate(commands)
    _add_export(commands)


def _add_training_commands(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train", help="whole flow: head -> optional search -> fine-tune -> evaluate -> artifact"
    )
    add_training_flags(train, "train")
    train.set_defaults(handler=command_train)

    tune = commands.add_parser("tune", help="Keras Tuner search over the head (resumable)")
    add_training_flags(tune, "tune")
    tune.add_argument("--overwrite", action="store_true", help="start over instead of resuming")
    tune.set_defaults(handler=command_tune)

    finetune = commands.add_parser("finetune", help="fine-tune the top of an artifact's backbone")
    finetune.add_argument("--model", required=True, help="artifact folder to start from")
    add_training_flags(finetune, "finetune")
    finetune.set_defaults(handler=command_finetune)

    compare = commands.add_parser(
        "compare", help=f"the backbones ({', '.join(BACKBONES)}) under the same head"
    )
    add_training_flags(compare, "compare")
    compare.add_argument("--backbones", default=",".join(BACKBONES), help="comma-separated backbones")
    compare.set_defaults(handler=command_compare)


def add_training_flags(parser: argparse.ArgumentParser, command: str) -> None:
    """TrainConfig's flags and the inputs that become its head and augmentation; those `command` refuses are
    recognised only to be refused with their reason."""
    add_flags(parser, TrainConfig, command=command)
    add_flags(parser, TrainingInputs, command=command)


def augment_config(inputs: TrainingInputs) -> AugmentConfig:
    """--no-augment and --augment-config -> AugmentConfig; unknown keys in the file are an error."""
    values: dict = {}
    if inputs.augment_config:
        path = Path(inputs.augment_config)
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise RealCheckError(f"cannot read augmentation settings from {path}: {error}") from None
        if not isinstance(values, dict):
            raise RealCheckError(f"{path} must hold a JSON object of augmentation settings")
        unknown = sorted(set(values) - set(AugmentConfig.__dataclass_fields__))
        if unknown:
            known = ", ".join(AugmentConfig.__dataclass_fields__)
            raise RealCheckError(
                f"unknown augmentation settings in {path}: {', '.join(unknown)} (known: {known})"
            )
    if inputs.no_augment:
        values["enabled"] = False
    try:
        return AugmentConfig.from_dict(values)
    except (TypeError, ValueError) as error:
        raise RealCheckError(f"bad augmentation settings: {error}") from None


def searched_head(path: Path, learning_rate: float) -> tuple[HeadParams, float]:
    """The head and learning rate `realcheck tune` found (its best_hyperparameters.json; the rate may be absent)."""
    try:
        best = json.loads(path.read_text(encoding="utf-8"))
        return HeadParams.from_dict(best["params"]), float(best.get("learning_rate", learning_rate))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise RealCheckError(f"cannot read head parameters from {path}: {error}") from None


def make_config(args: argparse.Namespace, **fixed) -> TrainConfig:
    """CLI flags -> TrainConfig (the one place flags become configuration); `fixed` is what the command sets."""
    from realcheck.model.artifacts.metadata import new_version

    inputs = TrainingInputs(**flag_values(args, TrainingInputs))
    values = flag_values(args, TrainConfig) | {"augment": augment_config(inputs)}
    if inputs.head_params:
        values["head"], values["learning_rate"] = searched_head(
            Path(inputs.head_params), values["learning_rate"]
        )
    if values["out"] is None:
        # finetune takes its backbone from the artifact, so its runs are named for what they do.
        name = values["name"] or ("realcheck-" + values.get("backbone", "finetuned"))
        values["out"] = str(Path("runs") / f"{name}-{new_version()}")
    return TrainConfig(**(values | fixed))


def command_train(args: argparse.Namespace) -> int:
    from realcheck.model.training.flows import summary_text, train

    print(summary_text(train(make_config(args))))
    return 0


def command_tune(args: argparse.Namespace) -> int:
    from realcheck.model.training.flows import start_run
    from realcheck.model.training.tuning import run_head_search

    config = make_config(args, search=True)
    run_dir, data = start_run(config, check_weights=True)
    result = run_head_search(config, data, run_dir, overwrite=args.overwrite)
    print(json.dumps(result.summary, indent=2))
    print(
        f"best hyperparameters: {run_dir / 'best_hyperparameters.json'} (pass it to `realcheck train --head-params`)"
    )
    return 0


def command_finetune(args: argparse.Namespace) -> int:
    from realcheck.model.training.flows import finetune, summary_text

    print(summary_text(finetune(args.model, make_config(args))))
    return 0


def command_compare(args: argparse.Namespace) -> int:
    from realcheck.model.training.comparison import compare_backbones, markdown_table

    backbones = [b.strip().lower() for b in args.backbones.split(",") if b.strip()]
    unknown = [b for b in backbones if b not in BACKBONES]
    if unknown or not backbones:
        raise RealCheckError(
            f"unknown backbone(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(BACKBONES)}"
        )
    args.name = args.name or "compare"
    config = make_config(args, finetune=False)
    rows = compare_backbones(config, backbones)
    print(markdown_table(rows))
    print(f"written: {Path(config.out) / 'comparison.md'}, comparison.json, comparison.png")
    return 0


def _add_evaluate(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="score a labelled folder or DeepGuardDB tree with an artifact, per source",
        description="Score labelled images and report overall and per source (generator, camera collection). "
        "A folder may hold one class only: the report then says how many AI images were caught, or how "
        "many real photographs were called AI.",
    )
    evaluate.add_argument("--model", default=None, help="artifact folder (default: the bundled model)")
    evaluate.add_argument(
        "--data",
        required=True,
        help="DeepGuardDB_v1 folder, a folder with real/ and/or fake/ (any depth), or any folder with --label",
    )
    evaluate.add_argument(
        "--label",
        choices=("ai", "real"),
        default=None,
        help="every image under --data is of this class (no class folders needed); sub-folders name sources",
    )
    evaluate.add_argument(
        "--subset",
        choices=("all", "train", "val", "test"),
        default="all",
        help="only this split of the artifact's split.csv (same data folder)",
    )
    evaluate.add_argument("--out", default=None, help="folder for evaluation.json, predictions.csv and plots")
    evaluate.add_argument("--batch-size", type=positive_int, default=32)
    evaluate.add_argument(
        "--degrade",
        type=_degradation,
        default=None,
        metavar="MAX_SIDE:QUALITY",
        help="score web-degraded copies: longest side <= MAX_SIDE px, re-saved as JPEG QUALITY (e.g. 768:60)",
    )
    evaluate.add_argument(
        "--json", action="store_true", help="print the metrics as one JSON object on stdout"
    )
    evaluate.set_defaults(handler=command_evaluate)


def _degradation(text: str):
    from realcheck.model.data.imaging import WebDegradation

    try:
        return WebDegradation.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def command_evaluate(args: argparse.Namespace) -> int:
    from realcheck.model.artifacts.artifact import resolve_model_dir
    from realcheck.model.evaluation.folders import evaluate_folder
    from realcheck.model.evaluation.measures import format_report
    from realcheck.model.labels import label_for_folder

    result = evaluate_folder(
        resolve_model_dir(args.model),
        args.data,
        subset=args.subset,
        out=args.out,
        batch_size=args.batch_size,
        degradation=args.degrade,
        label=None if args.label is None else label_for_folder(args.label),
    )
    if args.json:
        print(json.dumps(result, default=float))
    else:
        print(format_report(result))
        if args.out:
            print(f"written: {args.out}")
    return 0


def _add_export(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser(
        "export", help="export an artifact to ONNX or SavedModel (checked against Keras)"
    )
    export.add_argument("--model", default=None, help="artifact folder (default: the bundled model)")
    export.add_argument("--format", required=True, choices=("onnx", "savedmodel"))
    export.add_argument(
        "--out",
        default=None,
        help="output path (default: inside the artifact folder; for the bundled model, in the current folder)",
    )
    export.set_defaults(handler=command_export)


def command_export(args: argparse.Namespace) -> int:
    from realcheck.model.artifacts.artifact import read_metadata, resolve_model_dir
    from realcheck.model.artifacts.export import export_artifact

    model_dir = resolve_model_dir(args.model)
    out = args.out
    if out is None and args.model is None:
        # The installed package is not the place for files a user makes: the bundled model exports here.
        name = read_metadata(model_dir)["name"]
        out = Path(f"{name}.onnx") if args.format == "onnx" else Path(f"{name}-savedmodel") / "1"
    record = export_artifact(model_dir, args.format, out)
    print(
        f"exported {record['format']} to {record['path']} (max difference from Keras {record['max_abs_diff']:.2e})"
    )
    return 0
