"""Training flows: head on a frozen backbone, optional head search, fine-tuning, and the finished artifact.

`train` runs the whole flow; `finetune` continues from an existing artifact. Both end in `finish`, which
chooses the threshold and uncertainty band on the validation split, evaluates on the test split through the
inference path, draws the plots and writes the artifact.
"""

from __future__ import annotations

import json
import logging
import random
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from realcheck.model.artifacts import artifact
from realcheck.model.artifacts.metadata import NETWORK_FIELDS, build_metadata, git_commit, rule_key
from realcheck.model.data.datasets import Discovery, Sample, discover, summarize
from realcheck.model.data.imaging import HEAVY_COMPRESSION_QUALITY, condition_copy, model_conditions
from realcheck.model.data.pipeline import make_dataset
from realcheck.model.data.splitting import (
    SPLITS,
    load_manifest,
    save_manifest,
    split_by_source,
    split_samples,
)
from realcheck.model.errors import DataError, RealCheckError
from realcheck.model.evaluation import measures
from realcheck.model.evaluation.calibration import apply_platt, calibrate
from realcheck.model.networks import architecture
from realcheck.model.scoring.decision import DecisionRule
from realcheck.model.scoring.inference import keras_detector, score_paths
from realcheck.model.settings import HeadParams, TrainConfig
from realcheck.model.training import devices
from realcheck.model.training.phases import fit_phase, verbosity
from realcheck.model.training.probe import PROBE_HEAD, ScoredImages, fit_linear_probe

log = logging.getLogger("realcheck")


@dataclass
class PreparedData:
    discovery: Discovery
    split: dict[str, list[Sample]]

    @property
    def root(self) -> Path:
        return self.discovery.root

    def summary(self) -> dict:
        return self.discovery.summary() | {"splits": {name: summarize(s) for name, s in self.split.items()}}


@dataclass
class TrainResult:
    artifact_dir: Path | None  # None on a worker other than the chief: it writes no artifact
    metadata: dict
    history: dict = field(default_factory=dict)


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow (one call, before any model or dataset is built)."""
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)


def prepare_data(config: TrainConfig, run_dir: Path) -> PreparedData:
    """Find and verify images, split them (or reuse a manifest) and save split.csv and skipped.json."""
    log.info("scanning %s", config.data)
    discovery = discover(config.data)
    samples = discovery.samples
    if config.limit:
        samples = limit_per_class(samples, config.limit, config.seed)
    if config.split:
        split = load_manifest(config.split, available=samples)
    elif config.split_by == "source":
        split = split_by_source(samples, config.val_fraction, config.test_fraction, config.seed)
    else:
        split = split_samples(samples, config.val_fraction, config.test_fraction, config.seed)
    for name in SPLITS:
        labels = {s.label for s in split[name]}
        if name == "train" and len(labels) < 2:
            raise DataError(
                "the training split needs images of both classes: add images or lower --val/--test fractions"
            )
        if name == "val" and not split[name]:
            raise DataError("the validation split is empty: the threshold is chosen on it; add images")
    run_dir.mkdir(parents=True, exist_ok=True)
    save_manifest(split, run_dir / "split.csv")
    artifact.write_json(run_dir / "skipped.json", discovery.skipped)
    prepared = PreparedData(discovery, split)
    counts = ", ".join(f"{name} {len(split[name])}" for name in SPLITS)
    log.info(
        "%d images (%s), %d skipped; split: %s",
        len(samples),
        _class_counts(samples),
        len(discovery.skipped),
        counts,
    )
    return prepared


def limit_per_class(samples: list[Sample], limit: int, seed: int) -> list[Sample]:
    """At most `limit` images per class, taking whole groups in a seeded order (quick runs)."""
    groups: dict[str, list[Sample]] = {}
    for sample in samples:
        groups.setdefault(sample.group, []).append(sample)
    order = sorted(groups)
    random.Random(seed).shuffle(order)
    kept: list[Sample] = []
    counts = {0: 0, 1: 0}
    for group_id in order:
        members = groups[group_id]
        if all(counts[m.label] < limit for m in members):
            kept.extend(members)
            for member in members:
                counts[member.label] += 1
    return sorted(kept, key=lambda s: s.path)


def _class_counts(samples: list[Sample]) -> str:
    counts = summarize(samples)
    return f"{counts['real']} real, {counts['ai']} ai"


def preflight_weights(config: TrainConfig) -> None:
    """Fetch or check the backbone weights before the (possibly long) data scan, so a bad --weights fails fast."""
    if not config.from_scratch:
        architecture.build_backbone(config.backbone, config.training_size, config.weights)


def make_splits_datasets(config: TrainConfig, data: PreparedData):
    """(train, val) datasets: train augmented and shuffled, val plain; both cached."""
    spec = config.training_spec
    cache_train = config.cache if config.cache in {None, "memory"} else str(Path(config.cache) / "train")
    cache_val = config.cache if config.cache in {None, "memory"} else str(Path(config.cache) / "val")
    train = make_dataset(
        data.split["train"],
        data.root,
        spec,
        config.batch_size,
        training=True,
        augment=config.augment,
        cache=cache_train,
        seed=config.seed,
    )
    val = make_dataset(data.split["val"], data.root, spec, config.batch_size, training=False, cache=cache_val)
    return train, val


def train(config: TrainConfig) -> TrainResult:
    """The whole flow: data -> head (or from-scratch) training -> optional head search -> fine-tune -> artifact.

    With several workers every one runs this; only the chief writes `config.out` (the others train in a
    temporary folder and return no artifact folder).
    """
    if config.search and config.from_scratch:
        raise RealCheckError(
            "--search tunes a head on pretrained features: give --weights imagenet or a weights file"
        )
    strategy = devices.make_strategy(config.distribute)  # first: workers set up collectives before any op
    policy = devices.configure_precision(config.mixed_precision)
    log.info(
        "device: %s; precision %s; %d replica(s)",
        devices.device_description(),
        policy,
        strategy.num_replicas_in_sync,
    )
    if devices.is_chief(strategy):
        return train_on(strategy, policy, config)
    with tempfile.TemporaryDirectory(prefix="realcheck-worker-") as scratch:
        result = train_on(strategy, policy, replace(config, out=scratch))
    log.info("%s finished; the chief writes the artifact", devices.worker_name(strategy))
    return replace(result, artifact_dir=None)


def train_on(strategy: tf.distribute.Strategy, policy: str, config: TrainConfig) -> TrainResult:
    """`train` under a strategy and precision policy already chosen, writing to `config.out`."""
    run_dir, data = start_run(config, check_weights=True)
    # The adaptation recipe reads its own crops (realcheck.model.training.adaptation), not tf.data.
    own_loader = config.adapt_until or config.probe
    train_data, val_data = (None, None) if own_loader else make_splits_datasets(config, data)
    source_commit = git_commit()  # the code that trains, even if the tree moves during a long run
    started = time.perf_counter()
    with strategy.scope():
        model, head, history, out_of_source = train_network(config, data, run_dir, train_data, val_data)
    metadata = build_metadata(
        config.name or f"realcheck-{config.backbone}",
        config.version,
        backbone=config.backbone,
        weights="none" if config.from_scratch else ("imagenet" if config.weights == "imagenet" else "file"),
        head=head.to_dict(),
        input_size=config.inference_spec.size,
        input_mode=config.input_mode,
        input_fill=config.small_images,
        training_crop_size=config.training_size,
        input_filter=config.input_filter,
        seed=config.seed,
        precision=policy,
        device=devices.device_description(),
        replicas=strategy.num_replicas_in_sync,
        training_seconds=round(time.perf_counter() - started, 1),
        git_commit=source_commit,
    )
    if config.adapted_weights:  # trained elsewhere: the settings are that run's, not this one's
        metadata["adaptation"] = {"weights_file": config.adapted_weights}
    elif config.adapt_until:
        metadata["adaptation"] = adapt_settings(config).to_dict()
    if config.probe:
        metadata |= {"pooling": "stages", "probe": history["probe"]}
    return finish(model, metadata, config, data, history, run_dir, out_of_source)


def start_run(config: TrainConfig, check_weights: bool) -> tuple[Path, PreparedData]:
    """What every run does first: seed, (check the backbone weights,) scan and split the data, and save the
    split and the configuration in the run folder."""
    run_dir = Path(config.out)
    set_seed(config.seed)
    if check_weights:
        preflight_weights(config)
    data = prepare_data(config, run_dir)
    config.save(run_dir / "config.json")
    return run_dir, data


def train_network(
    config: TrainConfig, data: PreparedData, run_dir: Path, train_data, val_data
) -> tuple[keras.Model, HeadParams, dict[str, dict], ScoredImages | None]:
    """Build the network and train it as `config` says: its head (searched, fitted, the probe's or the
    adaptation recipe's), then fine-tuning. Returns the model, its head, the history of each phase and any
    training images scored out of source (the probe's, for its operating point)."""
    history: dict[str, dict] = {}
    head = config.head
    if config.probe:
        head = PROBE_HEAD
    if config.adapt_until:
        from realcheck.model.training.adaptation import ADAPT_HEAD

        head = ADAPT_HEAD  # the recipe's own head (it trains the backbone under it)
    if config.search:
        from realcheck.model.training.tuning import run_head_search

        search = run_head_search(config, data, run_dir / "tuning")
        head = search.params
    model = architecture.build_model(
        config.backbone,
        config.training_size,
        config.weights,
        head,
        train_backbone=config.from_scratch,
        input_mode=config.input_mode,
        input_filter=config.input_filter,
        pooling="stages" if config.probe else "average",
    )
    out_of_source = None
    if config.probe:
        history["probe"], out_of_source = fit_linear_probe(
            model, data.root, data.split, config.inference_spec, config.batch_size, config.seed
        )
    elif config.search:
        model.get_layer("head").set_weights(search.head_model.get_weights())
        history["search"] = {"best": search.summary}
    elif config.adapt_until:
        history.update(adapt_backbone(model, config, data))
    else:
        phase = "scratch" if config.from_scratch else "head"
        history[phase] = fit_phase(
            model, train_data, val_data, config.epochs, config.learning_rate, config.patience, phase
        )
    trains_top = not (config.from_scratch or config.adapt_until or config.probe)
    if config.finetune and config.finetune_epochs > 0 and trains_top:
        history["finetune"] = fine_tune(model, config, train_data, val_data)
    return model, head, history, out_of_source


def fine_tune(model: keras.Model, config: TrainConfig, train_data, val_data) -> dict:
    """The fine-tuning phase: the backbone's top (from `config.unfreeze_from`) trains at its learning rate."""
    count = architecture.unfreeze_top(model, config.backbone, config.unfreeze_from)
    log.info("fine-tuning the top %d backbone layers (BatchNorm frozen)", count)
    return fit_phase(
        model,
        train_data,
        val_data,
        config.finetune_epochs,
        config.finetune_learning_rate,
        config.patience,
        "finetune",
    )


def adapt_settings(config: TrainConfig):
    """The adaptation recipe's settings from the training configuration."""
    from realcheck.model.training.adaptation import AdaptSettings

    return AdaptSettings(
        crop=config.training_size,
        batch_size=config.batch_size,
        head_epochs=config.epochs,
        epochs=config.adapt_epochs,
        head_learning_rate=config.learning_rate,
        learning_rate=config.adapt_learning_rate,
        trainable_until=config.adapt_until,
        l2sp=config.l2sp,
    )


def adapt_backbone(model: keras.Model, config: TrainConfig, data: PreparedData) -> dict:
    """The adaptation recipe on the training split (validated on the validation split), or its weights
    trained elsewhere (`--adapted-weights`)."""
    from realcheck.model.training import adaptation

    if config.adapted_weights:
        with np.load(config.adapted_weights) as saved:
            adaptation.load_adapted_weights(model, dict(saved))
        log.info("adapted weights loaded from %s", config.adapted_weights)
        return {}
    pairs = {
        name: [(str(data.root / s.path), s.label) for s in data.split[name]] for name in ("train", "val")
    }
    history = adaptation.adapt_on_files(
        model, pairs["train"], pairs["val"], adapt_settings(config), config.seed, verbose=verbosity()
    )
    return {"head": history.get("head", {}), "finetune": history["adapt"]}


def finish(
    model,
    metadata: dict,
    config: TrainConfig,
    data: PreparedData,
    history: dict,
    run_dir: Path,
    out_of_source: dict[str, ScoredImages] | None = None,
) -> TrainResult:
    """Calibration, threshold and band on validation (and on `out_of_source`, training images scored by
    models that did not see their source), a rule per image condition likewise on copies meeting it, metrics
    and plots on test, then write the artifact."""
    out_of_source = out_of_source or {}
    metadata = metadata | {"threshold": 0.5, "uncertainty_band": [0.5, 0.5]}
    model = architecture.with_calibration(model)  # fine-tuning an artifact: fit its calibration anew
    val = data.split["val"]
    val_labels = np.array([s.label for s in val])
    raw_val_scores = score_paths(
        keras_detector(model, metadata), [data.root / s.path for s in val], config.batch_size
    )
    val_sources = np.array([s.source for s in val])
    fit_on = ScoredImages(val_labels, raw_val_scores, val_sources).joined(out_of_source.get("clean"))
    model, fit_scores, calibration = calibrate(model, fit_on.labels, fit_on.scores)
    if "clean" in out_of_source:
        calibration["fitted_on"] = "val + out-of-source training"
    val_scores = fit_scores[: len(val)]
    rule = choose_rule(config, fit_on.labels, fit_scores, list(fit_on.sources))
    metadata = metadata | rule.to_dict() | {"calibration": calibration}
    for condition in model_conditions(config.inference_spec):
        metadata[rule_key(condition)] = condition_rule(
            config, condition, model, metadata, data, out_of_source.get(condition)
        )
    detector = keras_detector(model, metadata)
    metrics = {"val": _strip(measures.compute_metrics(val_labels, val_scores, rule))}
    plots_dir = run_dir / "plots"
    test = data.split["test"]
    if test:
        test_labels = np.array([s.label for s in test])
        predictions = detector.predict([data.root / s.path for s in test], batch_size=config.batch_size)
        test_scores = np.array([p.score for p in predictions])
        test_metrics = measures.compute_metrics(
            test_labels,
            test_scores,
            detector.rules,
            [s.source for s in test],
            [p.image_rule for p in predictions],
        )
        measures.save_plots(test_labels, test_scores, test_metrics, plots_dir, title="test")
        metrics["test"] = _strip(test_metrics)
        artifact.write_json(run_dir / "evaluation.json", test_metrics)
        log.info("test split:\n%s", measures.format_report(test_metrics))
    merged = merge_histories(history)
    if merged.get("loss"):
        plots_dir.mkdir(parents=True, exist_ok=True)
        measures.save_history_plot(merged, plots_dir / "training_history.png")
    artifact.write_json(run_dir / "history.json", history)
    metadata = metadata | {
        "parameters": int(model.count_params()),
        "training_data": data.summary(),
        "metrics": metrics,
        "epoch_seconds": _mean_epoch_seconds(history),
    }
    artifact.save_artifact(run_dir, model, metadata)
    return TrainResult(run_dir, metadata, history)


def condition_rule(
    config: TrainConfig,
    condition: str,
    model: keras.Model,
    metadata: dict,
    data: PreparedData,
    out_of_source: ScoredImages | None,
) -> dict:
    """The decision rule for images meeting `condition` (metadata `<condition>_rule`): chosen as the main
    one is, on copies of the validation images that meet it (`condition_copy`) and on such copies of the
    training images scored out of source (raw scores, calibrated the same way)."""
    copy = condition_copy(condition, config.inference_spec.size)
    val = data.split["val"]
    scores = score_paths(
        keras_detector(model, metadata), [copy.apply(data.root / s.path) for s in val], config.batch_size
    )
    fit_on = ScoredImages(np.array([s.label for s in val]), scores, np.array([s.source for s in val]))
    if out_of_source is not None:
        calibration = metadata["calibration"]
        calibrated = apply_platt(out_of_source.scores, calibration["scale"], calibration["bias"])
        fit_on = fit_on.joined(ScoredImages(out_of_source.labels, calibrated, out_of_source.sources))
    rule = choose_rule(config, fit_on.labels, fit_on.scores, list(fit_on.sources))
    applies_to = {  # the images as the copies are: as small, or as compressed
        "small_image": f"images of {copy.max_side} px or less on their shorter side",
        "compressed_image": f"JPEG files saved at quality {HEAVY_COMPRESSION_QUALITY} or less",
    }[condition]
    return rule.to_dict() | {
        "applies_to": applies_to,
        "fitted_on": f"copies of at most {copy.max_side} px on their longer side saved as JPEG q{copy.quality}"
        + (
            " of the validation images and of the training images scored out of source"
            if out_of_source
            else " of the validation images"
        ),
    }


def choose_rule(
    config: TrainConfig, labels: np.ndarray, scores: np.ndarray, sources: list[str]
) -> DecisionRule:
    """The threshold and band, chosen on validation scores as `config.operating_point` says."""
    if config.operating_point in ("per-source", "new-source"):
        from realcheck.model.evaluation.protocol import MAX_REAL_CALLED_AI, choose_operating_point

        limit = MAX_REAL_CALLED_AI if config.max_real_called_ai is None else config.max_real_called_ai
        return choose_operating_point(
            labels, scores, np.array(sources), max_real_called_ai=limit, rule=config.operating_point
        )
    threshold = measures.choose_threshold(labels, scores)
    band = measures.choose_band(
        labels,
        scores,
        threshold,
        max_uncertain=config.max_uncertain,
        max_real_called_ai=config.max_real_called_ai,
    )
    return DecisionRule(threshold, band)


def _strip(metrics: dict) -> dict:
    """Metrics for metadata.json: the headline numbers without the bulky report and curve."""
    return {k: v for k, v in metrics.items() if k not in {"classification_report", "reliability"}}


def merge_histories(history: dict[str, dict]) -> dict[str, list[float]]:
    """Phases joined end to end, for one training-curve plot."""
    merged: dict[str, list[float]] = {}
    for phase in ("scratch", "head", "finetune"):
        for key, values in history.get(phase, {}).items():
            merged.setdefault(key, []).extend(values)
    return merged


def _mean_epoch_seconds(history: dict[str, dict]) -> dict[str, float]:
    return {
        phase: round(float(np.mean(h["epoch_seconds"])), 2)
        for phase, h in history.items()
        if isinstance(h, dict) and h.get("epoch_seconds")
    }


def finetune(model_dir: str | Path, config: TrainConfig) -> TrainResult:
    """Fine-tune an existing artifact: unfreeze the top of its backbone and train at a low learning rate.

    The network settings (backbone, sizes, input mode and filter, head) are the artifact's, whatever `config`
    says (`realcheck finetune` refuses those flags). Reuses the artifact's split when `config` names none,
    so no test image leaks into fine-tuning.
    """
    model, previous = artifact.load_artifact(model_dir)
    model_dir = Path(model_dir)
    input_mode = previous["input_mode"]
    config = replace(
        config,
        backbone=previous["backbone"],
        training_size=int(previous.get("training_crop_size", previous["input_size"])),
        input_mode=input_mode,
        input_size=int(previous["input_size"]) if input_mode == "crop" else None,
        small_images=previous["input_fill"],
        input_filter=previous["input_filter"],
        head=HeadParams.from_dict(previous.get("head", {})),
    )
    if config.split is None and (model_dir / "split.csv").is_file():
        config = replace(config, split=str(model_dir / "split.csv"))
    run_dir, data = start_run(config, check_weights=False)
    train_data, val_data = make_splits_datasets(config, data)
    log.info("fine-tuning %s", model_dir)
    started = time.perf_counter()
    history = {"finetune": fine_tune(model, config, train_data, val_data)}
    metadata = build_metadata(
        config.name or previous["name"],
        config.version,
        **{key: previous[key] for key in NETWORK_FIELDS if key in previous},
        seed=config.seed,
        fine_tuned_from={"name": previous["name"], "version": previous["version"], "path": str(model_dir)},
        device=devices.device_description(),
        training_seconds=round(time.perf_counter() - started, 1),
    )
    return finish(model, metadata, config, data, history, run_dir)


def summary_text(result: TrainResult) -> str:
    """The short end-of-run summary: where the artifact is and its key numbers."""
    metrics = result.metadata.get("metrics", {})
    test = metrics.get("test") or metrics.get("val") or {}
    which = "test" if metrics.get("test") else "val"

    def fmt(value):
        return "n/a" if value is None else f"{value:.4f}"

    return (
        f"artifact: {result.artifact_dir or 'written by the chief worker'}\n"
        f"{result.metadata['name']} {result.metadata['version']}  threshold {result.metadata['threshold']:.4f}  "
        f"uncertain band {result.metadata['uncertainty_band']}\n"
        f"{which}: accuracy {fmt(test.get('accuracy'))}  balanced accuracy {fmt(test.get('balanced_accuracy'))}  "
        f"ROC AUC {fmt(test.get('roc_auc'))}  F1 {fmt(test.get('f1'))}  (n={test.get('n')})\n"
        f"seconds per epoch: {json.dumps(result.metadata.get('epoch_seconds', {}))}"
    )
