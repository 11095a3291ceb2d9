"""Metrics, the decision threshold and uncertainty band, calibration and plots.

Works on plain arrays of labels and scores (P(AI)), whoever produced them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn import metrics as skm

from realcheck.model.artifacts.metadata import rule_key
from realcheck.model.labels import AI, LABEL_NAMES, REAL
from realcheck.model.scoring.decision import DecisionRule, RuleSet


def choose_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The threshold that maximises balanced accuracy on (validation) data; 0.5 when it cannot be chosen."""
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    if len(np.unique(labels)) < 2:
        return 0.5
    candidates = np.unique(np.concatenate([scores, [0.5]]))
    best, best_value = 0.5, -1.0
    for candidate in candidates:
        value = _balanced_accuracy(labels, scores >= candidate)
        # Ties go to the candidate nearest 0.5, so a perfect separation does not pick an extreme score.
        if value > best_value + 1e-12 or (
            abs(value - best_value) <= 1e-12 and abs(candidate - 0.5) < abs(best - 0.5)
        ):
            best, best_value = float(candidate), value
    return best


def choose_band(
    labels: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    target_accuracy: float = 0.95,
    max_uncertain: float = 0.2,
    max_real_called_ai: float | None = None,
) -> tuple[float, float]:
    """The narrowest band around the threshold outside which verdicts reach `target_accuracy`.

    The band never holds more than `max_uncertain` of the (validation) images, so a weak model says
    "uncertain" for its least confident fifth rather than for everything. With `max_real_called_ai`,
    the band's upper edge then rises, within that cap, until at most that fraction of the real
    photographs score above it: accusing a real photograph costs more than missing an AI image.
    """
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    if len(labels) == 0:
        return (threshold, threshold)
    distance = np.abs(scores - threshold)
    correct = (scores >= threshold).astype(int) == labels
    order = np.argsort(distance)
    max_inside = int(np.floor(max_uncertain * len(labels)))
    width = 0.0
    for inside in range(max_inside + 1):
        # The band holds the `inside` scores nearest the threshold.
        width = float(distance[order[inside - 1]]) if inside > 0 else 0.0
        outside = order[inside:]
        if len(outside) == 0 or correct[outside].mean() >= target_accuracy:
            break
    low, high = max(0.0, threshold - width), min(1.0, threshold + width)
    if max_real_called_ai is not None:
        high = _raise_for_real(labels, scores, low, high, max_inside, max_real_called_ai)
    return (low, high)


def _raise_for_real(
    labels: np.ndarray, scores: np.ndarray, low: float, high: float, max_inside: int, max_rate: float
) -> float:
    """The band's upper edge raised past real photographs' top scores, never holding over `max_inside`."""
    real = scores[labels == REAL]
    allowed = int(np.floor(max_rate * len(real)))
    for candidate in np.sort(real[real > high]):
        if np.sum(real > high) <= allowed or np.sum((scores >= low) & (scores <= candidate)) > max_inside:
            break
        high = float(candidate)
    return high


def log_loss(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Binary cross-entropy of P(AI) scores; None for no data."""
    if len(labels) == 0:
        return None
    return float(skm.log_loss(labels, np.clip(scores, 1e-7, 1 - 1e-7), labels=[0, 1]))


def logit(scores: np.ndarray) -> np.ndarray:
    p = np.clip(scores, 1e-7, 1 - 1e-7)
    return np.log(p) - np.log1p(-p)


def _balanced_accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    recalls = [np.mean(predicted[labels == c] == c) for c in (REAL, AI) if np.any(labels == c)]
    return float(np.mean(recalls))


def expected_calibration_error(labels: np.ndarray, scores: np.ndarray, bins: int = 15) -> float:
    """ECE of P(AI): the bin-size-weighted gap between mean score and observed AI fraction."""
    labels, scores = np.asarray(labels, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    if len(labels) == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(scores, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += mask.mean() * abs(scores[mask].mean() - labels[mask].mean())
    return float(total)


def reliability_curve(labels: np.ndarray, scores: np.ndarray, bins: int = 10) -> list[dict]:
    """Per-bin mean score, observed AI fraction and count, for the reliability plot."""
    labels, scores = np.asarray(labels, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(scores, edges[1:-1]), 0, bins - 1)
    curve = []
    for b in range(bins):
        mask = index == b
        if mask.any():
            curve.append(
                {
                    "low": float(edges[b]),
                    "high": float(edges[b + 1]),
                    "mean_score": float(scores[mask].mean()),
                    "fraction_ai": float(labels[mask].mean()),
                    "n": int(mask.sum()),
                }
            )
    return curve


def compute_metrics(
    labels: np.ndarray,
    scores: np.ndarray,
    rules: DecisionRule | RuleSet,
    sources: list[str] | None = None,
    conditions: Sequence[str | None] | None = None,
) -> dict:
    """Every number `realcheck evaluate` reports, as a JSON-ready dict.

    With a RuleSet, each image is decided by the rule for its condition (`conditions`, as
    `InputTraits.condition` gives them, or the `image_rule` of its Prediction), as the Detector does.
    """
    labels = np.asarray(labels, dtype=int)
    scores = np.asarray(scores, dtype=np.float64)
    rules = RuleSet.of(rules)
    conditions = list(conditions) if conditions is not None else [None] * len(scores)
    rule = rules.main
    per_image = rules.rules_for(conditions)
    predicted = (scores >= np.array([r.threshold for r in per_image])).astype(int)
    low, high = (np.array([r.band[edge] for r in per_image], dtype=np.float64) for edge in (0, 1))
    uncertain = (scores >= low) & (scores <= high) & (high > low)
    both_classes = len(np.unique(labels)) == 2
    confident = ~uncertain
    result = {
        "n": int(len(labels)),
        "n_real": int(np.sum(labels == REAL)),
        "n_ai": int(np.sum(labels == AI)),
        "threshold": rule.threshold,
        "uncertainty_band": list(rule.band),
        "accuracy": float(skm.accuracy_score(labels, predicted)) if len(labels) else None,
        "balanced_accuracy": _balanced_accuracy(labels, predicted) if len(labels) else None,
        "precision": float(skm.precision_score(labels, predicted, zero_division=0)),
        "recall": float(skm.recall_score(labels, predicted, zero_division=0)),
        "f1": float(skm.f1_score(labels, predicted, zero_division=0)),
        "roc_auc": float(skm.roc_auc_score(labels, scores)) if both_classes else None,
        "average_precision": float(skm.average_precision_score(labels, scores)) if both_classes else None,
        "log_loss": log_loss(labels, scores),
        "ece": expected_calibration_error(labels, scores),
        "confusion_matrix": skm.confusion_matrix(labels, predicted, labels=[REAL, AI]).tolist(),
        "uncertain_fraction": float(uncertain.mean()) if len(labels) else 0.0,
        "confident_accuracy": float(np.mean(predicted[confident] == labels[confident]))
        if confident.any()
        else None,
        "classification_report": skm.classification_report(
            labels,
            predicted,
            labels=[REAL, AI],
            target_names=[LABEL_NAMES[REAL], LABEL_NAMES[AI]],
            output_dict=True,
            zero_division=0,
        ),
        "reliability": reliability_curve(labels, scores),
    }
    for condition, condition_rule in rules.by_condition.items():
        decided = sum(rules.name_for(c) == condition for c in conditions)
        result[rule_key(condition)] = condition_rule.to_dict() | {"images": decided}
    if sources is not None:
        # Per source, under the key's published name.
        result["per_generator"] = per_source_metrics(labels, scores, predicted, sources, uncertain)
    return result


def per_source_metrics(
    labels: np.ndarray,
    scores: np.ndarray,
    predicted: np.ndarray,
    sources: list[str],
    uncertain: np.ndarray | None = None,
) -> dict:
    """Per generator or source: accuracy, ROC AUC where both classes occur, and what its images were called.

    Most sources hold one class, so the rates that matter are per class: `ai_recall` (AI images caught)
    and `real_called_ai` (real photographs accused: the false-positive rate). `uncertain` is the fraction
    whose verdict was "uncertain" (`uncertain` marks them: inside the band; they still count as their
    thresholded class above).
    """
    sources_array = np.asarray(sources)
    uncertain = np.zeros(len(scores), dtype=bool) if uncertain is None else uncertain
    breakdown = {}
    for name in sorted(set(sources)):
        mask = sources_array == name
        group_labels = labels[mask]
        group_predicted = predicted[mask]
        is_ai, is_real = group_labels == AI, group_labels == REAL
        entry = {
            "n": int(mask.sum()),
            "n_real": int(is_real.sum()),
            "n_ai": int(is_ai.sum()),
            "accuracy": float(np.mean(group_predicted == group_labels)),
            "ai_recall": float(np.mean(group_predicted[is_ai] == AI)) if is_ai.any() else None,
            "real_recall": float(np.mean(group_predicted[is_real] == REAL)) if is_real.any() else None,
            "real_called_ai": float(np.mean(group_predicted[is_real] == AI)) if is_real.any() else None,
            "uncertain": float(uncertain[mask].mean()),
            "mean_score": float(scores[mask].mean()),
        }
        if len(np.unique(group_labels)) == 2:
            entry["roc_auc"] = float(skm.roc_auc_score(group_labels, scores[mask]))
        breakdown[name] = entry
    return breakdown


def format_report(result: dict) -> str:
    """A short human-readable report: headline metrics, confusion matrix, one line per source."""

    def fmt(value):
        return "n/a" if value is None else f"{value:.4f}"

    (tn, fp), (fn, tp) = result["confusion_matrix"]
    lines = [
        f"images: {result['n']} ({result['n_real']} real, {result['n_ai']} ai)   threshold {result['threshold']:.4f}",
    ]
    if result["n_real"] and result["n_ai"]:
        lines += [
            f"accuracy {fmt(result['accuracy'])}  balanced accuracy {fmt(result['balanced_accuracy'])}  "
            f"precision {fmt(result['precision'])}  recall {fmt(result['recall'])}  f1 {fmt(result['f1'])}",
            f"ROC AUC {fmt(result['roc_auc'])}  average precision {fmt(result['average_precision'])}  "
            f"ECE {fmt(result['ece'])}  uncertain {result['uncertain_fraction']:.1%}",
        ]
    else:
        # One class only: accuracy is that class's rate, and AUC, precision and ECE mean nothing here.
        lines.append(_one_class_line(result["n_ai"], tp, result["n_real"], fp, result["uncertain_fraction"]))
    lines += [
        "confusion matrix (rows: true real, true ai; columns: predicted real, predicted ai):",
        f"  real  {tn:6d} {fp:6d}",
        f"  ai    {fn:6d} {tp:6d}",
    ]
    per_source = result.get("per_generator", {})
    if len(per_source) > 1:
        lines.append("per source:")
        for name, entry in per_source.items():
            rates = _source_rates(entry)
            auc = f"  ROC AUC {entry['roc_auc']:.4f}" if "roc_auc" in entry else ""
            lines.append(f"  {name}: n={entry['n']} {rates}{auc}  uncertain {entry['uncertain']:.1%}")
    return "\n".join(lines)


def _one_class_line(n_ai: int, caught: int, n_real: int, accused: int, uncertain: float) -> str:
    if n_ai:
        return f"AI images caught (recall): {caught}/{n_ai} = {caught / n_ai:.1%}   uncertain {uncertain:.1%}"
    return (
        f"real photographs called AI (false-positive rate): {accused}/{n_real} = {accused / n_real:.1%}"
        f"   uncertain {uncertain:.1%}"
    )


def _source_rates(entry: dict) -> str:
    parts = []
    if entry["ai_recall"] is not None:
        parts.append(f"AI caught {entry['ai_recall']:.1%} of {entry['n_ai']}")
    if entry["real_called_ai"] is not None:
        parts.append(f"real called AI {entry['real_called_ai']:.1%} of {entry['n_real']}")
    return ", ".join(parts)


def save_plots(
    labels: np.ndarray, scores: np.ndarray, result: dict, folder: str | Path, title: str = ""
) -> list[str]:
    """Confusion matrix, ROC, precision-recall and reliability plots as PNG files; returns their names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    labels = np.asarray(labels, dtype=int)
    scores = np.asarray(scores, dtype=np.float64)
    written = []

    figure, axis = plt.subplots(figsize=(4.2, 3.8))
    matrix = np.asarray(result["confusion_matrix"])
    axis.imshow(matrix, cmap="Blues")
    for (row, column), value in np.ndenumerate(matrix):
        axis.text(
            column,
            row,
            str(value),
            ha="center",
            va="center",
            color="white" if value > matrix.max() / 2 else "black",
            fontsize=12,
        )
    axis.set_xticks([0, 1], ["real", "ai"])
    axis.set_yticks([0, 1], ["real", "ai"])
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(f"{title} confusion matrix".strip())
    written.append(_save(figure, folder / "confusion_matrix.png"))

    if len(np.unique(labels)) == 2:
        figure, axis = plt.subplots(figsize=(4.2, 3.8))
        fpr, tpr, _ = skm.roc_curve(labels, scores)
        axis.plot(fpr, tpr, label=f"AUC {result['roc_auc']:.3f}")
        axis.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
        axis.set_xlabel("false positive rate (real called ai)")
        axis.set_ylabel("true positive rate (ai caught)")
        axis.set_title(f"{title} ROC".strip())
        axis.legend(loc="lower right")
        written.append(_save(figure, folder / "roc.png"))

        figure, axis = plt.subplots(figsize=(4.2, 3.8))
        precision, recall, _ = skm.precision_recall_curve(labels, scores)
        axis.plot(recall, precision, label=f"AP {result['average_precision']:.3f}")
        axis.set_xlabel("recall")
        axis.set_ylabel("precision")
        axis.set_title(f"{title} precision-recall".strip())
        axis.legend(loc="lower left")
        written.append(_save(figure, folder / "precision_recall.png"))

    figure, axis = plt.subplots(figsize=(4.2, 3.8))
    curve = result["reliability"]
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8, label="perfect")
    axis.plot(
        [c["mean_score"] for c in curve],
        [c["fraction_ai"] for c in curve],
        marker="o",
        label=f"model (ECE {result['ece']:.3f})",
    )
    axis.set_xlabel("mean predicted P(AI)")
    axis.set_ylabel("observed fraction AI")
    axis.set_title(f"{title} reliability".strip())
    axis.legend(loc="upper left")
    written.append(_save(figure, folder / "reliability.png"))
    return written


def save_history_plot(history: dict[str, list[float]], path: str | Path) -> str:
    """Training curves (loss and accuracy/AUC, train and validation) as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(8.4, 3.6))
    for axis, keys in (
        (axes[0], ("loss", "val_loss")),
        (axes[1], ("accuracy", "val_accuracy", "auc", "val_auc")),
    ):
        for key in keys:
            if history.get(key):
                axis.plot(range(1, len(history[key]) + 1), history[key], label=key)
        axis.set_xlabel("epoch")
        axis.legend()
    axes[0].set_title("loss")
    axes[1].set_title("accuracy / AUC")
    return _save(figure, Path(path))


def _save(figure, path: Path) -> str:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path.name
