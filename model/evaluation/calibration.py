"""Calibration: Platt scaling fitted on validation scores, applied in the graph by the network's Calibration
layer (realcheck.model.networks.architecture), with the record of how much it helped. Keras is imported only
by `calibrate`: the cross-collection protocol fits and applies Platt scaling on scores alone."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from realcheck.model.evaluation import measures
from realcheck.model.evaluation.measures import logit

if TYPE_CHECKING:
    import keras

log = logging.getLogger("realcheck")


def calibrate(model, labels: np.ndarray, raw_scores: np.ndarray) -> tuple[keras.Model, np.ndarray, dict]:
    """Platt scaling fitted on (validation) scores: the calibrated model, its scores and the record of it."""
    scale, bias = fit_platt(labels, raw_scores)
    scores = apply_platt(raw_scores, scale, bias)
    record = {
        "method": "platt",
        "scale": scale,
        "bias": bias,
        "fitted_on": "val",
        "val_ece_before": measures.expected_calibration_error(labels, raw_scores),
        "val_ece_after": measures.expected_calibration_error(labels, scores),
        # What Platt scaling minimises (ECE, binned, can move either way by a little).
        "val_log_loss_before": measures.log_loss(labels, raw_scores),
        "val_log_loss_after": measures.log_loss(labels, scores),
    }
    log.info(
        "calibration on validation: scale %.3f bias %.3f, ECE %.4f -> %.4f",
        scale,
        bias,
        record["val_ece_before"],
        record["val_ece_after"],
    )
    from realcheck.model.networks import architecture  # Keras: only when there is a model to calibrate

    return architecture.with_calibration(model, scale, bias), scores, record


def fit_platt(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(scale, bias) of Platt scaling: sigmoid(scale * logit(score) + bias) fitted by log loss.

    Identity (1, 0) when the data cannot fit it: one class only, or a fitted scale that is not positive. A
    scale <= 0 (validation scores that rank no better than chance) would flatten every score to one value
    or reverse the ranking; the model's own scores are kept instead, and the metrics say how weak they are.
    """
    labels, scores = np.asarray(labels, dtype=int), np.asarray(scores, dtype=np.float64)
    if len(np.unique(labels)) < 2:
        return 1.0, 0.0
    from sklearn.linear_model import LogisticRegression

    fit = LogisticRegression(C=1e4, max_iter=1000).fit(logit(scores)[:, None], labels)
    scale, bias = float(fit.coef_[0, 0]), float(fit.intercept_[0])
    if not scale > 0:
        return 1.0, 0.0
    return scale, bias


def apply_platt(scores: np.ndarray, scale: float, bias: float) -> np.ndarray:
    """Scores calibrated as the model's Calibration layer does."""
    return 1.0 / (1.0 + np.exp(-(scale * logit(np.asarray(scores, dtype=np.float64)) + bias)))
