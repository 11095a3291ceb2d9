#!/usr/bin/env python
"""Shortcut audit: can processing traces alone, with no image content, tell real photographs from AI images?

Every image in the collections was cut and re-saved the same way, but what happened to it *before* (its
original size and format, earlier JPEG passes, resizing by whoever published it) differs from source to
source, and most sources are all real or all AI. If a classifier that sees only such traces separates the
labels on sources it never trained on, a detector trained on these data can cheat with them too.

Per image, cheap processing-only features (no content):

1. stored size: log width, log height, short side under 256 (the inference path upscales those);
2. original size from the manifest (log width, height; stored size where the manifest has none) - the model
   never sees it directly, but it leaks through the window size; 2b: the original file format (manifest);
3. JPEG quantisation of the stored file: mean luma and chroma table, chroma subsampling;
4. blockiness: |first difference| across the 8x8 grid over inside it, and the strongest off-grid phase
   (an earlier JPEG pass on a shifted grid);
5. resampling periodicity (peak over median of the spectrum of the column/row profile of |second
   difference|, DC, the lowest bins and the 8-px JPEG frequencies left out) and noise (std of luma minus
   its 3x3 median / box blur).

Classifiers: StandardScaler + LogisticRegression and a small HistGradientBoostingClassifier, evaluated with
sources held out: (a) GroupKFold(5) by source over all collections, pooled out-of-fold ROC AUC (a-pool) and the
mean of the per-fold AUCs (a-fold); (b) train on A = wild-dev + dhanush-dev, test on B = wild-train, and B -> A.
AUC near 0.5: no shortcut. With single-class sources, a-pool can fall far *below* 0.5 for features that only
say which collection or fold an image is in: each fold's model learns the other folds' class balance, which
is the opposite of its own; a-fold does not mix scores of different models but inverts the same way when the
features mark a source's cluster whose other sources hold the other class. `random` (stratified 5-fold, sources
shared) is the reference: what the traces are worth to a model validated without holding sources out.

The audit runs twice: on the stored images, and after the training's `ProcessingChain` (random downscale and
JPEG passes, applied alike to both classes), where only the pixel groups (1, 4, 5) can be measured.

    .venv/bin/python scripts/shortcut_audit.py --out runs/audit [--limit 200]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, JpegImagePlugin
from scipy import ndimage
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from realcheck.model.evaluation.protocol import COLLECTIONS as SIDES
from realcheck.model.evaluation.protocol import DIRECTIONS

COLLECTIONS = tuple(folder for folders in SIDES.values() for folder in folders)
SMALL_SIDE = 256  # images with a shorter side below this are upscaled before inference
BLOCK = 8
LOW_BINS = 3  # spectrum bins next to DC carry the content's slow trends, not resampling
FORMATS = ("JPEG", "PNG", "WEBP")  # anything else: other; no manifest format: unknown

GROUPS: dict[str, list[str]] = {
    "1 stored size": ["log_width", "log_height", "short_under_256"],
    "2 orig size (manifest)": ["log_orig_width", "log_orig_height"],
    "2b orig format (manifest)": [f"orig_{f.lower()}" for f in FORMATS] + ["orig_other", "orig_unknown"],
    "3 JPEG quantisation": ["quant_luma", "quant_chroma", "subsampling"],
    "4 blockiness": ["block_aligned", "block_offgrid_h", "block_offgrid_v"],
    "5 resampling + noise": ["resample_cols", "resample_rows", "noise_median", "noise_box"],
}
PIXEL_GROUPS = ("1 stored size", "4 blockiness", "5 resampling + noise")  # measurable after the chain
COMBOS: dict[str, tuple[str, ...]] = {
    "pixels (1,4,5)": PIXEL_GROUPS,
    "stored file (1,3,4,5)": ("1 stored size", "3 JPEG quantisation", "4 blockiness", "5 resampling + noise"),
    "all (1-5, 2b)": tuple(GROUPS),
}
MODELS = ("logreg", "hgb")
# (a) source-held-out CV: pooled out-of-fold AUC and mean per-fold AUC; (b) across collections.
# Reference: a random split (sources shared by training and test), what a shortcut is worth in-distribution.
EVALUATIONS = ("a-pool", "a-fold", *DIRECTIONS, "random")


@dataclass(frozen=True)
class Record:
    """One image of a collection, as its manifest describes it."""

    collection: str
    path: Path
    label: int  # 1: AI-generated, 0: real photograph
    source: str
    orig_width: int | None
    orig_height: int | None
    orig_format: str | None

    @property
    def group(self) -> str:
        return f"{self.collection}/{self.source}"


def read_manifest(data: Path, collection: str) -> list[Record]:
    """The records of one collection (its source is `source`, or `generator_or_source` where absent)."""
    folder = data / collection
    with open(folder / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [
        Record(
            collection=collection,
            path=folder / row["relpath"],
            label=int(row["label"] == "fake"),
            source=row.get("source") or row["generator_or_source"],
            orig_width=_int_or_none(row.get("orig_width") or row.get("width")),
            orig_height=_int_or_none(row.get("orig_height") or row.get("height")),
            orig_format=row.get("orig_format") or None,
        )
        for row in rows
    ]


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value else None


def subsample(records: list[Record], limit: int | None, seed: int) -> list[Record]:
    """A seeded random `limit` of the records (all of them without a limit), in manifest order."""
    if limit is None or limit >= len(records):
        return records
    keep = np.random.default_rng(seed).choice(len(records), size=limit, replace=False)
    return [records[i] for i in sorted(keep)]


def luma(image: Image.Image) -> np.ndarray:
    """The image's luma (ITU-R 601, as JPEG codes it) as float32."""
    return np.asarray(image.convert("L"), dtype=np.float32)


def size_features(image: Image.Image) -> dict[str, float]:
    return {
        "log_width": math.log(image.width),
        "log_height": math.log(image.height),
        "short_under_256": float(min(image.size) < SMALL_SIDE),
    }


def manifest_features(record: Record, stored: Image.Image) -> dict[str, float]:
    """Original size (stored size where the manifest has none) and original format, one-hot."""
    width = record.orig_width or stored.width
    height = record.orig_height or stored.height
    fmt = record.orig_format
    kind = "unknown" if fmt is None else fmt.lower() if fmt in FORMATS else "other"
    onehot = {name: 0.0 for name in GROUPS["2b orig format (manifest)"]}
    onehot[f"orig_{kind}"] = 1.0
    return {"log_orig_width": math.log(width), "log_orig_height": math.log(height), **onehot}


def quantisation_features(image: Image.Image) -> dict[str, float]:
    """Mean luma and chroma quantisation step of the stored JPEG, and its chroma subsampling code."""
    tables = getattr(image, "quantization", None) or {}
    luma_table = tables.get(0)
    chroma_table = tables.get(1, luma_table)
    return {
        "quant_luma": float(np.mean(luma_table)) if luma_table else float("nan"),
        "quant_chroma": float(np.mean(chroma_table)) if chroma_table else float("nan"),
        "subsampling": float(JpegImagePlugin.get_sampling(image)) if image.format == "JPEG" else -1.0,
    }


def phase_profile(y: np.ndarray, axis: int) -> np.ndarray:
    """Mean |first difference| along `axis` by position in the 8-px grid (index 7: across a block edge)."""
    diff = np.abs(np.diff(y, axis=axis)).mean(axis=1 - axis)
    usable = len(diff) // BLOCK * BLOCK
    return diff[:usable].reshape(-1, BLOCK).mean(axis=0)


def blockiness_features(y: np.ndarray) -> dict[str, float]:
    """Log ratio of edge to inside differences on the 8x8 grid, and of the strongest off-grid phase to the
    typical one per direction (an earlier JPEG pass whose grid the centre cut shifted)."""
    eps = 1e-6
    horizontal, vertical = phase_profile(y, axis=1), phase_profile(y, axis=0)
    edge = horizontal[BLOCK - 1] + vertical[BLOCK - 1]
    inside = horizontal[: BLOCK - 1].mean() + vertical[: BLOCK - 1].mean()
    return {
        "block_aligned": math.log((edge + eps) / (inside + eps)),
        "block_offgrid_h": _offgrid(horizontal[: BLOCK - 1], eps),
        "block_offgrid_v": _offgrid(vertical[: BLOCK - 1], eps),
    }


def _offgrid(inside: np.ndarray, eps: float) -> float:
    return math.log((inside.max() + eps) / (np.median(inside) + eps))


def spectral_peak(profile: np.ndarray) -> float:
    """Log peak-to-median of the profile's magnitude spectrum, without DC, the lowest bins and the bins at
    the JPEG grid's frequencies (k/8 cycles per pixel)."""
    n = len(profile)
    spectrum = np.abs(np.fft.rfft(profile - profile.mean()))
    freqs = np.fft.rfftfreq(n)
    keep = np.arange(len(freqs)) >= LOW_BINS
    for k in range(1, BLOCK // 2 + 1):
        keep &= np.abs(freqs - k / BLOCK) > 1.5 / n
    if keep.sum() < 4:
        return 0.0
    kept = spectrum[keep]
    return math.log((kept.max() + 1e-6) / (np.median(kept) + 1e-6))


def resampling_features(y: np.ndarray) -> dict[str, float]:
    """Periodicity of |second difference| along columns and rows (interpolation leaves a periodic trace)."""
    along_x = np.abs(y[:, 2:] - 2 * y[:, 1:-1] + y[:, :-2]).mean(axis=0)
    along_y = np.abs(y[2:, :] - 2 * y[1:-1, :] + y[:-2, :]).mean(axis=1)
    return {"resample_cols": spectral_peak(along_x), "resample_rows": spectral_peak(along_y)}


def noise_features(image: Image.Image, y: np.ndarray) -> dict[str, float]:
    """Log std of luma minus its 3x3 median and minus its 3x3 box blur."""
    median = np.asarray(image.convert("L").filter(ImageFilter.MedianFilter(3)), dtype=np.float32)
    box = ndimage.uniform_filter(y, size=3, mode="reflect")
    return {
        "noise_median": math.log(float(np.std(y - median)) + 1e-3),
        "noise_box": math.log(float(np.std(y - box)) + 1e-3),
    }


def pixel_features(image: Image.Image) -> dict[str, float]:
    """Groups 1, 4 and 5: what the decoded pixels alone carry."""
    y = luma(image)
    return {
        **size_features(image),
        **blockiness_features(y),
        **resampling_features(y),
        **noise_features(image, y),
    }


def extract(records: list[Record], seed: int) -> tuple[list[dict], list[dict], list[float]]:
    """Features of every stored image (all groups) and of its copy after the ProcessingChain (pixel groups);
    the chain's randomness is seeded per image. Also the chain's seconds per image."""
    from realcheck.model.training.adaptation import (
        ProcessingChain,  # imports Keras (TensorFlow): only when needed
    )

    chain = ProcessingChain()
    before, after, chain_seconds = [], [], []
    for index, record in enumerate(records):
        with Image.open(record.path) as stored:
            stored.load()
            rgb = stored.convert("RGB")
            before.append(
                {
                    **pixel_features(rgb),
                    **manifest_features(record, stored),
                    **quantisation_features(stored),
                }
            )
        started = time.perf_counter()
        processed = chain.apply(rgb, np.random.default_rng((seed, index)))
        chain_seconds.append(time.perf_counter() - started)
        after.append(pixel_features(processed))
    return before, after, chain_seconds


def matrix(features: list[dict], names: list[str]) -> np.ndarray:
    return np.array([[row[name] for name in names] for row in features], dtype=np.float64)


def make_model(kind: str) -> Pipeline | HistGradientBoostingClassifier:
    if kind == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return HistGradientBoostingClassifier(max_iter=100, max_depth=3, learning_rate=0.1, random_state=0)


def grouped_cv_scores(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, kind: str
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold scores with whole sources held out (GroupKFold, 5 folds), and each image's fold."""
    scores, folds = np.zeros(len(y)), np.zeros(len(y), dtype=int)
    for fold, (train, test) in enumerate(GroupKFold(n_splits=5).split(x, y, groups)):
        scores[test] = make_model(kind).fit(x[train], y[train]).predict_proba(x[test])[:, 1]
        folds[test] = fold
    return scores, folds


def random_cv_auc(x: np.ndarray, y: np.ndarray, kind: str, seed: int = 0) -> float:
    """Pooled out-of-fold AUC of a random stratified 5-fold split: sources shared, the shortcut's upper bound."""
    scores = np.zeros(len(y))
    for train, test in StratifiedKFold(n_splits=5, shuffle=True, random_state=seed).split(x, y):
        scores[test] = make_model(kind).fit(x[train], y[train]).predict_proba(x[test])[:, 1]
    return float(roc_auc_score(y, scores))


def fold_mean_auc(y: np.ndarray, scores: np.ndarray, folds: np.ndarray) -> float:
    """Mean of the per-fold AUCs (folds with both classes): free of the pooled AUC's fold-offset artefact."""
    aucs = [roc_auc_score(y[folds == f], scores[folds == f]) for f in np.unique(folds)]
    aucs = [a for f, a in zip(np.unique(folds), aucs) if len(np.unique(y[folds == f])) == 2]
    return float(np.mean(aucs))


def transfer_auc(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, kind: str) -> float:
    """ROC AUC on one side of the collections of a model trained on the other."""
    model = make_model(kind).fit(x[train], y[train])
    return float(roc_auc_score(y[test], model.predict_proba(x[test])[:, 1]))


def group_columns(group: str) -> list[str]:
    return [name for part in COMBOS.get(group, (group,)) for name in GROUPS[part]]


def audit(features: list[dict], records: list[Record], groups: list[str]) -> dict[str, dict]:
    """AUC per feature group, evaluation ((a) grouped CV, (b) A->B and B->A) and classifier."""
    y = np.array([r.label for r in records])
    sources = np.array([r.group for r in records])
    side = {name: np.array([r.collection in members for r in records]) for name, members in SIDES.items()}
    results: dict[str, dict] = {}
    for group in groups:
        x = matrix(features, group_columns(group))
        row: dict[str, dict] = {evaluation: {} for evaluation in EVALUATIONS}
        for kind in MODELS:
            scores, folds = grouped_cv_scores(x, y, sources, kind)
            row["a-pool"][kind] = float(roc_auc_score(y, scores))
            row["a-fold"][kind] = fold_mean_auc(y, scores, folds)
            for direction, (train, test) in DIRECTIONS.items():
                row[direction][kind] = transfer_auc(x, y, side[train], side[test], kind)
            row["random"][kind] = random_cv_auc(x, y, kind)
        results[group] = row
    return results


def univariate_auc(features: list[dict], records: list[Record]) -> dict[str, float]:
    """Each feature's own AUC over all images (no training; 0.5 = no separation, below 0.5: higher = real)."""
    y = np.array([r.label for r in records])
    out = {}
    for name in features[0]:
        values = np.array([row[name] for row in features], dtype=np.float64)
        out[name] = float(roc_auc_score(y, values)) if np.ptp(values) > 0 else 0.5
    return out


def collection_counts(records: list[Record]) -> dict[str, dict]:
    """Images per class, sources, and how many sources (and images) hold one class only."""
    counts: dict[str, dict] = {}
    for collection in COLLECTIONS:
        mine = [r for r in records if r.collection == collection]
        labels_by_source: dict[str, set[int]] = {}
        for r in mine:
            labels_by_source.setdefault(r.source, set()).add(r.label)
        single = {s for s, labels in labels_by_source.items() if len(labels) == 1}
        counts[collection] = {
            "n": len(mine),
            "real": sum(r.label == 0 for r in mine),
            "fake": sum(r.label == 1 for r in mine),
            "sources": len(labels_by_source),
            "single_class_sources": len(single),
            "images_in_single_class_sources": sum(r.source in single for r in mine),
        }
    return counts


def quantisation_summary(features: list[dict], records: list[Record]) -> dict[str, dict]:
    """Distinct mean luma quantisation steps per collection and class (q90 everywhere would be one value)."""
    summary: dict[str, dict] = {}
    for row, record in zip(features, records):
        key = f"{record.collection} {'fake' if record.label else 'real'}"
        value = f"{row['quant_luma']:.2f}"
        summary.setdefault(key, {}).setdefault(value, 0)
        summary[key][value] += 1
    return summary


def format_table(results: dict[str, dict[str, dict]]) -> str:
    """One line per group: logreg/hgb AUC before and after the chain for each evaluation."""
    header = f"{'group':<26}" + "".join(
        f"{e + ' ' + stage:>12}" for e in EVALUATIONS for stage in ("bef", "aft")
    )
    lines = [header]
    for group in results["before"]:
        cells = []
        for evaluation in EVALUATIONS:
            for stage in ("before", "after"):
                row = results[stage].get(group)
                cells.append("-" if row is None else "/".join(f"{row[evaluation][k]:.2f}" for k in MODELS))
        lines.append(f"{group:<26}" + "".join(f"{c:>12}" for c in cells))
    lines.append(
        "cells: logreg/hgb ROC AUC; bef/aft: before/after ProcessingChain (after: pixel groups only)"
    )
    return "\n".join(lines)


def write_features(path: Path, records: list[Record], before: list[dict], after: list[dict]) -> None:
    """All features per image, before and after the chain (for follow-up looks)."""
    names_before, names_after = list(before[0]), list(after[0])
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["collection", "relpath", "label", "source", *names_before, *(f"after_{n}" for n in names_after)]
        )
        for record, b, a in zip(records, before, after):
            relpath = record.path.relative_to(record.path.parent.parent)
            writer.writerow(
                [
                    record.collection,
                    relpath,
                    record.label,
                    record.source,
                    *(f"{b[n]:.6g}" for n in names_before),
                    *(f"{a[n]:.6g}" for n in names_after),
                ]
            )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path("/work/shared/data"), help="the collections' folder"
    )
    parser.add_argument("--out", type=Path, default=Path("runs/audit"), help="where audit.json goes")
    parser.add_argument("--limit", type=int, default=None, help="at most this many images per collection")
    parser.add_argument("--seed", type=int, default=0, help="seed of the chain and of --limit's sample")
    parser.add_argument(
        "--threads", type=int, default=1, help="BLAS/OpenMP threads (more stall under TensorFlow)"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    records = [r for c in COLLECTIONS for r in subsample(read_manifest(args.data, c), args.limit, args.seed)]
    before, after, chain_seconds = extract(records, args.seed)
    extracted = time.perf_counter() - started
    with threadpool_limits(args.threads):
        results = {
            "before": audit(before, records, [*GROUPS, *COMBOS]),
            "after": audit(after, records, [*PIXEL_GROUPS, "pixels (1,4,5)"]),
        }
    seconds = time.perf_counter() - started
    report = {
        "counts": collection_counts(records),
        "auc": results,
        "univariate_auc": {
            "before": univariate_auc(before, records),
            "after": univariate_auc(after, records),
        },
        "quantisation_luma_mean": quantisation_summary(before, records),
        "groups": GROUPS,
        "combos": {name: list(parts) for name, parts in COMBOS.items()},
        "settings": {"limit": args.limit, "seed": args.seed, "data": str(args.data)},
        "seconds": {
            "total": round(seconds, 1),
            "features": round(extracted, 1),
            "chain_ms_per_image": round(1000 * float(np.mean(chain_seconds)), 2),
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "audit.json").write_text(json.dumps(report, indent=2) + "\n")
    write_features(args.out / "features.csv", records, before, after)

    for collection, count in report["counts"].items():
        print(
            f"{collection}: n={count['n']} (real {count['real']}, fake {count['fake']}), {count['sources']} "
            f"sources, {count['single_class_sources']} single-class ({count['images_in_single_class_sources']} img)"
        )
    print("luma quantisation mean per collection/class:", report["quantisation_luma_mean"])
    print(format_table(results))
    strongest = sorted(report["univariate_auc"]["before"].items(), key=lambda kv: -abs(kv[1] - 0.5))[:6]
    print("strongest single features (pooled AUC, before):", ", ".join(f"{n} {v:.2f}" for n, v in strongest))
    print(f"wrote {args.out / 'audit.json'} in {seconds:.0f} s (features {extracted:.0f} s)")


if __name__ == "__main__":
    main()
