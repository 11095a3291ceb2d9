"""The operating point that does not accuse, and the cross-collection report.

An `ai` verdict on a real photograph is the costliest error, and rates pooled over sources hide the source
where it happens (one camera, one genre). So the threshold is set per source: the lowest score above
which, on *every* held-out real source, at most `max_real_called_ai` of the photos fall. Below the band's
lower edge at most `max_ai_called_real` of the held-out AI images fall; between the two the verdict is
`uncertain`. The rule is chosen on validation sources of the training collection and measured on a
collection that nobody tuned on (`scripts/cross_collection.py`).
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realcheck.model.artifacts.metadata import rule_key
from realcheck.model.data.imaging import InputTraits
from realcheck.model.evaluation import measures
from realcheck.model.evaluation.calibration import apply_platt, fit_platt
from realcheck.model.labels import AI, REAL, UNCERTAIN
from realcheck.model.scoring.decision import DecisionRule, RuleSet

MAX_REAL_CALLED_AI = 0.03
MAX_AI_CALLED_REAL = 0.10
MIN_SOURCE_IMAGES = 20  # a source's rates are reported as its worst case from this many images up
MIN_QUANTILE_IMAGES = 10  # a calibration source's quantile enters the new-source bound from this many photos
NEW_SOURCE_CONFIDENCE = 0.95
OPERATING_POINT_RULES = ("per-source", "new-source")
# Two collections built independently (see their READMEs under shared/data): train on one, test on the other.
COLLECTIONS = {"A": ["wild-dev", "dhanush-dev"], "B": ["wild-train"]}
DIRECTIONS = {"A->B": ("A", "B"), "B->A": ("B", "A")}
# The copies every held-out image is scored in (longest side:JPEG quality): as stored, two web re-encodings, and
# a thumbnail, smaller than any window the models score (how a model meets a small image: upscaled or mirrored).
TIERS = {"clean": None, "web_768_q60": "768:60", "web_512_q40": "512:40", "web_256_q75": "256:75"}
# The copies the rule for each image condition is fitted on, each meeting it for the 384-px window: every
# thumbnail is small (`is_small`), every 512:40 copy heavily compressed (`imaging.condition_copy`).
CONDITION_TIERS = {"small_image": "web_256_q75", "compressed_image": "web_512_q40"}
# Whole sources of both classes and both collections that the final model is calibrated on, not trained on.
CALIBRATION_SOURCES = (
    "photoprism",
    "exif-samples",
    "midjourney-profile-tester",
    "HunyuanDiT",
    "zerodce-lowlight",
    "superglue-assets",
    "gptimage2-gallery-biyanbo",
    "creativeai-portraits-comfy",
)
IN_DISTRIBUTION = "dhanush-dev"  # a random fifth of it is held out of the final model (in-distribution test)


@dataclass(frozen=True)
class Item:
    path: str
    label: int
    source: str
    collection: str


def load_collection(name: str, data_root: Path) -> list[Item]:
    from realcheck.model.data.datasets import discover

    items = []
    for folder in COLLECTIONS[name]:
        discovery = discover(data_root / folder, verify=False)
        items += [Item(str(discovery.root / s.path), s.label, s.source, folder) for s in discovery.samples]
    return items


def split_sources(items: list[Item], val_fraction: float, seed: int) -> tuple[list[Item], list[Item]]:
    """(train, val): whole sources of each class held out for validation."""
    from realcheck.model.data.datasets import Sample
    from realcheck.model.data.splitting import split_by_source

    samples = [Sample(item.path, item.label, item.source, item.path) for item in items]
    split = split_by_source(samples, val_fraction, 0.0, seed)
    val = {s.path for s in split["val"]}
    return [i for i in items if i.path not in val], [i for i in items if i.path in val]


# The inverse L2 strengths a linear probe chooses among (scikit-learn's C): its features number thousands
# and its training images a few thousand, so the strong end matters most.
PROBE_STRENGTHS = (3e-4, 1e-3, 3e-3, 1e-2, 5e-2)
OUT_OF_SOURCE_FOLDS = 5  # folds of whole sources in which frozen recipes score their training images


def source_balanced_weights(labels: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """Sample weights under which every source weighs the same within its class and the classes weigh the
    same (mean weight 1): 400 photos of one game then count as much as 20 of one camera test."""
    weights = np.ones(len(labels))
    for label in np.unique(labels):
        of_class = labels == label
        for source in np.unique(sources[of_class]):
            chosen = of_class & (sources == source)
            weights[chosen] = 1 / np.sum(chosen)
        weights[of_class] *= len(labels) / len(np.unique(labels)) / weights[of_class].sum()
    return weights


def fit_probe(
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray] | None,
    strengths: tuple[float, ...] = PROBE_STRENGTHS,
    sources: np.ndarray | None = None,
):
    """A standardised logistic regression on the (features, labels) of `train`, its strength chosen by ROC
    AUC on `val`: whole sources of both classes it did not train on (source-grouped folds of the training
    images choose badly: most folds of a web collection hold one class only). With the training images'
    `sources`, each source weighs the same within its class (`source_balanced_weights`).

    Returns (the fitted pipeline, the chosen C, {C: validation AUC}); one strength is taken as given.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    weights = (
        {}
        if sources is None
        else {"logisticregression__sample_weight": source_balanced_weights(train[1], sources)}
    )
    fitted, scores = {}, {}
    for c in strengths:
        pipeline = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000))
        fitted[c] = pipeline.fit(*train, **weights)
        if len(strengths) > 1:
            scores[c] = float(roc_auc_score(val[1], fitted[c].predict_proba(val[0])[:, 1]))
    chosen = max(scores, key=scores.get) if scores else strengths[0]
    return fitted[chosen], chosen, scores


def probe_fitter(c: float, balance_sources: bool = False):
    """fit(x, labels, sources) -> a scoring function: the probe at strength `c`, source-balanced or not
    (for `out_of_source_scores`)."""

    def fit(x: np.ndarray, labels: np.ndarray, sources: np.ndarray):
        probe = fit_probe((x, labels), None, (c,), sources if balance_sources else None)[0]
        return lambda held: probe.predict_proba(held)[:, 1]

    return fit


def out_of_source_scores(
    fit,
    x: np.ndarray,
    labels: np.ndarray,
    sources: np.ndarray,
    folds: int,
    seed: int,
    copies: Sequence[np.ndarray] = (),
    trained_copies: Sequence[np.ndarray] = (),
) -> np.ndarray | None:
    """Each training image scored by a model fitted (`fit(x, labels, sources)` returns a scoring function) without
    its source: whole sources dealt into `folds` folds with both classes in each, held out as validation
    holds them. The operating point then sees every real source of the training collection, not only the
    few that validation holds.

    Shape (1 + len(copies), n): the scores of `x`, then of each of `copies` (the features of other copies of
    the same images, such as thumbnails, row for row) by the same fold models. Each fold model also trains
    on its images' `trained_copies` (row for row, such as processing-chain copies), as the model it stands
    for did.
    Fewer folds when a class has fewer sources; None when a class has a single source (nothing to hold out).
    """
    from sklearn.model_selection import StratifiedGroupKFold

    folds = min(folds, *(len(np.unique(sources[labels == label])) for label in (REAL, AI)))
    if folds < 2:
        return None
    views = [x, *copies]
    scores = np.full((len(views), len(labels)), np.nan)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for kept, held in splitter.split(x, labels, sources):
        scorer = fit(*with_copies(x[kept], labels[kept], sources[kept], [c[kept] for c in trained_copies]))
        for row, view in enumerate(views):
            scores[row, held] = scorer(view[held])
    return scores


def with_copies(
    x: np.ndarray, labels: np.ndarray, sources: np.ndarray, copies: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training features with each of `copies` (other copies of the same images, row for row) stacked under
    them, and their labels and sources repeated to match."""
    repeats = 1 + len(copies)
    return np.concatenate([x, *copies]), np.tile(labels, repeats), np.tile(sources, repeats)


def final_split(items: list[Item], seed: int) -> dict[str, list[Item]]:
    """train / calibration (whole sources) / in-distribution (a random fifth of dhanush-dev)."""
    rng = np.random.default_rng(seed)
    result: dict[str, list[Item]] = {"train": [], "calibration": [], "in_distribution": []}
    for item in items:
        if item.source in CALIBRATION_SOURCES:
            result["calibration"].append(item)
        elif item.collection == IN_DISTRIBUTION and rng.random() < 0.2:
            result["in_distribution"].append(item)
        else:
            result["train"].append(item)
    return result


def choose_operating_point(
    labels: np.ndarray,
    scores: np.ndarray,
    sources: np.ndarray,
    max_real_called_ai: float = MAX_REAL_CALLED_AI,
    max_ai_called_real: float = MAX_AI_CALLED_REAL,
    rule: str = "per-source",
) -> DecisionRule:
    """Threshold (the band's upper edge) for the real sources; lower edge for the AI images.

    per-source: the worst calibration source's limit. A real source of fewer than 1 / max_real_called_ai
    images allows none of its photos above the threshold, so one photo can set it.
    new-source: where an unseen real source's limit is predicted to stay (`new_source_threshold`); the
    per-source threshold when too few sources are large enough to predict from.
    The threshold never goes below 0.5 (a calibrated score under it favours `real`).
    """
    labels, scores, sources = np.asarray(labels), np.asarray(scores, dtype=np.float64), np.asarray(sources)
    edge = new_source_threshold(labels, scores, sources, max_real_called_ai) if rule == "new-source" else None
    if edge is None:
        edge = _worst_source_threshold(labels, scores, sources, max_real_called_ai)
    high = min(max(0.5, edge), 1.0)
    ai = np.sort(scores[labels == AI])
    low = float(ai[int(np.floor(max_ai_called_real * len(ai)))]) if len(ai) else high
    return DecisionRule(high, (min(low, high), high))


def _worst_source_threshold(labels, scores, sources, max_real_called_ai: float) -> float:
    high = 0.0
    for source in np.unique(sources[labels == REAL]):
        real = np.sort(scores[(labels == REAL) & (sources == source)])[::-1]
        allowed = int(np.floor(max_real_called_ai * len(real)))
        # `ai` needs a score above the edge: just above the (allowed + 1)-th highest real score.
        high = max(high, float(np.nextafter(real[allowed], 1.0)))
    return high


def new_source_threshold(
    labels: np.ndarray,
    scores: np.ndarray,
    sources: np.ndarray,
    max_real_called_ai: float = MAX_REAL_CALLED_AI,
    confidence: float = NEW_SOURCE_CONFIDENCE,
) -> float | None:
    """The score under which a real source not seen in calibration keeps at most `max_real_called_ai` of its
    photos, with probability `confidence`: a one-sided Student-t prediction bound over the calibration real
    sources' (1 - max_real_called_ai) quantiles, in log-odds. None with fewer than three sources of
    `MIN_QUANTILE_IMAGES` photos or more.

    The worst calibration source is a sample of one: a new collection's sources spread wider than the few
    held out (on the cross-collection protocol it called up to 19% of one unseen source's photos AI). The
    bound widens with that spread and with how few sources were seen.
    """
    from scipy import stats

    quantiles = [
        np.quantile(measures.logit(scores[chosen]), 1 - max_real_called_ai)
        for source in np.unique(sources[labels == REAL])
        if np.sum(chosen := (labels == REAL) & (sources == source)) >= MIN_QUANTILE_IMAGES
    ]
    n = len(quantiles)
    if n < 3:
        return None
    spread = float(np.std(quantiles, ddof=1)) * np.sqrt(1 + 1 / n)
    bound = float(np.mean(quantiles)) + float(stats.t.ppf(confidence, n - 1)) * spread
    return float(1 / (1 + np.exp(-bound)))


def verdicts(
    scores: np.ndarray, rules: DecisionRule | RuleSet, conditions: Sequence[str | None] | None = None
) -> np.ndarray:
    """Each score's verdict, by the rule for its image's condition (`InputTraits.condition`) where `rules`
    holds one."""
    rules = RuleSet.of(rules)
    conditions = [None] * len(scores) if conditions is None else conditions
    return np.array([rules.rule_for(c).verdict(float(score)) for score, c in zip(scores, conditions)])


def rates(labels: np.ndarray, verdict: np.ndarray) -> dict:
    """What a reader sees: AI images caught, real photos called AI, and how many are `uncertain`."""
    result = {"n": int(len(labels)), "n_ai": int(np.sum(labels == AI)), "n_real": int(np.sum(labels == REAL))}
    if np.any(labels == AI):
        result["ai_caught"] = float(np.mean(verdict[labels == AI] == "ai"))
        result["ai_called_real"] = float(np.mean(verdict[labels == AI] == "real"))
    if np.any(labels == REAL):
        result["real_called_ai"] = float(np.mean(verdict[labels == REAL] == "ai"))
    result["uncertain"] = float(np.mean(verdict == UNCERTAIN))
    return result


def measure(
    labels,
    scores,
    sources,
    rules: DecisionRule | RuleSet,
    balanced_threshold: float,
    conditions: Sequence[str | None] | None = None,
) -> dict:
    """Held-out metrics: ranking (AUC), balanced accuracy at the validation-chosen balanced threshold, ECE,
    and the verdict rates at the operating point (each image by the rule for its condition, `conditions`),
    pooled and per source."""
    from sklearn import metrics

    labels, scores, sources = np.asarray(labels), np.asarray(scores, dtype=np.float64), np.asarray(sources)
    verdict = verdicts(scores, rules, conditions)
    result = rates(labels, verdict)
    if len(np.unique(labels)) == 2:
        above = scores >= balanced_threshold
        result |= {
            "roc_auc": float(metrics.roc_auc_score(labels, scores)),
            "balanced_accuracy": float((np.mean(~above[labels == REAL]) + np.mean(above[labels == AI])) / 2),
            "balanced_accuracy_at_operating_point": float(
                (np.mean(verdict[labels == REAL] != "ai") + np.mean(verdict[labels == AI] == "ai")) / 2
            ),
        }
    result["ece"] = measures.expected_calibration_error(labels, scores)
    result["sources"] = {
        source: {"label": _class_of(labels[sources == source])}
        | rates(labels[sources == source], verdict[sources == source])
        for source in sorted(np.unique(sources))
    }
    # Worst sources among those of 20+ images (in a smaller one a single image moves the rate by 5+ points);
    # every real source over the limit is listed, whatever its size.
    real = [s for s in result["sources"].values() if s["n_real"] >= MIN_SOURCE_IMAGES]
    result["worst_real_source_called_ai"] = max((s["real_called_ai"] for s in real), default=None)
    result["real_sources_over_limit"] = {
        name: round(s["real_called_ai"], 4)
        for name, s in result["sources"].items()
        if s["n_real"] and s["real_called_ai"] > MAX_REAL_CALLED_AI
    }
    big_ai = [s for s in result["sources"].values() if s["n_ai"] >= MIN_SOURCE_IMAGES]
    result["worst_ai_source_caught"] = min((s["ai_caught"] for s in big_ai), default=None)
    return result


def _class_of(labels: np.ndarray) -> str:
    kinds = set(labels.tolist())
    return "both" if len(kinds) == 2 else ("ai" if AI in kinds else "real")


def pooled_rates(directions: dict) -> dict:
    """Per copy, the verdict rates over every held-out image of all directions (each image at the operating
    point of the model that did not see its collection), and the worst real source of any direction."""
    pooled: dict[str, dict] = {}
    for tier in TIERS:
        measured = [entry[tier] for name, entry in directions.items() if name in DIRECTIONS and tier in entry]
        if not measured:
            continue
        n_ai, n_real, n = (sum(m[key] for m in measured) for key in ("n_ai", "n_real", "n"))
        worst = [
            m["worst_real_source_called_ai"] for m in measured if m["worst_real_source_called_ai"] is not None
        ]
        pooled[tier] = {
            "n": n,
            "ai_caught": sum(m["ai_caught"] * m["n_ai"] for m in measured) / n_ai,
            "real_called_ai": sum(m["real_called_ai"] * m["n_real"] for m in measured) / n_real,
            "uncertain": sum(m["uncertain"] * m["n"] for m in measured) / n,
            "worst_real_source_called_ai": max(worst, default=None),
            "balanced_accuracy": float(np.mean([m["balanced_accuracy"] for m in measured])),
            "roc_auc": float(np.mean([m["roc_auc"] for m in measured])),
        }
    return pooled


def fit_on_validation(
    labels, scores, sources, rule: str = "per-source"
) -> tuple[tuple[float, float], DecisionRule, float]:
    """Platt calibration, the operating point (`rule`) and the balanced threshold, all from validation scores."""
    scale, bias = fit_platt(labels, scores)
    calibrated = apply_platt(scores, scale, bias)
    rule = choose_operating_point(labels, calibrated, sources, rule=rule)
    return (scale, bias), rule, measures.choose_threshold(labels, calibrated)


def read_scores(path: Path) -> dict[tuple[str, str, str, str], dict[str, np.ndarray]]:
    """scores.csv -> {(recipe, direction, split, tier): {labels, scores, sources, collections}}."""
    grouped: dict[tuple, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            group = grouped[(row["recipe"], row["direction"], row["split"], row["tier"])]
            group["labels"].append(int(row["label"]))
            group["scores"].append(float(row["score"]))
            group["sources"].append(row["source"])
            group["collections"].append(row["collection"])
            group["paths"].append(row["path"])
            # Older score files did not record the image's traits; those that did not record its JPEG quality
            # knew no compressed-image rule.
            quality = row.get("jpeg_quality")
            traits = InputTraits(row.get("small") == "1", int(quality) if quality else None)
            group["conditions"].append(traits.condition)
    return {key: {k: np.array(v) for k, v in group.items()} for key, group in grouped.items()}


def combine(scores: dict, members: list[str]) -> dict:
    """The ensemble of recipes that scored the same images: mean log-odds, as one more recipe's scores.

    Named `a+b`; keys that not every member has are left out, and images must line up path by path.
    """
    name = "+".join(members)
    combined = {}
    for recipe, direction, split, tier in list(scores):
        keys = [(member, direction, split, tier) for member in members]
        if recipe != members[0] or not all(key in scores for key in keys):
            continue
        groups = [scores[key] for key in keys]
        if any(not np.array_equal(g["paths"], groups[0]["paths"]) for g in groups):
            raise ValueError(f"{name} {direction} {split} {tier}: the members scored different images")
        odds = np.mean([measures.logit(g["scores"]) for g in groups], axis=0)
        combined[(name, direction, split, tier)] = {**groups[0], "scores": 1 / (1 + np.exp(-odds))}
    return combined


def report(scores: dict, rule: str = "per-source") -> dict:
    """Per recipe and direction: the operating point (`rule`) fitted on validation (and, where the recipe
    scored them, the training images scored out of source), then every held-out copy measured with it.

    Where the fitting splits were also scored in an image condition's copies (`CONDITION_TIERS`), an
    operating point for that condition is fitted on those (the same calibration) and decides every held-out
    image that meets it.
    """
    result: dict[str, dict] = defaultdict(dict)
    for recipe, direction, split, _ in sorted(scores):
        fit_split = "calibration" if direction == "final" else "val"
        if split != fit_split or direction in result[recipe]:
            continue
        fitted_on = [fit_split]
        if (recipe, direction, "out_of_source", "clean") in scores:
            fitted_on.append("out_of_source")
        val = _joined([scores[(recipe, direction, s, "clean")] for s in fitted_on])
        (scale, bias), fitted, balanced = fit_on_validation(
            val["labels"], val["scores"], val["sources"], rule
        )
        by_condition = {}
        for condition, tier in CONDITION_TIERS.items():
            if all((recipe, direction, s, tier) in scores for s in fitted_on):
                copies = _joined([scores[(recipe, direction, s, tier)] for s in fitted_on])
                calibrated = apply_platt(copies["scores"], scale, bias)
                by_condition[condition] = choose_operating_point(
                    copies["labels"], calibrated, copies["sources"], rule=rule
                )
        rules = RuleSet(fitted, by_condition)
        entry = {
            "calibration": {"scale": scale, "bias": bias},
            **fitted.to_dict(),
            "balanced_threshold": balanced,
            "rule": rule,
            "rule_fitted_on": {
                "splits": fitted_on,
                "real_sources": len(np.unique(val["sources"][val["labels"] == REAL])),
            },
        }
        entry |= {rule_key(condition): r.to_dict() for condition, r in by_condition.items()}
        held_out = "in_distribution" if direction == "final" else "test"
        for (r, d, s, tier), group in sorted(scores.items()):
            if (r, d, s) == (recipe, direction, held_out):
                calibrated = apply_platt(group["scores"], scale, bias)
                entry[tier] = measure(
                    group["labels"],
                    calibrated,
                    group["sources"],
                    rules,
                    balanced,
                    group["conditions"],
                )
        result[recipe][direction] = entry
    return dict(result)


def _joined(groups: list[dict]) -> dict[str, np.ndarray]:
    return {key: np.concatenate([g[key] for g in groups]) for key in ("labels", "scores", "sources")}


def headline(entry: dict, tier: str = "clean") -> str:
    measured = entry.get(tier)
    if not measured:
        return "n/a"
    parts = [
        f"bAcc {measured.get('balanced_accuracy', float('nan')):.3f}",
        f"AUC {measured.get('roc_auc', float('nan')):.3f}",
    ]
    parts.append(f"caught {measured.get('ai_caught', float('nan')):.0%}")
    parts.append(f"real->ai {measured.get('real_called_ai', float('nan')):.1%}")
    parts.append(f"worst real src {measured.get('worst_real_source_called_ai') or 0:.1%}")
    parts.append(f"unsure {measured['uncertain']:.0%}")
    return ", ".join(parts)


def write_report(out: Path, ensembles: tuple[list[str], ...] = (), rule: str = "per-source") -> dict:
    """report.json beside scores.csv (with any `ensembles` of its recipes, every operating point chosen by
    `rule`), and a summary on stdout."""
    scores = read_scores(out / "scores.csv")
    for members in ensembles:
        scores |= combine(scores, members)
    result = report(scores, rule)
    (out / "report.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    for recipe, directions in result.items():
        for direction, entry in directions.items():
            for tier in TIERS:
                if tier in entry:
                    print(f"{recipe:22s} {direction:5s} {tier:12s} {headline(entry, tier)}")
    return result
