"""Threshold, uncertainty band, calibration, metrics against hand-computed numbers, and plots."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from realcheck.model.evaluation.calibration import apply_platt, fit_platt
from realcheck.model.evaluation.measures import (
    choose_band,
    choose_threshold,
    compute_metrics,
    expected_calibration_error,
    format_report,
    save_plots,
)
from realcheck.model.labels import UNCERTAIN
from realcheck.model.scoring.decision import DecisionRule, RuleSet, verdict_for_score


def noisy_model(seed=0, n=2000, separation=2.0, noise=1.5):
    """Labels and P(AI) scores of a decent but imperfect model (about 91 % accurate)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    logits = (labels * 2 - 1) * separation + rng.normal(0, noise, n)
    return labels, 1 / (1 + np.exp(-logits))


def inside_band(scores, band):
    low, high = band
    return (scores >= low) & (scores <= high) if high > low else np.zeros(len(scores), dtype=bool)


# ------------------------------------------------------------------------------------------- threshold


def test_threshold_separates_separable_classes_away_from_half():
    labels = np.array([0, 0, 0, 1, 1, 1])
    scores = np.array([0.6, 0.65, 0.7, 0.8, 0.85, 0.9])  # 0.5 would call everything ai
    threshold = choose_threshold(labels, scores)
    assert 0.7 < threshold <= 0.8
    assert np.array_equal(scores >= threshold, labels == 1)


def test_threshold_prefers_half_when_it_separates_too():
    labels = np.array([0, 0, 0, 1, 1, 1])
    assert choose_threshold(labels, np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])) == 0.5


def test_threshold_maximises_balanced_accuracy_not_accuracy():
    # 90 real (85 at 0.4, 5 at 0.65) and 10 ai (4 at 0.6, 6 at 0.95). Plain accuracy peaks at 0.95
    # (96 %) by giving up on 4 of 10 ai images; balanced accuracy peaks between 0.4 and 0.6.
    labels = np.array([0] * 90 + [1] * 10)
    scores = np.array([0.4] * 85 + [0.65] * 5 + [0.6] * 4 + [0.95] * 6)
    threshold = choose_threshold(labels, scores)
    assert 0.4 < threshold <= 0.6
    assert np.mean((scores >= threshold) == labels) < np.mean((scores >= 0.95) == labels)


@pytest.mark.parametrize("label", [0, 1])
def test_threshold_of_a_single_class_is_half(label):
    assert choose_threshold(np.full(5, label), np.linspace(0.1, 0.9, 5)) == 0.5


# ------------------------------------------------------------------------------------------- band


def test_perfect_model_gets_an_empty_band():
    labels = np.array([0, 0, 0, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.45, 0.55, 0.8, 0.9])
    band = choose_band(labels, scores, threshold=0.5)
    assert band == (0.5, 0.5)
    assert all(verdict_for_score(s, 0.5, band) != UNCERTAIN for s in scores)


@pytest.mark.parametrize("seed", range(4))
def test_noisy_model_band_reaches_the_target_with_the_fewest_uncertain(seed):
    labels, scores = noisy_model(seed)
    threshold = choose_threshold(labels, scores)
    band = choose_band(labels, scores, threshold, target_accuracy=0.95, max_uncertain=0.2)
    low, high = band
    assert low < threshold < high
    inside = inside_band(scores, band)
    predicted = (scores >= threshold).astype(int)
    assert (predicted == labels).mean() < 0.95  # the band is needed
    assert 0 < inside.mean() <= 0.2
    assert (predicted[~inside] == labels[~inside]).mean() >= 0.95
    # Narrowest: leaving out the score nearest the band edge misses the target.
    distance = np.abs(scores - threshold)
    edge = np.argmax(np.where(inside, distance, -1))
    narrower = inside.copy()
    narrower[edge] = False
    assert (predicted[~narrower] == labels[~narrower]).mean() < 0.95


def test_band_of_a_useless_model_stops_at_max_uncertain():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 1000)
    scores = rng.uniform(0, 1, 1000)
    band = choose_band(labels, scores, threshold=0.5, target_accuracy=0.95, max_uncertain=0.2)
    assert inside_band(scores, band).sum() == 200
    assert choose_band(labels, scores, 0.5, max_uncertain=0.05) != band
    assert inside_band(scores, choose_band(labels, scores, 0.5, max_uncertain=0.05)).sum() == 50


def test_band_stays_within_zero_and_one():
    labels = np.array([1, 0, 1, 0, 1, 0, 1, 1, 1, 1])
    scores = np.array([0.95, 0.96, 0.97, 0.98, 0.99, 0.1, 0.2, 0.3, 0.4, 0.5])
    low, high = choose_band(labels, scores, threshold=0.95, max_uncertain=0.5)
    assert 0.0 <= low <= 0.95 <= high <= 1.0


def test_band_of_no_data_is_the_threshold():
    assert choose_band(np.array([]), np.array([]), 0.4) == (0.4, 0.4)


# ------------------------------------------------------------------------------------------- verdicts


def test_verdict_for_score():
    band = (0.4, 0.6)
    assert verdict_for_score(0.5, 0.5, band) == "uncertain"
    assert verdict_for_score(0.4, 0.5, band) == "uncertain"  # band edges are inclusive
    assert verdict_for_score(0.6, 0.5, band) == "uncertain"
    assert verdict_for_score(0.39, 0.5, band) == "real"
    assert verdict_for_score(0.61, 0.5, band) == "ai"
    # An empty band never says uncertain; the threshold itself counts as ai.
    assert verdict_for_score(0.5, 0.5, (0.5, 0.5)) == "ai"
    assert verdict_for_score(0.4999, 0.5, (0.5, 0.5)) == "real"
    assert verdict_for_score(0.7, 0.7, (0.7, 0.7)) == "ai"
    assert verdict_for_score(0.69, 0.7, (0.7, 0.7)) == "real"


# ------------------------------------------------------------------------------------------- calibration


def test_ece_of_a_calibrated_model_is_small():
    rng = np.random.default_rng(0)
    scores = rng.uniform(0, 1, 20000)
    labels = (rng.uniform(0, 1, 20000) < scores).astype(int)
    assert expected_calibration_error(labels, scores) < 0.03


def test_ece_of_an_overconfident_model_is_large():
    # Says 2 % or 98 % but is right only 70 % of the time: ECE about 0.28.
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 5000)
    right = rng.uniform(0, 1, 5000) < 0.7
    predicted = np.where(right, labels, 1 - labels)
    scores = np.where(predicted == 1, 0.98, 0.02)
    assert 0.25 < expected_calibration_error(labels, scores) < 0.31


def test_ece_by_hand_and_of_nothing():
    # Each score lands in its own bin: ECE = mean |score - label|.
    labels = np.array([0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.3, 0.7, 0.6, 0.9])
    assert expected_calibration_error(labels, scores) == pytest.approx((0.1 + 0.3 + 0.7 + 0.4 + 0.1) / 5)
    assert expected_calibration_error(np.array([]), np.array([])) == 0.0


# ------------------------------------------------------------------------------------------- metrics


LABELS = np.array([0, 0, 0, 1, 1])
SCORES = np.array([0.1, 0.3, 0.7, 0.6, 0.9])
GENERATORS = ["a", "a", "b", "b", "b"]


def test_compute_metrics_matches_hand_computed_numbers():
    # Predicted at 0.5: [0, 0, 1, 1, 1] -> TN 2, FP 1, FN 0, TP 2.
    result = compute_metrics(LABELS, SCORES, DecisionRule(0.5, (0.5, 0.5)), GENERATORS)
    required = {"accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "average_precision"}
    assert required | {"n", "confusion_matrix", "ece", "per_generator"} <= set(result)
    assert result["n"] == 5 and result["n_real"] == 3 and result["n_ai"] == 2
    assert result["confusion_matrix"] == [[2, 1], [0, 2]]  # rows true real/ai, columns predicted real/ai
    assert result["accuracy"] == pytest.approx(4 / 5)
    assert result["balanced_accuracy"] == pytest.approx((2 / 3 + 1) / 2)
    assert result["precision"] == pytest.approx(2 / 3)
    assert result["recall"] == pytest.approx(1.0)
    assert result["f1"] == pytest.approx(0.8)
    assert result["roc_auc"] == pytest.approx(5 / 6)  # 5 of 6 (ai, real) pairs ranked right
    assert result["average_precision"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert result["ece"] == pytest.approx(0.32)
    assert result["uncertain_fraction"] == 0.0
    assert result["confident_accuracy"] == pytest.approx(4 / 5)


def test_per_generator_metrics_by_hand():
    result = compute_metrics(LABELS, SCORES, DecisionRule(0.5, (0.5, 0.5)), GENERATORS)
    a, b = result["per_generator"]["a"], result["per_generator"]["b"]
    assert (a["n"], a["n_real"], a["n_ai"], a["accuracy"]) == (2, 2, 0, 1.0)
    assert a["ai_recall"] is None and "roc_auc" not in a  # one class only: no AUC
    assert (b["n"], b["n_real"], b["n_ai"]) == (3, 1, 2)
    assert b["accuracy"] == pytest.approx(2 / 3)
    assert b["ai_recall"] == 1.0 and b["real_recall"] == 0.0
    assert b["roc_auc"] == pytest.approx(0.5)  # ai 0.6 < real 0.7 < ai 0.9


def test_compute_metrics_without_generators_has_no_breakdown():
    assert "per_generator" not in compute_metrics(LABELS, SCORES, DecisionRule())


def test_uncertainty_band_in_metrics():
    result = compute_metrics(LABELS, SCORES, DecisionRule(0.5, (0.55, 0.75)))
    assert result["uncertain_fraction"] == pytest.approx(2 / 5)  # 0.6 and 0.7
    assert result["confident_accuracy"] == 1.0
    assert result["uncertainty_band"] == [0.55, 0.75]
    assert result["accuracy"] == pytest.approx(4 / 5)  # the headline still counts every image


def test_threshold_moves_the_predictions():
    result = compute_metrics(LABELS, SCORES, DecisionRule(0.8, (0.8, 0.8)))
    assert result["confusion_matrix"] == [[3, 0], [1, 1]]
    assert result["precision"] == 1.0 and result["recall"] == 0.5


def test_each_image_is_measured_at_the_rule_for_its_condition():
    conditions = [None, None, "compressed_image", "small_image", "small_image"]
    rule, small_rule = DecisionRule(0.8, (0.8, 0.8)), DecisionRule(0.55, (0.3, 0.95))
    rules = RuleSet(rule, {"small_image": small_rule})  # no rule for compressed images: the main one
    result = compute_metrics(LABELS, SCORES, rules, GENERATORS, conditions)
    assert compute_metrics(LABELS, SCORES, rule)["confusion_matrix"] == [[3, 0], [1, 1]]
    assert result["confusion_matrix"] == [[3, 0], [0, 2]]  # 0.6, small, is over the small-image threshold
    # 0.6 and 0.9 are in its band; 0.7 is not small
    assert result["uncertain_fraction"] == pytest.approx(2 / 5)
    assert result["small_image_rule"] == small_rule.to_dict() | {"images": 2}
    assert "compressed_image_rule" not in result
    assert "small_image_rule" not in compute_metrics(LABELS, SCORES, rule, GENERATORS, conditions)


def test_metrics_of_a_single_class_have_no_auc():
    result = compute_metrics(np.zeros(4, dtype=int), np.array([0.1, 0.2, 0.6, 0.3]), DecisionRule())
    assert result["roc_auc"] is None and result["average_precision"] is None
    assert result["confusion_matrix"] == [[3, 1], [0, 0]]
    assert result["accuracy"] == pytest.approx(0.75)
    assert "real photographs called AI (false-positive rate): 1/4 = 25.0%" in format_report(result)


def test_format_report_names_the_headline_numbers():
    report = format_report(compute_metrics(LABELS, SCORES, DecisionRule(), GENERATORS))
    assert "accuracy 0.8000" in report and "ROC AUC 0.8333" in report
    assert "  real       2      1" in report and "  ai         0      2" in report
    assert "b: n=3" in report


def test_decision_rule_to_dict():
    assert DecisionRule(0.4, (0.3, 0.5)).to_dict() == {"threshold": 0.4, "uncertainty_band": [0.3, 0.5]}


# ------------------------------------------------------------------------------------------- plots


def test_save_plots_writes_pngs_pillow_can_open(tmp_path):
    labels, scores = noisy_model(n=200)
    result = compute_metrics(labels, scores, DecisionRule())
    names = save_plots(labels, scores, result, tmp_path / "plots", title="test")
    assert names == ["confusion_matrix.png", "roc.png", "precision_recall.png", "reliability.png"]
    for name in names:
        with Image.open(tmp_path / "plots" / name) as image:
            assert image.format == "PNG"
            image.load()
            assert image.width > 100 and image.height > 100


def test_save_plots_with_one_class_skips_roc_and_precision_recall(tmp_path):
    labels = np.ones(10, dtype=int)
    scores = np.linspace(0.05, 0.95, 10)
    names = save_plots(labels, scores, compute_metrics(labels, scores, DecisionRule()), tmp_path)
    assert names == ["confusion_matrix.png", "reliability.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)


# ----------------------------------------------------------------------------- calibration and the real side


def overconfident_model(seed=0, n=3000):
    """A model whose scores are far more extreme than its accuracy warrants (logits 6x too large)."""
    labels, scores = noisy_model(seed, n)
    logits = np.log(scores / (1 - scores)) * 6 + 0.8
    return labels, 1 / (1 + np.exp(-logits))


@pytest.mark.parametrize("seed", range(3))
def test_platt_scaling_repairs_an_overconfident_model(seed):
    labels, scores = overconfident_model(seed)
    scale, bias = fit_platt(labels, scores)
    # The true posterior logit of noisy_model is 1.78x its logit, so 6x is 3.4x overconfident: 1/3.4.
    assert 0.2 < scale < 0.4
    calibrated = apply_platt(scores, scale, bias)
    assert expected_calibration_error(labels, scores) > 0.05
    assert expected_calibration_error(labels, calibrated) < 0.03
    # Monotonic: calibration never reorders images.
    order = np.argsort(scores)
    assert np.all(np.diff(calibrated[order]) >= -1e-12)


def test_platt_scaling_of_one_class_is_the_identity():
    assert fit_platt(np.ones(10), np.linspace(0.1, 0.9, 10)) == (1.0, 0.0)
    np.testing.assert_allclose(apply_platt(np.array([0.2, 0.7]), 1.0, 0.0), [0.2, 0.7])


@pytest.mark.parametrize("case", ["reversed", "flat"])
def test_platt_scaling_never_flattens_or_reverses_the_ranking(case):
    labels = np.array([0, 1] * 20)
    if case == "reversed":  # a model that ranks backwards on validation
        scores = np.where(labels == 1, 0.3, 0.7) + np.linspace(0, 0.01, 40)
    else:  # one score for everything (a collapsed model)
        scores = np.full(40, 0.5)
    assert fit_platt(labels, scores) == (1.0, 0.0)


def test_calibration_layer_matches_apply_platt():
    from realcheck.model.networks.architecture import Calibration

    scores = np.array([[1e-9], [0.01], [0.3], [0.5], [0.9], [1.0]], dtype=np.float32)
    layer = Calibration(0.4, -0.3)
    expected = apply_platt(np.clip(scores[:, 0], 1e-7, 1 - 1e-7), 0.4, -0.3)
    np.testing.assert_allclose(np.asarray(layer(scores))[:, 0], expected, atol=1e-5)
    assert Calibration.from_config(layer.get_config()).scale == pytest.approx(0.4)


@pytest.mark.parametrize("seed", range(4))
def test_band_keeps_real_photographs_called_ai_under_the_limit(seed):
    labels, scores = noisy_model(seed)
    threshold = choose_threshold(labels, scores)
    plain = choose_band(labels, scores, threshold, max_uncertain=0.3)
    low, high = choose_band(labels, scores, threshold, max_uncertain=0.3, max_real_called_ai=0.03)
    real = scores[labels == 0]
    assert np.mean(real > plain[1]) > 0.03  # the plain band accuses more real photos than allowed
    assert np.mean(real > high) <= 0.03
    assert low == plain[0] and high > plain[1]
    assert inside_band(scores, (low, high)).mean() <= 0.3


def test_band_raised_for_real_photos_never_passes_max_uncertain():
    labels, scores = noisy_model(0)
    threshold = choose_threshold(labels, scores)
    band = choose_band(labels, scores, threshold, max_uncertain=0.1, max_real_called_ai=0.0)
    assert inside_band(scores, band).sum() <= 200  # 10 % of 2000
    assert np.mean(scores[labels == 0] > band[1]) > 0.0  # the cap, not the target, stopped it


def test_per_source_rates_for_one_class_sources():
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.52, 0.1, 0.95, 0.2, 0.1, 0.05, 0.51])
    sources = ["mj"] * 4 + ["phone"] * 5
    result = compute_metrics(labels, scores, DecisionRule(0.5, (0.45, 0.55)), sources)
    mj, phone = result["per_generator"]["mj"], result["per_generator"]["phone"]
    assert mj["ai_recall"] == 0.75 and mj["real_called_ai"] is None and mj["uncertain"] == 0.25
    assert phone["real_called_ai"] == 0.4 and phone["ai_recall"] is None and phone["uncertain"] == 0.2
    report = format_report(result)
    assert "mj: n=4 AI caught 75.0% of 4" in report
    assert "phone: n=5 real called AI 40.0% of 5" in report


@pytest.mark.parametrize(
    "label,phrase", [(1, "AI images caught (recall): 2/3"), (0, "real photographs called AI")]
)
def test_report_of_a_one_class_folder_gives_that_class_rate(label, phrase):
    labels = np.full(3, label)
    scores = np.array([0.9, 0.7, 0.2])
    report = format_report(compute_metrics(labels, scores, DecisionRule(0.5, (0.5, 0.5)), ["x"] * 3))
    assert phrase in report
    assert "ROC AUC" not in report  # meaningless on one class
