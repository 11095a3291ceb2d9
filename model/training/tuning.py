"""Keras Tuner search over the head, on backbone features computed once.

The backbone is frozen during the search, so its pooled features are the same for every trial and epoch:
they are computed once (and kept in the tuning folder for resumed searches) and each trial trains only the
head built by `architecture.build_head`, the same code the full model uses.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import keras
import keras_tuner as kt
import numpy as np

from realcheck.model.data.pipeline import make_dataset
from realcheck.model.networks import architecture
from realcheck.model.settings import HeadParams, TrainConfig
from realcheck.model.training.phases import compile_for_training

log = logging.getLogger("realcheck")


@dataclass
class SearchResult:
    params: HeadParams
    learning_rate: float
    head_model: keras.Model
    summary: dict


class HeadHyperModel(kt.HyperModel):
    """Search space of the head: width, dropout, depth, L2 and learning rate, each trial trained the way the
    head phase trains (AdamW, cosine decay over the trial's `steps`)."""

    def __init__(self, feature_dim: int, steps: int):
        super().__init__(name="realcheck_head")
        self.feature_dim = feature_dim
        self.steps = steps

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        params = params_from_hp(hp)
        model = architecture.build_head(self.feature_dim, params)
        compile_for_training(model, hp.Float("learning_rate", 1e-4, 1e-2, sampling="log"), self.steps)
        return model


def params_from_hp(hp: kt.HyperParameters) -> HeadParams:
    return HeadParams(
        units=hp.Choice("units", [64, 128, 256, 512]),
        dropout=hp.Float("dropout", 0.0, 0.5, step=0.1),
        extra_layer=hp.Boolean("extra_layer"),
        l2=hp.Choice("l2", [0.0, 1e-5, 1e-4, 1e-3]),
    )


def compute_features(backbone_model: keras.Model, samples, root, config: TrainConfig) -> np.ndarray:
    """Pooled backbone features of un-augmented images (the head's input), in sample order."""
    extractor = architecture.feature_extractor(backbone_model)
    dataset = make_dataset(samples, root, config.training_spec, config.batch_size, training=False, cache=None)
    images = dataset.map(lambda image, label: image)
    return np.asarray(extractor.predict(images, verbose=0), dtype=np.float32)


def _feature_key(config: TrainConfig, samples) -> str:
    identity = [
        config.backbone,
        str(config.weights),
        config.training_size,
        config.input_mode,
        config.input_filter,
        [s.path for s in samples],
    ]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]


def cached_features(config: TrainConfig, data, directory: Path) -> dict[str, np.ndarray]:
    """Train and val features, computed once and reused by resumed searches over the same data."""
    samples = data.split["train"] + data.split["val"]
    path = directory / f"features-{_feature_key(config, samples)}.npz"
    if path.is_file():
        log.info("reusing backbone features from %s", path)
        return dict(np.load(path))
    model = architecture.build_model(
        config.backbone,
        config.training_size,
        config.weights,
        input_mode=config.input_mode,
        input_filter=config.input_filter,
    )
    log.info("computing backbone features of %d images once for every trial", len(samples))
    arrays = {}
    for name in ("train", "val"):
        arrays[f"{name}_x"] = compute_features(model, data.split[name], data.root, config)
        arrays[f"{name}_y"] = np.array([s.label for s in data.split[name]], dtype=np.float32)
    directory.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return arrays


def run_head_search(config: TrainConfig, data, directory: Path, overwrite: bool = False) -> SearchResult:
    """RandomSearch over the head; resumes an interrupted search in `directory` unless `overwrite`."""
    if config.from_scratch:
        log.warning(
            "searching heads over an untrained backbone's features: results say little about a pretrained one"
        )
    features = cached_features(config, data, directory)
    steps = config.search_epochs * math.ceil(len(features["train_x"]) / config.batch_size)
    tuner = kt.RandomSearch(
        HeadHyperModel(features["train_x"].shape[1], steps),
        objective="val_loss",
        max_trials=config.search_trials,
        seed=config.seed,
        directory=str(directory),
        project_name="head_search",
        overwrite=overwrite,
    )
    stop = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=max(2, config.patience), restore_best_weights=True
    )
    tuner.search(
        features["train_x"],
        features["train_y"],
        validation_data=(features["val_x"], features["val_y"]),
        epochs=config.search_epochs,
        batch_size=config.batch_size,
        callbacks=[stop],
        verbose=0,
    )
    best_hp = tuner.get_best_hyperparameters(1)[0]
    best_trial = tuner.oracle.get_best_trials(1)[0]
    params = params_from_hp(best_hp)
    summary = {
        "params": params.to_dict(),
        "learning_rate": float(best_hp.get("learning_rate")),
        "val_loss": float(best_trial.score),
        "trials": len(tuner.oracle.trials),
    }
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "best_hyperparameters.json").write_text(
        json.dumps(summary, indent=2) + "\n", encoding="utf-8"
    )
    log.info("best head: %s (val loss %.4f over %d trials)", params, summary["val_loss"], summary["trials"])
    with warnings.catch_warnings():
        # The best trial's checkpoint carries optimizer state a reloaded head has no use for.
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        best_model = tuner.get_best_models(1)[0]
    return SearchResult(params, summary["learning_rate"], best_model, summary)
