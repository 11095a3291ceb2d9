"""The linear probe: a logistic regression on the frozen backbone's pooled stages (`--probe`).

No backbone training, so it reproduces on any CPU in minutes. Its L2 strength is chosen by ROC AUC on the
validation sources, and the training images are scored out of source (whole sources held out, as validation
holds them), so the operating point sees every real source of the training data, not only the few that
validation holds. Each source weighs the same within its class, so the hundreds of photos of one game or
gallery do not set the boundary for all (on the cross-collection protocol: ROC AUC 0.790 -> 0.800 one way,
balanced accuracy 0.770 -> 0.794 the other; docs/model.md).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import astuple, dataclass
from pathlib import Path

import keras
import numpy as np

from realcheck.model.data.datasets import Sample
from realcheck.model.data.imaging import WebDegradation, condition_copy, load_model_input, model_conditions
from realcheck.model.evaluation.protocol import (
    OUT_OF_SOURCE_FOLDS,
    PROBE_STRENGTHS,
    fit_probe,
    out_of_source_scores,
    probe_fitter,
)
from realcheck.model.networks.architecture import feature_extractor
from realcheck.model.settings import HeadParams, InputSpec

log = logging.getLogger("realcheck")

PROBE_HEAD = HeadParams(units=0)  # one Dense layer: the logistic regression, standardisation folded in


@dataclass(frozen=True)
class ScoredImages:
    """Raw (uncalibrated) scores of labelled images and their sources."""

    labels: np.ndarray
    scores: np.ndarray
    sources: np.ndarray

    def joined(self, other: ScoredImages | None) -> ScoredImages:
        """These images followed by `other`'s (these alone when there are none)."""
        if other is None:
            return self
        return ScoredImages(*(np.concatenate(pair) for pair in zip(astuple(self), astuple(other))))


def embed(
    model: keras.Model,
    root: Path,
    samples: list[Sample],
    spec: InputSpec,
    batch_size: int,
    copy: WebDegradation | None = None,
) -> np.ndarray:
    """The pooled features (the head's input) of each sample's model input (of its `copy`, if given)."""
    features = feature_extractor(model)

    def model_input(sample: Sample) -> np.ndarray:
        path = root / sample.path
        return load_model_input(copy.apply(path) if copy else path, spec)

    chunks = []
    with ThreadPoolExecutor(2) as pool:
        for start in range(0, len(samples), batch_size):
            batch = samples[start : start + batch_size]
            pixels = np.stack(list(pool.map(model_input, batch)))
            chunks.append(np.asarray(features.predict_on_batch(pixels.astype(np.float32))))
    return np.concatenate(chunks)


def set_linear_head(model: keras.Model, pipeline) -> None:
    """Write a fitted StandardScaler + LogisticRegression into the model's linear head (one Dense layer), so
    every runtime exported from the model gives the probe's probabilities."""
    scaler, regression = pipeline[0], pipeline[-1]
    weights = regression.coef_[0] / scaler.scale_
    bias = regression.intercept_[0] - float(np.dot(weights, scaler.mean_))
    model.get_layer("head").get_layer("score").set_weights(
        [weights[:, None].astype(np.float32), np.array([bias], dtype=np.float32)]
    )


def fit_linear_probe(
    model: keras.Model,
    root: Path,
    split: dict[str, list[Sample]],
    spec: InputSpec,
    batch_size: int,
    seed: int,
) -> tuple[dict, dict[str, ScoredImages] | None]:
    """Fit the probe into `model`'s head; returns its record (strength, validation AUCs) and the training
    images scored out of source: `clean`, and for each image condition the model can meet
    (`model_conditions`) their copies that meet it (`condition_copy`). None when a class has a single
    training source."""
    train, val = split["train"], split["val"]
    x = embed(model, root, train, spec, batch_size)
    labels = np.array([s.label for s in train])
    sources = np.array([s.source for s in train])
    val_labels = np.array([s.label for s in val])
    strengths, held_out = (PROBE_STRENGTHS[2],), None
    if len(set(val_labels.tolist())) == 2:
        strengths, held_out = PROBE_STRENGTHS, (embed(model, root, val, spec, batch_size), val_labels)
    else:
        log.info("validation lacks a class: the probe's strength is %s, not chosen", strengths[0])
    pipeline, c, val_auc = fit_probe((x, labels), held_out, strengths, sources)
    set_linear_head(model, pipeline)
    log.info("probe: C %s chosen (validation ROC AUC %s)", c, {k: round(v, 3) for k, v in val_auc.items()})
    record = {"c": c, "validation_auc": val_auc, "features": int(x.shape[1]), "source_balanced": True}

    copies = {"clean": x} | {
        condition: embed(model, root, train, spec, batch_size, condition_copy(condition, spec.size))
        for condition in model_conditions(spec)
    }
    fit = probe_fitter(c, True)
    scores = out_of_source_scores(
        fit, x, labels, sources, OUT_OF_SOURCE_FOLDS, seed, list(copies.values())[1:]
    )
    if scores is None:
        log.info("a class has one training source: no training image can be scored out of source")
        return record, None
    record["scored_out_of_source"] = len(labels)
    return record, {name: ScoredImages(labels, row, sources) for name, row in zip(copies, scores)}
