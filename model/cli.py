"""`realcheck`: the one command line of RealCheck.

Subcommands: train, tune, finetune, compare, evaluate, export, app, serve, check, scan, feedback. Errors a user can
fix print one line and exit with status 2; nothing prints a traceback for them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from model import __version__, quiet_import
from model.errors import RealCheckError

log = logging.getLogger("realcheck")
BACKBONE_NAMES = ("resnet50", "vgg16", "efficientnetb0", "efficientnet_lite0", "efficientnet_lite2")
INPUT_FILTERS = ("none", "highpass")  # model.architecture.INPUT_FILTERS, without importing TensorFlow


def _positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


def _port(text: str) -> int:
    value = _int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0-65535 (0: any free port), got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _degradation(text: str):
    from model.imaging import WebDegradation

    try:
        return WebDegradation.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _training_options(parser: argparse.ArgumentParser, default_out: str) -> None:
    """Flags shared by every command that trains (they become a TrainConfig)."""
    parser.add_argument(
        "--data", required=True, help="DeepGuardDB_v1 folder or a folder with real/ and fake/ (any depth)"
    )
    parser.add_argument(
        "--out", default=None, help=f"run and artifact folder (default {default_out}/<name>-<time>)"
    )
    parser.add_argument("--backbone", default="resnet50", choices=BACKBONE_NAMES)
    parser.add_argument(
        "--weights",
        default="imagenet",
        help="imagenet (download), none (train from scratch) or a path to a Keras .h5 weights file",
    )
    parser.add_argument(
        "--image-size", type=_positive_int, default=224, help="model input size in pixels (>= 32)"
    )
    parser.add_argument(
        "--input-mode",
        choices=("resize", "crop"),
        default="resize",
        help="resize whole images, or crop windows at native resolution (keeps generation artefacts)",
    )
    parser.add_argument(
        "--inference-size",
        type=_positive_int,
        default=None,
        help="crop mode: the window the finished model scores (default: --image-size)",
    )
    parser.add_argument(
        "--input-filter",
        choices=INPUT_FILTERS,
        default="none",
        help="highpass: feed the backbone the image minus its 3x3 blur (pixel-level traces)",
    )
    parser.add_argument("--batch-size", type=_positive_int, default=32)
    parser.add_argument("--epochs", type=_non_negative_int, default=10, help="head (or from-scratch) epochs")
    parser.add_argument("--learning-rate", type=_positive_float, default=1e-3)
    parser.add_argument("--finetune-epochs", type=_non_negative_int, default=5)
    parser.add_argument("--finetune-learning-rate", type=_positive_float, default=1e-5)
    parser.add_argument(
        "--unfreeze-from",
        default=None,
        help="first backbone layer to fine-tune (default: the start of the last stage)",
    )
    parser.add_argument(
        "--patience", type=_non_negative_int, default=3, help="early-stopping patience (0: off)"
    )
    parser.add_argument("--val-fraction", type=_fraction, default=0.15)
    parser.add_argument("--test-fraction", type=_fraction, default=0.15)
    parser.add_argument("--split", default=None, help="reuse a split manifest (split.csv of an earlier run)")
    parser.add_argument(
        "--split-by",
        choices=("group", "source"),
        default="group",
        help="group: random, pair-aware split; source: whole sources (generators, camera collections) held "
        "out for validation and test, so threshold, calibration and band are tuned on unseen sources",
    )
    parser.add_argument(
        "--max-uncertain",
        type=_fraction,
        default=0.2,
        help="at most this share of validation images inside the uncertainty band (default 0.2)",
    )
    parser.add_argument(
        "--max-real-called-ai",
        type=_fraction,
        default=None,
        help="raise the band's upper edge (within --max-uncertain) until at most this share of validation "
        "real photographs is called AI",
    )
    parser.add_argument(
        "--limit", type=_positive_int, default=None, help="at most N images per class (quick runs)"
    )
    parser.add_argument("--seed", type=_int, default=42)
    parser.add_argument("--cache", default="memory", help="memory, none, or a folder for an on-disk cache")
    parser.add_argument("--no-augment", action="store_true", help="train on unmodified images")
    parser.add_argument(
        "--augment-config",
        default=None,
        help="JSON file of augmentation settings (keys of AugmentConfig; the rest keep their defaults)",
    )
    parser.add_argument(
        "--distribute",
        choices=("auto", "none", "mirrored", "multiworker"),
        default="auto",
        help="tf.distribute: mirrored across local GPUs, multiworker through TF_CONFIG",
    )
    parser.add_argument(
        "--mixed-precision",
        choices=("auto", "on", "off"),
        default="auto",
        help="mixed float16 (auto: on when a GPU is present)",
    )
    parser.add_argument("--head-params", default=None, help="best_hyperparameters.json from `realcheck tune`")
    parser.add_argument("--name", default=None, help="model name recorded in the artifact")
    parser.add_argument(
        "--version", dest="model_version", default=None, help="model version (default: creation time)"
    )


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Help that shows each option's default, unless its text already names it or there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        shown = action.default not in (None, False, [], argparse.SUPPRESS) and action.option_strings
        if shown and "default" not in text and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="realcheck", description="Tell real photographs from AI-generated images."
    )
    parser.add_argument("--version", action="version", version=f"realcheck {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = commands.add_parser(
        "train", help="whole flow: head -> optional search -> fine-tune -> evaluate -> artifact"
    )
    _training_options(train, "runs")
    train.add_argument(
        "--search", action="store_true", help="search the head with Keras Tuner before fine-tuning"
    )
    train.add_argument("--trials", type=_positive_int, default=10, help="head-search trials")
    train.add_argument("--no-finetune", action="store_true", help="stop after the head")
    train.set_defaults(handler=command_train)

    tune = commands.add_parser("tune", help="Keras Tuner search over the head (resumable)")
    _training_options(tune, "runs")
    tune.add_argument("--trials", type=_positive_int, default=10)
    tune.add_argument("--search-epochs", type=_positive_int, default=15, help="epochs per trial")
    tune.add_argument("--overwrite", action="store_true", help="start over instead of resuming")
    tune.set_defaults(handler=command_tune)

    finetune = commands.add_parser("finetune", help="fine-tune the top of an artifact's backbone")
    finetune.add_argument("--model", required=True, help="artifact folder to start from")
    _training_options(finetune, "runs")
    finetune.set_defaults(handler=command_finetune)

    compare = commands.add_parser(
        "compare",
        help="the backbones (resnet50, vgg16, efficientnetb0, efficientnet_lite0/2) under the same head",
    )
    _training_options(compare, "runs")
    compare.add_argument("--backbones", default=",".join(BACKBONE_NAMES), help="comma-separated backbones")
    compare.set_defaults(handler=command_compare)

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
    evaluate.add_argument("--batch-size", type=_positive_int, default=32)
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

    app = commands.add_parser(
        "app", help="the Streamlit upload page: verdicts, Grad-CAM heatmaps, CSV export"
    )
    app.add_argument(
        "--model", default=None, help="artifact folder (default: $REALCHECK_MODEL, else the bundled model)"
    )
    app.add_argument("--port", type=_port, default=8501, help="port to listen on (default 8501)")
    app.add_argument(
        "--address", default="127.0.0.1", help="interface to listen on (default 127.0.0.1; 0.0.0.0 for all)"
    )
    app.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    _feedback_db_option(app)
    app.set_defaults(handler=command_app)
    _serving_commands(commands)
    _feedback_commands(commands)
    for command in commands.choices.values():
        command.formatter_class = DefaultsHelpFormatter
    return parser


def _serving_commands(commands) -> None:
    """`serve`, `check` and `scan`: the serving API and scripted queries (code in the `server` package)."""
    serve = commands.add_parser("serve", help="serve a model over HTTP (JSON API, micro-batching, metrics)")
    serve.add_argument("--model", default=None, help="artifact folder to serve (default: the bundled model)")
    serve.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1; 0.0.0.0 for all)")
    serve.add_argument("--port", type=_port, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--backend",
        choices=("auto", "onnx", "tensorflow"),
        default="auto",
        help="runtime: auto is TensorFlow on a GPU, ONNX Runtime on a CPU",
    )
    serve.add_argument(
        "--max-batch-size", type=_positive_int, default=16, help="images per model call (1: off)"
    )
    serve.add_argument(
        "--max-wait-ms", type=float, default=5.0, help="longest wait for a batch to fill (default 5 ms)"
    )
    serve.add_argument("--threads", type=_positive_int, default=16, help="request worker threads")
    serve.add_argument(
        "--cache-size", type=_non_negative_int, default=4096, help="results kept by content hash"
    )
    serve.add_argument(
        "--cache-dir", default=None, help="where ONNX exports are cached (default ~/.cache/realcheck)"
    )
    serve.add_argument("--max-request-mb", type=_positive_float, default=64.0, help="largest request body")
    serve.add_argument("--max-images", type=_positive_int, default=64, help="most images in one request")
    serve.add_argument(
        "--api-key",
        default=os.environ.get("REALCHECK_API_KEY"),
        help="require this key in the X-API-Key header (default: $REALCHECK_API_KEY; none: open)",
    )
    serve.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        help="allow this web origin (repeatable), e.g. https://x.org",
    )
    serve.add_argument(
        "--allow-extension-origins",
        action="store_true",
        help="allow chrome-extension:// and moz-extension:// origins (the browser extension)",
    )
    serve.add_argument(
        "--rate-limit", type=_non_negative_int, default=0, help="requests a minute per client (0: no limit)"
    )
    serve.add_argument(
        "--request-timeout",
        type=_positive_float,
        default=20.0,
        help="seconds a request may take to arrive, plus 1 s per 64 KiB of it (slow clients get a 408)",
    )
    serve.add_argument(
        "--connection-limit", type=_positive_int, default=200, help="most open connections at once"
    )
    _add_trust_anchors_flag(serve)
    _feedback_db_option(serve)
    serve.set_defaults(handler=command_serve)

    for name, text in (
        ("check", "check images (through a server with --server, else with the model in-process)"),
        ("scan", "check every image under a folder into a CSV or JSONL file (resumable)"),
    ):
        query = commands.add_parser(name, help=text)
        if name == "check":
            query.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
            query.add_argument("--json", action="store_true", help="print the results as JSON")
            query.set_defaults(handler=command_check)
        else:
            query.add_argument("folder", metavar="DIR", help="folder to scan (recursively)")
            query.add_argument(
                "--out", required=True, help="results file: .csv or .jsonl (resumed if present)"
            )
            query.set_defaults(handler=command_scan)
        query.add_argument("--server", default=None, help="RealCheck server URL, e.g. http://127.0.0.1:8000")
        query.add_argument(
            "--model", default=None, help="artifact folder to run in-process (default: the bundled model)"
        )
        query.add_argument(
            "--api-key",
            default=os.environ.get("REALCHECK_API_KEY"),
            help="server API key ($REALCHECK_API_KEY)",
        )
        query.add_argument(
            "--concurrency",
            type=_positive_int,
            default=4,
            help="requests in flight with --server (default 4)",
        )
        query.add_argument("--batch-size", type=_positive_int, default=32, help="batch size in-process")
        _add_trust_anchors_flag(query)


def _add_trust_anchors_flag(command) -> None:
    command.add_argument(
        "--c2pa-trust-anchors",
        metavar="PEM",
        default=None,
        help="root certificates (PEM) whose Content Credentials signers count as trusted "
        "(e.g. the C2PA trust list; none: intact manifests are reported as valid, signer unverified)",
    )


def _feedback_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--feedback-db",
        default=None,
        metavar="PATH_OR_URL",
        help="where wrong-verdict reports are kept: a SQLite file, sqlite:///FILE or postgresql://USER:PASS@HOST/DB "
        "(default: $REALCHECK_FEEDBACK_DB, else ~/.local/share/realcheck/feedback.sqlite3)",
    )


def _feedback_commands(commands) -> None:
    """`feedback list` and `feedback export`: the reports users sent, for the operator and for retraining."""
    feedback = commands.add_parser("feedback", help="list or export the wrong-verdict reports users sent")
    actions = feedback.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="print the reports, oldest first")
    listing.add_argument("--limit", type=_positive_int, default=None, help="at most N reports (the newest)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(handler=command_feedback_list)
    export = actions.add_parser(
        "export", help="real/ and fake/ folders of the shared images plus manifest.csv of every report"
    )
    export.add_argument(
        "--out", required=True, help="a new (or empty) folder; `realcheck finetune --data` reads it"
    )
    export.set_defaults(handler=command_feedback_export)
    for action in (listing, export):
        _feedback_db_option(action)
        action.formatter_class = DefaultsHelpFormatter


def augment_config(args: argparse.Namespace):
    """--no-augment and --augment-config -> AugmentConfig; unknown keys in the file are an error."""
    from model.pipeline import AugmentConfig

    values: dict = {}
    if args.augment_config:
        path = Path(args.augment_config)
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
    if args.no_augment:
        values["enabled"] = False
    try:
        return AugmentConfig.from_dict(values)
    except (TypeError, ValueError) as error:
        raise RealCheckError(f"bad augmentation settings: {error}") from None


def make_config(args: argparse.Namespace, **overrides):
    """CLI flags -> TrainConfig (the one place flags become configuration)."""
    from model.architecture import HeadParams
    from model.config import TrainConfig
    from model.metadata import new_version

    head = HeadParams()
    learning_rate = args.learning_rate
    if args.head_params:
        path = Path(args.head_params)
        try:
            best = json.loads(path.read_text(encoding="utf-8"))
            head = HeadParams.from_dict(best["params"])
            learning_rate = float(best.get("learning_rate", learning_rate))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise RealCheckError(f"cannot read head parameters from {path}: {error}") from None
    name = args.name or f"realcheck-{args.backbone}"
    out = args.out or str(Path("runs") / f"{name}-{new_version()}")
    values = dict(
        data=args.data,
        out=out,
        backbone=args.backbone,
        weights=args.weights,
        image_size=args.image_size,
        input_mode=args.input_mode,
        inference_size=args.inference_size,
        input_filter=args.input_filter,
        batch_size=args.batch_size,
        epochs=args.epochs,
        learning_rate=learning_rate,
        finetune_epochs=args.finetune_epochs,
        finetune_learning_rate=args.finetune_learning_rate,
        unfreeze_from=args.unfreeze_from,
        patience=args.patience,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        split=args.split,
        split_by=args.split_by,
        max_uncertain=args.max_uncertain,
        max_real_called_ai=args.max_real_called_ai,
        limit=args.limit,
        seed=args.seed,
        cache=None if args.cache.lower() == "none" else args.cache,
        distribute=args.distribute,
        mixed_precision=args.mixed_precision,
        name=args.name,
        version=args.model_version,
        head=head,
        augment=augment_config(args),
    )
    return TrainConfig(**(values | overrides))


def command_train(args: argparse.Namespace) -> int:
    from model.training import summary_text, train

    config = make_config(args, search=args.search, search_trials=args.trials, finetune=not args.no_finetune)
    print(summary_text(train(config)))
    return 0


def command_tune(args: argparse.Namespace) -> int:
    from model.training import preflight_weights, prepare_data, set_seed
    from model.tuning import run_head_search

    config = make_config(args, search=True, search_trials=args.trials, search_epochs=args.search_epochs)
    set_seed(config.seed)
    preflight_weights(config)
    run_dir = Path(config.out)
    data = prepare_data(config, run_dir)
    config.save(run_dir / "config.json")
    result = run_head_search(config, data, run_dir, overwrite=args.overwrite)
    print(json.dumps(result.summary, indent=2))
    print(
        f"best hyperparameters: {run_dir / 'best_hyperparameters.json'} (pass it to `realcheck train --head-params`)"
    )
    return 0


def command_finetune(args: argparse.Namespace) -> int:
    from model.training import finetune, summary_text

    print(summary_text(finetune(args.model, make_config(args))))
    return 0


def command_compare(args: argparse.Namespace) -> int:
    from model.comparison import compare_backbones, markdown_table

    backbones = [b.strip().lower() for b in args.backbones.split(",") if b.strip()]
    unknown = [b for b in backbones if b not in BACKBONE_NAMES]
    if unknown or not backbones:
        raise RealCheckError(
            f"unknown backbone(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(BACKBONE_NAMES)}"
        )
    args.name = args.name or "compare"
    config = make_config(args, finetune=False)
    rows = compare_backbones(config, backbones)
    print(markdown_table(rows))
    print(f"written: {Path(config.out) / 'comparison.md'}, comparison.json, comparison.png")
    return 0


def command_evaluate(args: argparse.Namespace) -> int:
    from model.evaluation import format_report
    from model.folder_evaluation import evaluate_folder
    from model.labels import label_for_folder
    from server.config import resolve_model_dir

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


def command_export(args: argparse.Namespace) -> int:
    from model.artifact import read_metadata
    from model.export import export_artifact
    from server.config import resolve_model_dir

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


def command_app(args: argparse.Namespace) -> int:
    import importlib.util

    from model.artifact import read_metadata
    from streamlit_app.launch import run_streamlit, streamlit_command

    if importlib.util.find_spec("streamlit") is None:
        raise RealCheckError("streamlit is not installed: pip install streamlit (or reinstall RealCheck)")
    if args.model:
        read_metadata(args.model)  # a wrong folder fails here in a line, not later in the browser
    command = streamlit_command(args.model, args.port, args.address, args.feedback_db)
    url = f"http://{args.address}:{args.port}"
    log.info("starting the app on %s (Ctrl+C stops it)", url)
    return run_streamlit(command, open_url=None if args.no_browser else url)


def command_serve(args: argparse.Namespace) -> int:
    from server.config import ServerConfig, resolve_model_dir
    from server.serve import run_server

    config = ServerConfig(
        model_dir=resolve_model_dir(args.model),
        backend=args.backend,
        cache_dir=args.cache_dir,
        max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms,
        result_cache_size=args.cache_size,
        max_request_bytes=int(args.max_request_mb * 1024 * 1024),
        max_images_per_request=args.max_images,
        api_key=args.api_key or None,
        cors_origins=list(args.cors_origin),
        allow_extension_origins=args.allow_extension_origins,
        rate_limit_per_minute=args.rate_limit,
        host=args.host,
        port=args.port,
        threads=args.threads,
        request_timeout_s=args.request_timeout,
        connection_limit=args.connection_limit,
        c2pa_trust_anchors=args.c2pa_trust_anchors,
        feedback_db=args.feedback_db,
    )
    config.provenance_reader()  # a bad trust anchors file is one line now, before the model loads
    return run_server(config)


def command_check(args: argparse.Namespace) -> int:
    from server.queries import check_images, make_checker

    return check_images(
        args.images,
        lambda: make_checker(
            args.server, args.model, args.api_key, args.concurrency, args.batch_size, args.c2pa_trust_anchors
        ),
        as_json=args.json,
    )


def command_scan(args: argparse.Namespace) -> int:
    from server.queries import check_scan_arguments, make_checker, scan_folder

    check_scan_arguments(args.folder, args.out)  # a typo is one line at once, before any model loads
    checker = make_checker(
        args.server, args.model, args.api_key, args.concurrency, args.batch_size, args.c2pa_trust_anchors
    )
    summary, status = scan_folder(args.folder, args.out, checker, progress=not args.quiet)
    print(summary.text(Path(args.out)))
    return status


def _existing_feedback_store(location: str | None):
    """The store at `location`; a SQLite file that does not exist is an error here, not a new empty database."""
    from server.feedback_store import FeedbackStore

    store = FeedbackStore(location)
    if store.url.get_backend_name() == "sqlite" and not Path(store.url.database).is_file():
        raise RealCheckError(f"no feedback database at {store.url.database} (no report was stored there yet)")
    return store


def command_feedback_list(args: argparse.Namespace) -> int:
    store = _existing_feedback_store(args.feedback_db)
    reports = list(store.iter_reports())
    if args.limit is not None:
        reports = reports[-args.limit :]
    for report in reports:
        if args.json:
            print(json.dumps(report.to_dict()))
        else:
            said = f"{report.verdict or '?'} {report.score:.3f}"
            note = f"  {report.note!r}" if report.note else ""
            print(
                f"{report.id:>6}  {report.to_dict()['created_at']}  {report.sha256[:12]}  {report.label:<4}  "
                f"(model {report.model_name} {report.model_version} said {said})"
                f"{'  image' if report.image_shared else ''}{note}"
            )
    if not args.json:
        print(f"{len(reports)} of {store.count()} reports in {store.location}", file=sys.stderr)
    return 0


def command_feedback_export(args: argparse.Namespace) -> int:
    from server.feedback_export import export_feedback

    summary = export_feedback(_existing_feedback_store(args.feedback_db), args.out)
    print(summary.text(Path(args.out)))
    return 0


def configure_logging(quiet: bool) -> None:
    """RealCheck's own messages on stderr; other libraries only when they warn."""
    handler = logging.StreamHandler(quiet_import.VisibleStderr())
    handler.setFormatter(logging.Formatter("realcheck: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False
    logging.getLogger("tf2onnx").setLevel(logging.WARNING)
    # TensorFlow's C++ start-up chatter drowns the useful lines; set before TF is first imported.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    quiet_import.install()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `realcheck` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.quiet)
    try:
        return args.handler(args)
    except RealCheckError as error:
        print(f"realcheck: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("realcheck: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
