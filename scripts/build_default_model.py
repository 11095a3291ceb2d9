#!/usr/bin/env python
"""Reproduce RealCheck's bundled default model and measure it.

Every step is a command (printed before it runs), so each artifact's metadata records the exact command that
made it. Three recipes:

`--recipe probe` (the default, the bundled model's): every stage of the frozen EfficientNet-Lite0 pooled
(mean, std, max) over a 384x384 native window under a logistic regression (`realcheck train --probe`), each
source weighing the same within its class, its L2 strength chosen on validation sources, its calibration and
operating point (`--operating-point new-source`, the default: where an unseen real source's top 3% is
predicted to fall) fitted on those and on the training sources scored out of source. No backbone training:
the whole build runs on this 2-core CPU in about 30 minutes.
1. One data folder of links to the --data folders (their files stay where they are); each folder's
   `manifest.csv` names every image's source.
2. The cross-collection protocol (`scripts/cross_collection.py`): the recipe trained on collection A and
   tested on B and back, today's frozen recipe beside it; with --adapted-weights the adapted models a GPU run
   made (`scripts/gpu_adapt.sh`) are scored beside it.
3. The bundled model: the recipe on both collections but their calibration sources (its calibration and
   operating point) and a fifth of dhanush-dev (its in-distribution test).
4. Optionally (--baseline DIR) the previous default on the collection it never saw, --audit the shortcut
   audit, then the ONNX export and speed; with --bundle the result replaces `model/bundled/`.

    python scripts/build_default_model.py --data ../shared/data/wild-dev ../shared/data/dhanush-dev \
        ../shared/data/wild-train --out runs/default-probe2 --audit runs/audit/audit.json --bundle

`--recipe adapt` (the previous bundled model's, 2026-12-04): EfficientNet-Lite0 adapted from its stem up to
--adapt-until on native crops processed alike for both classes (`realcheck.model.training.adaptation`),
scored on a 256x256 window, the same steps; with --adapted-weights the models a GPU run made are loaded
instead of trained here (hours on a CPU).

    python scripts/build_default_model.py --recipe adapt --operating-point per-source \
        --adapted-weights runs/gpu/xc --data ../shared/data/wild-dev ../shared/data/dhanush-dev \
        ../shared/data/wild-train --out runs/default

`--recipe frozen` (the previous default's): frozen ImageNet features, a Keras Tuner search over the head, the
source-held-out protocol (sources dealt into --folds folds, whole; each fold tested by a model trained
without it) and a band that says `uncertain` rather than accuse a real photograph.

    python scripts/build_default_model.py --recipe frozen --data ../shared/data/wild-dev \
        ../shared/data/dhanush-dev --out runs/default-frozen --baseline /path/to/old-default --bundle
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from realcheck.model.data.imaging import HEAVY_COMPRESSION_QUALITY, small_side
from realcheck.model.evaluation.protocol import (
    MAX_AI_CALLED_REAL,
    MAX_REAL_CALLED_AI,
    NEW_SOURCE_CONFIDENCE,
    OPERATING_POINT_RULES,
    PROBE_STRENGTHS,
    TIERS,
)
from realcheck.model.settings import SMALL_IMAGE_FILLS

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NAME = "realcheck-default-lite0"
CROSS_COLLECTION_RECIPES = ("adapt", "probe")  # measured on the cross-collection protocol
# Where the bundled model's calibration, threshold and band are fitted: whole sources of both classes that
# leave every generator family in training (a random pick of 20% took all four Midjourney sources).
FINAL_VAL_SOURCES = [
    "midjourney-profile-tester",
    "HunyuanDiT",
    "ai-image-filter",
    "photoprism",
    "exif-samples",
]
INTENDED_USE = (
    "A second opinion on whether a photograph-like image was made by an image generator: it flags some AI "
    "images, rarely calls a real photograph `ai`, and says `uncertain` for the many images it cannot tell. "
    "Not for decisions about people, not as proof. Read the cross-collection numbers below: on collections "
    "it never saw it misses most AI images."
)


def recipe(args: argparse.Namespace) -> list[str]:
    """The training flags shared by every fold and the bundled model."""
    if args.recipe == "probe":
        return [
            "--backbone", args.backbone, "--weights", "imagenet", "--probe",
            "--input-mode", "crop", "--training-size", str(args.window), "--small-images", args.small_images,
            "--operating-point", args.operating_point, "--seed", str(args.seed), "--name", args.name,
        ]  # fmt: skip
    if args.recipe == "adapt":
        return [
            "--backbone", args.backbone, "--weights", "imagenet",
            "--input-mode", "crop", "--training-size", str(args.crop), "--input-size", str(args.window),
            "--adapt-until", args.adapt_until, "--epochs", "1", "--adapt-epochs", str(args.adapt_epochs),
            "--operating-point", args.operating_point,
            "--seed", str(args.seed), "--name", args.name,
        ]  # fmt: skip
    return [
        "--backbone", args.backbone, "--weights", "imagenet",
        "--input-mode", "crop", "--training-size", str(args.window),
        "--search", "--trials", str(args.trials), "--no-finetune",
        "--max-uncertain", str(args.max_uncertain), "--max-real-called-ai", str(args.max_real_called_ai),
        "--seed", str(args.seed), "--name", args.name,
    ]  # fmt: skip


def realcheck(*args: str, capture: bool = False) -> str:
    """Run one `realcheck` command of this environment, echoing it; stop the script if it fails."""
    command = [sys.executable, "-m", "realcheck", *args]
    print("+ realcheck " + " ".join(args), flush=True)
    result = subprocess.run(command, stdout=subprocess.PIPE if capture else None, text=True)
    if result.returncode != 0:
        sys.exit(f"failed (exit {result.returncode}): realcheck {' '.join(args)}")
    return result.stdout if capture else ""


def link_data(folders: list[str], target: Path) -> Path:
    """target/<folder name>/... with a link per image and each folder's manifest.csv copied."""
    from realcheck.model.data.imaging import is_image_file

    if target.exists():
        shutil.rmtree(target)
    for folder in map(Path, folders):
        folder = folder.resolve()
        for path in sorted(folder.rglob("*")):
            if path.is_file() and (is_image_file(path) or path.name == "manifest.csv"):
                link = target / folder.name / path.relative_to(folder)
                link.parent.mkdir(parents=True, exist_ok=True)
                if path.name == "manifest.csv":
                    shutil.copy2(path, link)
                else:
                    os.symlink(path, link)
    return target


def evaluate(model_dir: Path, data: Path, out: Path, subset: str, degrade: str | None) -> dict:
    extra = ["--degrade", degrade] if degrade else []
    text = realcheck(
        "evaluate", "--model", str(model_dir), "--data", str(data), "--subset", subset, "--out", str(out),
        "--json", *extra, capture=True,
    )  # fmt: skip
    return json.loads(text)


def run_protocol(args: argparse.Namespace, data: Path, out: Path) -> dict:
    """Train without each fold, test on it; per-source results and pooled held-out predictions per tier."""
    from realcheck.model.data.datasets import discover
    from realcheck.model.data.splitting import save_manifest, source_folds, split_by_source

    samples = discover(data).samples
    folds = source_folds(samples, args.folds, args.seed)
    predictions: dict[str, list[dict]] = {tier: [] for tier in TIERS}
    for fold in range(args.folds):
        fold_dir = out / f"fold{fold}"
        run_dir = fold_dir / "run"
        held = {source for source, f in folds.items() if f == fold}
        if not (run_dir / "metadata.json").is_file():
            split = split_by_source(samples, args.val_fraction, 0.0, args.seed, test_sources=held)
            save_manifest(split, fold_dir / "split.csv")
            realcheck(
                "train", "--data", str(data), "--out", str(run_dir), "--split", str(fold_dir / "split.csv"),
                *recipe(args),
            )  # fmt: skip
        for tier, degrade in TIERS.items():
            evaluate(run_dir, data, fold_dir / f"eval-{tier}", "test", degrade)
            predictions[tier] += read_predictions(fold_dir / f"eval-{tier}", run_dir, fold)
    write_predictions(out / "protocol-predictions.csv", predictions)
    return {"folds": {str(k): sorted(s for s, f in folds.items() if f == k) for k in range(args.folds)}} | {
        tier: summarize(rows) for tier, rows in predictions.items()
    }


def decision_rule(model_dir: Path) -> dict:
    """The threshold and band a model's verdicts used, from its metadata."""
    from realcheck.model.artifacts.artifact import read_metadata

    metadata = read_metadata(model_dir)
    return {"threshold": metadata["threshold"], "band": metadata["uncertainty_band"]}


def read_predictions(eval_dir: Path, run_dir: Path, fold: int) -> list[dict]:
    rule = decision_rule(run_dir)
    with (eval_dir / "predictions.csv").open(newline="", encoding="utf-8") as handle:
        return [row | {"fold": fold} | rule for row in csv.DictReader(handle)]


def write_predictions(path: Path, predictions: dict[str, list[dict]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["tier", "fold", "path", "label", "source", "score", "verdict"])
        for tier, rows in predictions.items():
            for row in rows:
                writer.writerow(
                    [
                        tier,
                        row["fold"],
                        row["path"],
                        row["label"],
                        row["source"],
                        row["score"],
                        row["verdict"],
                    ]
                )


def summarize(rows: list[dict]) -> dict:
    """Pooled held-out metrics (each image scored by the fold model that never saw its source) and per source.

    Each fold model has its own threshold and band; verdicts are each model's own.
    """
    from sklearn import metrics

    from realcheck.model.evaluation import measures
    from realcheck.model.labels import AI, UNCERTAIN

    labels = np.array([1 if row["label"] == "ai" else 0 for row in rows])
    scores = np.array([float(row["score"]) for row in rows])
    called_ai = np.array([row["verdict"] == "ai" for row in rows])
    uncertain = np.array([row["verdict"] == UNCERTAIN for row in rows])
    above = np.array([float(row["score"]) >= row["threshold"] for row in rows])
    sources: dict[str, dict] = {}
    for name in sorted({row["source"] for row in rows}):
        mask = np.array([row["source"] == name for row in rows])
        ai = int(labels[mask][0] == AI) if len(set(labels[mask])) == 1 else None
        entry = {
            "n": int(mask.sum()),
            "label": {1: "ai", 0: "real", None: "both"}[ai],
            # Thresholded rates (the verdict ignoring the band) and verdict rates (with `uncertain`).
            "above_threshold": float(above[mask].mean()),
            "verdict_ai": float(called_ai[mask].mean()),
            "verdict_uncertain": float(uncertain[mask].mean()),
        }
        sources[name] = entry
    return {
        "n": int(len(rows)),
        "roc_auc": float(metrics.roc_auc_score(labels, scores)),
        "average_precision": float(metrics.average_precision_score(labels, scores)),
        "ece": measures.expected_calibration_error(labels, scores),
        "balanced_accuracy": float((np.mean(~above[labels == 0]) + np.mean(above[labels == 1])) / 2),
        "ai_caught": float(called_ai[labels == 1].mean()),
        "real_called_ai": float(called_ai[labels == 0].mean()),
        "uncertain": float(uncertain.mean()),
        "sources": sources,
    }


def baseline(model_dir: Path, data: Path, out: Path, tiers: list[str]) -> dict:
    """The previous default on the images under `data`, per copy, summarised as the protocol is.

    An evaluation already in `out` is reused (the previous default scores about 4 images/s here).
    """
    from realcheck.model.artifacts.artifact import read_metadata

    rule = decision_rule(model_dir)
    results = {"name": read_metadata(model_dir)["name"]}
    for tier in tiers:
        evaluation_dir = out / f"baseline-{tier}"
        if not (evaluation_dir / "predictions.csv").is_file():
            evaluate(model_dir, data, evaluation_dir, "all", TIERS[tier])
        with (evaluation_dir / "predictions.csv").open(newline="", encoding="utf-8") as handle:
            rows = [row | {"fold": "-"} | rule for row in csv.DictReader(handle)]
        results[tier] = summarize(rows)
    return results


def protocol_plots(predictions_file: Path, metadata: dict, folder: Path) -> list[str]:
    """ROC, precision-recall, reliability and confusion matrix of the pooled clean held-out predictions, at the
    bundled model's threshold (each fold model had its own; these are the scores' plots)."""
    from realcheck.model.evaluation import measures
    from realcheck.model.scoring.decision import DecisionRule

    with predictions_file.open(newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["tier"] == "clean"]
    labels = np.array([1 if row["label"] == "ai" else 0 for row in rows])
    scores = np.array([float(row["score"]) for row in rows])
    rule = DecisionRule.from_metadata(metadata)
    result = measures.compute_metrics(labels, scores, rule)
    return measures.save_plots(labels, scores, result, folder, title="source-held-out")


def same_images(predictions_file: Path, subfolder: str) -> dict:
    """The protocol's per-copy summary restricted to the images under `subfolder` of the linked data."""
    prefix = "" if subfolder in {"", "."} else subfolder.rstrip("/") + "/"
    rules = {}
    with predictions_file.open(newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["path"].startswith(prefix)]
    for row in rows:
        if row["fold"] not in rules:
            rules[row["fold"]] = decision_rule(predictions_file.parent / f"fold{row['fold']}" / "run")
        row |= rules[row["fold"]]
    return {tier: summarize([row for row in rows if row["tier"] == tier]) for tier in TIERS}


def measure_speed(model_dir: Path, out: Path) -> dict:
    """Images/s through ONNX Runtime (the server's CPU runtime) against the FP32 limit, same run."""
    report_file = out / "speed.json"
    command = [
        sys.executable, str(ROOT / "scripts" / "bench_inference.py"), "--model", str(model_dir),
        "--runtimes", "onnx", "--batches", "1,8", "--seconds", "10", "--out", str(report_file),
    ]  # fmt: skip
    print("+ " + " ".join(command[1:]), flush=True)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return json.loads(report_file.read_text(encoding="utf-8"))


def cross_collection(args: argparse.Namespace, data: Path, out: Path) -> dict:
    """The cross-collection protocol (scripts/cross_collection.py) for this recipe, today's frozen recipe beside
    it; returns the metadata it adds: the report, and the rates measured at the operating point."""
    from realcheck.model.evaluation.protocol import pooled_rates, write_report

    folder = out / "cross-collection"
    script = [sys.executable, str(ROOT / "scripts" / "cross_collection.py"), "run", "--data", str(data)]
    common = [*script, "--out", str(folder), "--seed", str(args.seed)]
    probe = [
        *common, "--recipe", "frozen-stages", "--tag", args.tag, "--window", str(args.window),
        "--c", *map(str, PROBE_STRENGTHS), "--balance-sources", "--small-images", args.small_images,
    ]  # fmt: skip
    adapt = [
        *common, "--recipe", "adapt", "--tag", "early" if args.recipe == "probe" else args.tag,
        "--window", str(256 if args.recipe == "probe" else args.window),
        "--trainable-until", args.adapt_until, "--crop", str(args.crop), "--epochs", str(args.adapt_epochs),
        "--head-epochs", "1", *(["--from-weights", args.adapted_weights] if args.adapted_weights else []),
    ]  # fmt: skip
    commands = [[*common, "--recipe", "frozen-top", "--window", "256"]]
    # The probe's build scores the adapted models (the previous default's recipe, as it shipped) beside it.
    if args.recipe == "adapt" or args.adapted_weights:
        commands.append(adapt)
    if args.recipe == "probe":
        commands.append(probe)
    for command in commands:
        print("+ " + " ".join(command[1:]), flush=True)
        subprocess.run(command, check=True)
    bundled = f"frozen-stages:{args.tag}" if args.recipe == "probe" else f"adapt:{args.tag}"
    report = write_report(folder, rule=args.operating_point)
    return {
        "cross_collection": {
            "description": CROSS_COLLECTION,
            "recipes": report,
            "bundled_recipe": bundled,
            "command": " ".join(["python scripts/cross_collection.py", *commands[-1][2:]]),
        },
        "operating_point": {
            "rule": args.operating_point,
            "description": OPERATING_POINTS[args.operating_point],
            "measured": {
                "protocol": "cross-collection (each image scored by a model trained on the other collection, "
                "at that model's operating point)",
                **pooled_rates(report[bundled]),
            },
        },
    }


def final_split_of(args: argparse.Namespace, data: Path) -> dict:
    """The bundled model's split: its calibration sources are the validation split, a fifth of dhanush-dev the
    test split (in-distribution), the rest trains; the same split a GPU run of cross_collection.py --final
    trained on."""
    from realcheck.model.data.datasets import Sample
    from realcheck.model.evaluation.protocol import final_split, load_collection

    parts = final_split(load_collection("A", data) + load_collection("B", data), args.seed)
    samples = {
        name: [Sample(str(Path(i.path).relative_to(data)), i.label, i.source, i.path) for i in items]
        for name, items in parts.items()
    }
    return {"train": samples["train"], "val": samples["calibration"], "test": samples["in_distribution"]}


def train_final(args: argparse.Namespace, data: Path, out: Path, split: dict) -> None:
    from realcheck.model.data.splitting import save_manifest

    if (out / "run" / "metadata.json").is_file():
        return
    save_manifest(split, out / "final-split.csv")
    weights = []
    if args.recipe == "adapt" and args.adapted_weights:
        weights = ["--adapted-weights", str(Path(args.adapted_weights) / f"adapt-{args.tag}-final.npz")]
    realcheck(
        "train", "--data", str(data), "--out", str(out / "run"), "--split", str(out / "final-split.csv"),
        *recipe(args), *weights,
    )  # fmt: skip


def audit_summary(audit: dict) -> dict:
    """The shortcut audit's ROC AUCs (best of its two classifiers) with sources or collections held out."""
    views = ("a-fold", "A->B", "B->A", "random")
    rows = [
        "| processing-only features | " + " | ".join(views) + " |",
        "|---|" + "---|" * len(views),
    ]
    for stage in ("before", "after"):
        for group, results in audit["auc"][stage].items():
            cells = [f"{max(results[view].values()):.2f}" for view in views]
            rows.append(
                f"| {group}{' (after the chain)' if stage == 'after' else ''} | " + " | ".join(cells) + " |"
            )
    text = (
        "A classifier that sees only processing traces (sizes, JPEG tables, blockiness, resampling and noise; "
        "no content), with whole sources (a-fold) or the other collection (A->B, B->A) held out; `random` "
        "shares sources between training and test. ROC AUC, the better of a logistic regression and gradient "
        "boosting; 0.5 is chance.\n\n" + "\n".join(rows)
    )
    return {
        "summary": text,
        "command": "python scripts/shortcut_audit.py --out runs/audit",
        "auc": audit["auc"],
    }


CROSS_COLLECTION = (
    "Two collections built independently: A = wild-dev + dhanush-dev (about 20 sources), B = wild-train (34 "
    "other sources). A model trained on A (its threshold, band and calibration chosen on whole A sources it "
    "did not train on) is tested on all of B, and B -> A the same way: every test image comes from a source "
    "and a collector nobody trained or tuned on. Balanced accuracy is at the threshold chosen on validation "
    "for balance; the verdict rates are at the operating point, which accuses as few real photos as it can."
)
_REAL_EDGE = f"`real` below the score of the lowest {MAX_AI_CALLED_REAL:.0%} of validation AI images; `uncertain` between."
OPERATING_POINTS = {
    "per-source": f"`ai` only above the score that at most {MAX_REAL_CALLED_AI:.0%} of the photos of every real "
    f"validation source reach (the worst source, not the pooled rate); {_REAL_EDGE}",
    "new-source": f"`ai` only above the score under which a real source never seen keeps "
    f"{1 - MAX_REAL_CALLED_AI:.0%} of its photos with {NEW_SOURCE_CONFIDENCE:.0%} confidence (a Student-t "
    "prediction bound over the validation real sources' own such scores, in log-odds, so it widens with their "
    f"spread and with how few they are); {_REAL_EDGE}",
}


def limitations(recipe_name: str, window: int) -> list[str]:
    if recipe_name == "probe":
        return [
            f"It scores one {window}x{window} window at native resolution (the centre of larger images; "
            "smaller images are upscaled first), so it sees only part of a large photograph. Upscaling reads "
            f"to it as a real photograph's smoothness, so images of {small_side(window)} px or less on their "
            "shorter side get a threshold and band of their own (`small_image_rule`), and it still catches "
            "fewer AI images among them (see the thumbnail tier).",
            f"Heavy JPEG compression hides what it looks for too, so JPEG files saved at quality "
            f"{HEAVY_COMPRESSION_QUALITY} or less get a threshold and band of their own "
            "(`compressed_image_rule`), and it catches fewer AI images among them (see the 512 px q40 tier). "
            "Other formats (WebP, AVIF) carry no quality it can read: they are decided by the main rule.",
            "Its features are frozen ImageNet features of every stage of EfficientNet-Lite0: no layer of it was "
            "trained on generated images, so it judges texture statistics more than the traces of generation.",
            "On collections it never saw it separates real from AI only partly (see the cross-collection "
            "results): most images get `uncertain`, and a real photograph is called `ai` rarely but not "
            "never (see the worst real source).",
            "Trained on about 3,700 images from about 50 sources; generators and cameras unlike all of them "
            "can be misjudged.",
        ]
    if recipe_name == "adapt":
        return [
            f"It scores one {window}x{window} window at native resolution (the centre of larger images; smaller images "
            "are upscaled first), so it sees a small part of a large photograph.",
            "On collections it never saw it separates real from AI only partly (ROC AUC about 0.75-0.8 in the "
            "cross-collection results): most images get `uncertain`, and a real photograph is called "
            "`ai` rarely but not never (see the worst real source).",
            "Trained on about 3,700 images from about 50 sources; generators and cameras unlike all of them "
            "can be misjudged.",
        ]
    return [
        "The backbone is frozen ImageNet features: it judges how an image looks (texture, lighting, style) more "
        "than the pixel traces of generation, so photographs that look smooth or staged (film scans, studio "
        "and stock photos, downscaled images) are the real photographs it most often calls AI.",
        f"It scores one {window}x{window} window at native resolution (the centre of larger images; smaller images are "
        "upscaled first), so it sees a small part of a large photograph.",
        "Trained on about 2,500 images from 20 sources; the per-source results below are on sources it did "
        "not see, but images from generators and cameras unlike all of them can still be misjudged.",
        "Its threshold, calibration and band were fitted on held-out whole sources; on a new source the "
        "error rates can be higher than those shown.",
    ]


def main() -> None:
    args = build_parser().parse_args()
    args.tag = args.tag or ("probe" if args.recipe == "probe" else "early")
    args.window = args.window or (384 if args.recipe == "probe" else 256)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = link_data(args.data, out / "data")
    protocol, extra = train_and_measure(args, data, out)
    describe(args, out, protocol, extra)
    if args.bundle:
        bundle(out / "run", args.name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", nargs="+", required=True, help="folders with real/ and fake/ and manifest.csv"
    )
    parser.add_argument("--out", default="runs/default", help="work folder (folds, evaluations, the model)")
    parser.add_argument(
        "--recipe",
        choices=("adapt", "probe", "frozen"),
        default="probe",
        help="probe: every stage of the frozen backbone pooled and a logistic regression, on the "
        "cross-collection protocol (CPU, minutes); adapt: the adapted backbone on that protocol; frozen: "
        "frozen features, head search and the source-held-out folds",
    )
    parser.add_argument("--name", default=NAME, help="the model's name (and its bundled folder)")
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument(
        "--window",
        type=int,
        default=None,
        help="the native-resolution window it scores (probe 384, else 256)",
    )
    parser.add_argument(
        "--small-images",
        choices=SMALL_IMAGE_FILLS,
        default="upscale",
        help="probe: an image smaller than the window is upscaled to it, or mirrored at its edges (never "
        "resampled; measured, not adopted: docs/model.md)",
    )
    parser.add_argument("--trials", type=int, default=10, help="frozen: Keras Tuner trials over the head")
    parser.add_argument("--crop", type=int, default=128, help="adapt: native crops it trains on")
    parser.add_argument("--adapt-until", default="block10", help="adapt: last adapted block (or all)")
    parser.add_argument("--adapt-epochs", type=int, default=8, help="adapt: epochs of adaptation")
    parser.add_argument(
        "--tag", default=None, help="the variant's name in the protocol's scores (default: probe, or early)"
    )
    parser.add_argument(
        "--adapted-weights",
        default=None,
        help="adapt: folder of the .npz files a GPU run of scripts/gpu_adapt.sh made; load them, do not train",
    )
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--val-fraction", type=float, default=0.2, help="whole sources held out for validation"
    )
    parser.add_argument(
        "--val-sources",
        nargs="+",
        default=FINAL_VAL_SOURCES,
        help="whole sources the bundled model is calibrated on instead of trained on",
    )
    parser.add_argument(
        "--operating-point",
        choices=OPERATING_POINT_RULES,
        default="new-source",
        help="adapt, probe: where `ai` starts; new-source: a 95%% prediction bound for an unseen real "
        "source's 3%% (per-source with fewer than 3 real sources of 10+ photos); per-source: the worst "
        "validation source's 3%%",
    )
    parser.add_argument("--max-uncertain", type=float, default=0.3)
    parser.add_argument("--max-real-called-ai", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skip-protocol", action="store_true", help="reuse protocol.json in --out")
    parser.add_argument("--baseline", default=None, help="previous default model to measure the same way")
    parser.add_argument(
        "--baseline-data",
        default=".",
        help="sub-folder of the linked data the baseline never saw (e.g. wild-dev)",
    )
    parser.add_argument("--baseline-tiers", nargs="+", default=list(TIERS), choices=list(TIERS))
    parser.add_argument(
        "--adapted-by",
        default="python scripts/pack_crops.py --size 160 --out .gpu-data ...; OUT=runs/gpu bash scripts/gpu_adapt.sh",
        help="adapt: the command that made --adapted-weights (recorded in the metadata)",
    )
    parser.add_argument(
        "--audit", default=None, help="audit.json of scripts/shortcut_audit.py, for the model card"
    )
    parser.add_argument("--bundle", action="store_true", help="install the result as the bundled default")
    return parser


def train_and_measure(args: argparse.Namespace, data: Path, out: Path) -> tuple[dict, dict]:
    """Train the final model as the recipe says, measured on its protocol (and the baseline beside it):
    (the source-held-out protocol, or {}; the metadata the recipe adds)."""
    from realcheck.model.artifacts.artifact import read_metadata, write_json

    run_dir = out / "run"
    extra: dict = {}
    if args.recipe in CROSS_COLLECTION_RECIPES:
        protocol = {}
        extra = cross_collection(args, data, out)
        train_final(args, data, out, final_split_of(args, data))
    else:
        protocol_file = out / "protocol.json"
        if args.skip_protocol and protocol_file.is_file():
            protocol = json.loads(protocol_file.read_text(encoding="utf-8"))
        else:
            protocol = run_protocol(args, data, out)
            write_json(protocol_file, protocol)
        if not (run_dir / "metadata.json").is_file():
            from realcheck.model.data.datasets import discover
            from realcheck.model.data.splitting import split_by_source

            split = split_by_source(
                discover(data).samples, 0.0, 0.0, args.seed, val_sources=set(args.val_sources)
            )
            train_final(args, data, out, split)
    if args.baseline and args.recipe in CROSS_COLLECTION_RECIPES:
        # The previous default on the collection it never saw, beside this recipe's numbers there.
        extra["cross_collection"]["previous_default"] = baseline(
            Path(args.baseline), data / args.baseline_data, out, args.baseline_tiers
        )
    elif args.baseline:
        protocol["baseline"] = baseline(
            Path(args.baseline), data / args.baseline_data, out, args.baseline_tiers
        )
        # This model's held-out predictions on exactly the images the previous default was scored on.
        protocol["baseline"]["this_model"] = same_images(out / "protocol-predictions.csv", args.baseline_data)
        write_json(out / "protocol.json", protocol)
    if protocol:
        protocol_plots(out / "protocol-predictions.csv", read_metadata(run_dir), run_dir / "plots")
    if args.recipe == "adapt" and args.adapted_weights:
        # The recipe as the weights' own run had it (its settings, epochs done, seconds, validation AUC).
        done = json.loads((Path(args.adapted_weights) / "done.json").read_text(encoding="utf-8"))
        trained = done[f"adapt:{args.tag} final"]
        extra["adaptation"] = trained["settings"] | {
            "weights_file": read_metadata(run_dir)["adaptation"]["weights_file"],
            "trained_elsewhere": {key: trained[key] for key in ("fit_seconds", "n_train", "history")}
            | {"command": args.adapted_by},
        }
    if args.audit:
        extra["shortcut_audit"] = audit_summary(json.loads(Path(args.audit).read_text(encoding="utf-8")))
    return protocol, extra


def describe(args: argparse.Namespace, out: Path, protocol: dict, extra: dict) -> None:
    """Export to ONNX, measure its speed, and write the final metadata and model card."""
    from realcheck.model.artifacts.artifact import read_metadata, write_metadata, write_model_card

    run_dir = out / "run"
    realcheck("export", "--model", str(run_dir), "--format", "onnx")
    speed = measure_speed(run_dir, out)
    rates = speed["runtimes"]["onnx"]
    reproduce = " ".join(["python scripts/build_default_model.py", *sys.argv[1:]])
    metadata = (
        read_metadata(run_dir)
        | extra
        | {
            **({"source_holdout": protocol} if protocol else {}),
            "gflop_per_image": speed["gflop_per_image"],
            "inference_speed": (
                f"ONNX Runtime scores {rates['batch_1']['images_per_s']} images/s at batch 1 and "
                f"{rates['batch_8']['images_per_s']} at batch 8 on a {speed['cpu_count']}-core CPU "
                f"({rates['batch_8']['percent_of_fp32_limit']}% of the FP32 limit measured in the same run, "
                f"{speed['gflop_per_image']} GFLOP per image); "
                "`python scripts/bench_inference.py --model DIR --runtimes onnx --batches 1,8 --seconds 10`."
            ),
            "reproduce": reproduce,
            "data_description": ", ".join(Path(d).name for d in args.data),
            "intended_use": INTENDED_USE,
            "known_limitations": limitations(args.recipe, args.window),
        }
    )
    write_metadata(run_dir, metadata)
    write_model_card(run_dir)


def bundle(run_dir: Path, name: str) -> None:
    """Install the run as the bundled default model (only what serving and the model card need)."""
    from realcheck.model.artifacts.artifact import bundled_models_root

    root = bundled_models_root()
    for old in root.iterdir() if root.is_dir() else []:
        shutil.rmtree(old)
    keep = {
        "model.keras",
        "model.onnx",
        "model.onnx.export.json",  # what lets a server trust the shipped export (its model's SHA-256)
        "metadata.json",
        "README.md",
        "config.json",
        "split.csv",
        "plots",
    }
    shutil.copytree(
        run_dir,
        root / name,
        ignore=lambda folder, names: [n for n in names if n not in keep] if Path(folder) == run_dir else [],
    )
    print(f"bundled: {root / name}")


if __name__ == "__main__":
    main()
