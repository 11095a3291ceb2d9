#!/usr/bin/env python
"""The cross-collection protocol: train on one image collection, test on another built independently.

Holding out a source inside one collection is not holding out the world: sources gathered by the same
hands share cameras, galleries and processing. So the number RealCheck steers by is measured across
collections: train on A (`wild-dev` + `dhanush-dev`), test on B (`wild-train`), and B -> A, per source,
clean, on web-degraded copies and as thumbnails (`protocol.TIERS`). Inside each training collection whole
sources are held out for validation; the operating point (threshold, band) and the calibration are chosen
there with the same rule the bundled model uses, so the test collection measures whether that rule holds on
sources nobody tuned on.
Frozen recipes also score their training images out of source (`--out-of-source-folds`), so the rule sees
every real source of the training collection, not only the few that validation holds.

Two steps, so the expensive one can run where the hardware is (a lent GPU, under any Keras backend):

    # scores of every recipe, direction and copy (resumable: finished runs are skipped)
    python scripts/cross_collection.py run --recipe frozen-top frozen-stages adapt --out runs/xc
    # the final model of a recipe on everything but its calibration sources, and its weights
    python scripts/cross_collection.py run --recipe adapt --final --out runs/xc
    # metrics per recipe (and ensembles of them), direction, copy and source (no TensorFlow, seconds)
    python scripts/cross_collection.py report --out runs/xc --ensemble adapt:early+adapt:reg160

Recipes: `frozen-top` (today's: the top layer's pooled ImageNet features, one centre window, a linear
head), `frozen-stages` (mean, std and max of every stage's output), `real-only` (the distance from the
real photos' features alone), `adapt` (partial fine-tuning of the backbone,
`realcheck.model.training.adaptation`). The frozen ones may stack backbones (`--backbone efficientnet_lite0
efficientnet_lite2`), choose their regularisation on the validation sources (`--c 3e-4 1e-3 3e-3 1e-2 5e-2`)
and train on processing-chain copies of their training images too (`--chain-copies 2`).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from realcheck.model.evaluation.protocol import (
    COLLECTIONS,
    CONDITION_TIERS,
    DIRECTIONS,
    OPERATING_POINT_RULES,
    OUT_OF_SOURCE_FOLDS,
    TIERS,
    Item,
    final_split,
    load_collection,
    split_sources,
)
from realcheck.model.labels import REAL
from realcheck.model.settings import SMALL_IMAGE_FILLS

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
RECIPES = ("frozen-top", "frozen-stages", "real-only", "adapt")
# `small`: 1 where the copy was small (`imaging.is_small`); `jpeg_quality`: its file's (`imaging.jpeg_quality`).
# Together they say which image condition's rule, where one was fitted, decides it (`InputTraits.condition`).
SCORE_COLUMNS = [
    "recipe",
    "direction",
    "split",
    "tier",
    "collection",
    "path",
    "label",
    "source",
    "score",
    "small",
    "jpeg_quality",
]

log = logging.getLogger("realcheck")


def read_inputs(items: list[Item], args: argparse.Namespace, copy_of) -> tuple[np.ndarray, list]:
    """The inference path's input (centre window at native resolution, `--window` and `--small-images`) of
    each image's copy (`copy_of(index, item)` gives it: a path, bytes or an image), and each copy's traits
    (`imaging.InputTraits`)."""
    from realcheck.model.data.imaging import read_model_input
    from realcheck.model.settings import InputSpec

    spec = InputSpec(args.window, "crop", args.small_images)
    with ThreadPoolExecutor(args.workers) as pool:
        pixels, traits = zip(*pool.map(lambda pair: read_model_input(copy_of(*pair), spec), enumerate(items)))
    return np.stack(pixels), list(traits)


def model_inputs(items: list[Item], args: argparse.Namespace, tier: str) -> tuple[np.ndarray, list]:
    """`read_inputs` of each image's copy at `tier`."""
    from realcheck.model.data.imaging import WebDegradation

    degradation = WebDegradation.parse(TIERS[tier]) if TIERS[tier] else None
    return read_inputs(
        items, args, lambda _, item: degradation.apply(item.path) if degradation else item.path
    )


def chain_inputs(items: list[Item], args: argparse.Namespace, copy: int) -> np.ndarray:
    """The model input of each image after a random processing chain (`adaptation.ProcessingChain`: downscale,
    JPEG 4:2:0, sometimes twice, alike for both classes), seeded by `--seed`, `copy` and the image's index."""
    from realcheck.model.data.imaging import open_rgb
    from realcheck.model.training.adaptation import ProcessingChain

    chain = ProcessingChain()

    def processed(index: int, item: Item):
        return chain.apply(open_rgb(item.path), np.random.default_rng((args.seed, copy, index)))

    return read_inputs(items, args, processed)[0]


class FrozenRecipe:
    """Frozen ImageNet features of the centre window, of one backbone or several side by side, standardised.

    `frozen-top` and `frozen-stages` put a logistic regression on them (its strength chosen on the
    validation sources when --c names several); `real-only` models the training collection's real photos
    alone (a Ledoit-Wolf Gaussian) and scores an image by its distance from them.
    """

    def __init__(self, kind: str, args: argparse.Namespace):
        import keras

        from realcheck.model.networks.architecture import (
            BackbonePreprocessing,
            build_backbone,
            pooled_stages,
        )

        self.kind, self.args = kind, args
        image = keras.Input((None, None, 3))
        outputs = []
        for name in args.backbone:
            base = build_backbone(name, None, "imagenet")
            pixels = BackbonePreprocessing("symmetric")(image)
            if kind == "frozen-top":
                outputs.append(keras.layers.GlobalAveragePooling2D()(base(pixels)))
                continue
            outputs.append(pooled_stages(base, name, pixels, prefix=f"{name}_"))
        self.features = keras.Model(
            image, keras.ops.concatenate(outputs, axis=-1) if len(outputs) > 1 else outputs[0]
        )

    def embed(self, batch: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [
                np.asarray(self.features.predict_on_batch(batch[i : i + 32].astype(np.float32)))
                for i in range(0, len(batch), 32)
            ]
        )

    def fit(self, train: list[Item], val: list[Item]) -> None:
        from realcheck.model.evaluation.protocol import (
            fit_probe,
            out_of_source_scores,
            probe_fitter,
            with_copies,
        )

        pixels, clean_traits = model_inputs(train, self.args, "clean")
        x = self.embed(pixels)
        del pixels  # a training collection's windows take about a gigabyte
        labels = np.array([i.label for i in train])
        sources = np.array([i.source for i in train])
        # Processing-chain copies are trained on beside the images (and by every out-of-source fold model).
        trained_copies = [
            self.embed(chain_inputs(train, self.args, copy)) for copy in range(1, self.args.chain_copies + 1)
        ]
        training = with_copies(x, labels, sources, trained_copies)
        if self.kind == "real-only":
            self.scorer = fit_real_only(*training)
            self.record = {"real_images": int(np.sum(labels == REAL))}
            refit = fit_real_only
        else:
            strengths = tuple(self.args.c)
            held_out = None
            if len(strengths) > 1:
                held_out = (
                    self.embed(model_inputs(val, self.args, "clean")[0]),
                    np.array([i.label for i in val]),
                )
            balance = self.args.balance_sources
            classifier, c, val_auc = fit_probe(
                training[:2], held_out, strengths, training[2] if balance else None
            )
            self.scorer = lambda features: classifier.predict_proba(features)[:, 1]
            self.record = {"c": c, "validation_auc": val_auc, "source_balanced": balance}
            refit = probe_fitter(c, balance)
        self.record["chain_copies"] = len(trained_copies)
        if self.args.out_of_source_folds:
            # The copies of each image condition too, for the rules the report fits on them.
            copies = {}  # tier -> (features, traits), embedded one tier at a time to bound the memory
            for tier in CONDITION_TIERS.values():
                pixels, traits = model_inputs(train, self.args, tier)
                copies[tier] = (self.embed(pixels), traits)
                del pixels
            folds, seed = self.args.out_of_source_folds, self.args.seed
            embedded = [features for features, _ in copies.values()]
            scores = out_of_source_scores(refit, x, labels, sources, folds, seed, embedded, trained_copies)
            if scores is not None:
                traits = [clean_traits] + [t for _, t in copies.values()]
                self.out_of_source = dict(zip(["clean", *copies], zip(scores, traits)))

    def score(self, batch: np.ndarray) -> np.ndarray:
        return self.scorer(self.embed(batch))


def fit_real_only(x: np.ndarray, labels: np.ndarray, sources: np.ndarray | None = None):
    """A Ledoit-Wolf Gaussian on the real photos' standardised features; an image scores by its log
    Mahalanobis distance from them, centred on the typical real photo's (farther: more likely AI). Sources
    play no part."""
    from sklearn.covariance import LedoitWolf
    from sklearn.preprocessing import StandardScaler

    real = x[labels == REAL]
    scaler = StandardScaler().fit(real)
    gaussian = LedoitWolf().fit(scaler.transform(real))

    def distance(features: np.ndarray) -> np.ndarray:
        return np.log(gaussian.mahalanobis(scaler.transform(features)))

    typical = float(np.median(distance(real)))
    return lambda features: 1 / (1 + np.exp(-(distance(features) - typical)))


class AdaptRecipe:
    """Partial fine-tuning of the backbone (`realcheck.model.training.adaptation`), scored as the product scores."""

    def __init__(self, args: argparse.Namespace, stem: str):
        from realcheck.model.training.adaptation import AdaptSettings

        self.args, self.stem = args, stem  # stem: the name of its weights file (.npz)
        self.settings = AdaptSettings(
            crop=args.crop,
            batch_size=args.batch_size,
            crops_per_image=args.crops_per_image,
            head_epochs=args.head_epochs,
            epochs=args.epochs,
            learning_rate=args.learning_rate,
            trainable_until=args.trainable_until,
            l2sp=args.l2sp,
            shuffle_probability=args.shuffle_probability,
            seconds=args.seconds,
        )
        self.record = self.settings.to_dict()

    def fit(self, train: list[Item], val: list[Item]) -> None:
        import keras

        from realcheck.model.networks.architecture import build_model
        from realcheck.model.training import adaptation

        keras.utils.set_random_seed(self.args.seed)
        self.model = build_model(
            self.args.backbone[0], self.settings.crop, "imagenet", adaptation.ADAPT_HEAD, input_mode="crop"
        )
        if self.args.from_weights:  # trained elsewhere (a lent GPU): load, do not train
            with np.load(self.args.from_weights / f"{self.stem}.npz") as saved:
                adaptation.load_adapted_weights(self.model, dict(saved))
            self.history = None
            return
        self.history = adaptation.adapt_on_files(
            self.model,
            [(i.path, i.label) for i in train],
            [(i.path, i.label) for i in val],
            self.settings,
            self.args.seed,
            workers=self.args.workers,
            loader_processes=self.args.loader_processes,
        )

    def score(self, batch: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [
                np.asarray(self.model.predict_on_batch(batch[i : i + 64].astype(np.float32))).reshape(-1)
                for i in range(0, len(batch), 64)
            ]
        )


def make_recipe(name: str, args: argparse.Namespace, stem: str):
    return AdaptRecipe(args, stem) if name == "adapt" else FrozenRecipe(name, args)


def replace_scores(path: Path, variant: str, direction: str, rows: list[dict]) -> None:
    """One job's rows in scores.csv, replacing any its earlier, unfinished run left (written to a copy first)."""
    kept = []
    if path.is_file():
        with path.open(newline="", encoding="utf-8") as handle:
            kept = [
                r for r in csv.DictReader(handle) if (r["recipe"], r["direction"]) != (variant, direction)
            ]
    partial = path.with_suffix(".partial")
    with partial.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=SCORE_COLUMNS)
        writer.writeheader()
        writer.writerows(kept + rows)
    partial.replace(path)


def score_rows(recipe, name: str, direction: str, split: str, items: list[Item], tiers, args) -> list[dict]:
    rows = []
    for tier in tiers:
        scores, traits = [], []
        for start in range(0, len(items), 256):
            pixels, chunk_traits = model_inputs(items[start : start + 256], args, tier)
            scores.append(recipe.score(pixels))
            traits += chunk_traits
        rows += rows_of(name, direction, split, tier, items, np.concatenate(scores), traits, args.data)
    return rows


def rows_of(
    name: str, direction: str, split: str, tier: str, items: list[Item], scores, traits, data: Path
) -> list[dict]:
    return [
        {
            "recipe": name,
            "direction": direction,
            "split": split,
            "tier": tier,
            "collection": item.collection,
            "path": str(Path(item.path).relative_to(data.resolve())),
            "label": item.label,
            "source": item.source,
            "score": f"{score:.6f}",
            "small": int(trait.small),
            "jpeg_quality": "" if trait.jpeg_quality is None else trait.jpeg_quality,
        }
        for item, score, trait in zip(items, scores, traits)
    ]


def run(args: argparse.Namespace) -> None:
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    collections = {name: load_collection(name, args.data.resolve()) for name in COLLECTIONS}
    if args.limit:  # quick trials: a seeded share of each collection
        rng = np.random.default_rng(args.seed)
        collections = {
            k: [v[i] for i in sorted(rng.permutation(len(v))[: args.limit])] for k, v in collections.items()
        }
    done_file = out / "done.json"
    done = json.loads(done_file.read_text()) if done_file.is_file() else {}
    # What makes two runs of a job the same: a finished job is skipped only when these agree.
    run_key = {
        "limit": args.limit,
        "window": args.window,
        "seed": args.seed,
        "scored": args.score,
        "tiers": args.tiers,
    } | ({"small_images": args.small_images} if args.small_images != "upscale" else {})
    for name in args.recipe:
        variant = f"{name}:{args.tag}" if args.tag else name
        job_key = run_key | (
            {}
            if name == "adapt"
            else {"out_of_source_folds": args.out_of_source_folds}
            | ({"balance_sources": True} if args.balance_sources else {})
            | ({"chain_copies": args.chain_copies} if args.chain_copies else {})
        )
        jobs = ["final"] if args.final else list(DIRECTIONS)
        for direction in jobs:
            key = f"{variant} {direction}"
            if key in done:
                if done[key].get("run", job_key) != job_key:
                    sys.exit(
                        f"{key} was done in {out} with {done[key]['run']}, not {job_key}: use another --out"
                    )
                log.info("%s: done already", key)
                continue
            started = time.monotonic()
            recipe = make_recipe(
                name, args, stem=f"{variant}-{direction}".replace(":", "-").replace("->", "-")
            )
            if direction == "final":
                parts = final_split(collections["A"] + collections["B"], args.seed)
                recipe.fit(parts["train"], parts["calibration"])
                evaluated = [("calibration", parts["calibration"], ["clean", *CONDITION_TIERS.values()])]
                evaluated.append(("in_distribution", parts["in_distribution"], ["clean"]))
            else:
                train_on, test_on = DIRECTIONS[direction]
                train, val = split_sources(collections[train_on], args.val_fraction, args.seed)
                recipe.fit(train, val)
                evaluated = [
                    ("val", val, ["clean", *CONDITION_TIERS.values()]),
                    ("test", collections[test_on], args.tiers),
                ]
            fitted = time.monotonic()
            if args.score:
                rows = [
                    row
                    for s, items, tiers in evaluated
                    for row in score_rows(recipe, variant, direction, s, items, tiers, args)
                ]
                trained = parts["train"] if direction == "final" else train
                for tier, (scores, traits) in (getattr(recipe, "out_of_source", None) or {}).items():
                    rows += rows_of(
                        variant, direction, "out_of_source", tier, trained, scores, traits, args.data
                    )
                replace_scores(out / "scores.csv", variant, direction, rows)
            if name == "adapt" and args.save_adapted and not args.from_weights:
                from realcheck.model.training.adaptation import adapted_weights

                np.savez(out / f"{recipe.stem}.npz", **adapted_weights(recipe.model, args.trainable_until))
            done[key] = {
                "run": job_key,
                "fit_seconds": round(fitted - started, 1),
                "score_seconds": round(time.monotonic() - fitted, 1),
                "n_train": len(parts["train"]) if direction == "final" else len(train),
                "history": getattr(recipe, "history", None),
                "settings": recipe.record,
            }
            done_file.write_text(json.dumps(done, indent=1))
            log.info(
                "%s: fitted in %.0f s, scored in %.0f s", key, fitted - started, time.monotonic() - fitted
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    runner = sub.add_parser("run", help="train and score (resumable)")
    runner.add_argument("--recipe", nargs="+", choices=RECIPES, default=list(RECIPES))
    runner.add_argument("--data", type=Path, default=SHARED, help="folder holding the collections' folders")
    runner.add_argument("--out", type=Path, default=Path("runs/cross-collection"))
    runner.add_argument(
        "--final", action="store_true", help="train the final model (all but calibration sources)"
    )
    runner.add_argument(
        "--backbone",
        nargs="+",
        choices=["efficientnet_lite0", "efficientnet_lite2"],
        default=["efficientnet_lite0"],
        help="frozen recipes: several put their features side by side (adapt: one)",
    )
    runner.add_argument("--window", type=int, default=256, help="the centre window scored (inference input)")
    runner.add_argument(
        "--small-images",
        choices=SMALL_IMAGE_FILLS,
        default="upscale",
        help="an image smaller than the window: upscaled to it, or mirrored at its edges (never resampled)",
    )
    runner.add_argument("--val-fraction", type=float, default=0.2)
    runner.add_argument("--seed", type=int, default=42)
    runner.add_argument("--limit", type=int, default=0, help="images per collection (quick trials)")
    runner.add_argument("--workers", type=int, default=2, help="decode threads")
    runner.add_argument(
        "--tiers", nargs="+", choices=list(TIERS), default=list(TIERS), help="copies to score"
    )
    runner.add_argument("--tag", default="", help="names this variant of a recipe in the scores")
    runner.add_argument(
        "--save-adapted", action="store_true", help="adapt: save each model's trained weights (.npz)"
    )
    runner.add_argument(
        "--from-weights", type=Path, default=None, help="adapt: load those .npz files, do not train"
    )
    runner.add_argument("--no-score", dest="score", action="store_false", help="train (and save) only")
    runner.add_argument(
        "--c",
        type=float,
        nargs="+",
        default=[0.05],
        help="frozen recipes: inverse L2 strength; several are chosen among by validation AUC",
    )
    runner.add_argument(
        "--out-of-source-folds",
        type=int,
        default=OUT_OF_SOURCE_FOLDS,
        help="frozen recipes: also score the training images out of source in this many folds, so the "
        "operating point sees every real source (0: validation sources only)",
    )
    runner.add_argument(
        "--balance-sources",
        action="store_true",
        help="frozen-top, frozen-stages: every source weighs the same within its class",
    )
    runner.add_argument(
        "--chain-copies",
        type=int,
        default=0,
        help="frozen recipes: also train on this many copies of each training image, each through a random "
        "processing chain (downscale, JPEG 4:2:0 q60-98, sometimes twice), alike for both classes",
    )
    adapt = runner.add_argument_group("adapt recipe")
    adapt.add_argument("--crop", type=int, default=256)
    adapt.add_argument("--batch-size", type=int, default=32)
    adapt.add_argument("--crops-per-image", type=int, default=2)
    adapt.add_argument("--head-epochs", type=int, default=2)
    adapt.add_argument("--epochs", type=int, default=10)
    adapt.add_argument("--learning-rate", type=float, default=2e-4)
    adapt.add_argument("--trainable-until", default="block10")
    adapt.add_argument("--l2sp", type=float, default=1e-2)
    adapt.add_argument("--shuffle-probability", type=float, default=0.25)
    adapt.add_argument("--seconds", type=float, default=None, help="time limit of each adaptation phase")
    adapt.add_argument("--loader-processes", action="store_true", help="crop in --workers - 2 processes")
    reporter = sub.add_parser("report", help="metrics from the scores")
    reporter.add_argument("--out", type=Path, default=Path("runs/cross-collection"))
    reporter.add_argument(
        "--ensemble",
        nargs="+",
        default=[],
        metavar="A+B",
        help="also report these ensembles of recipes (mean log-odds), e.g. adapt:early+adapt:reg160",
    )
    reporter.add_argument(
        "--operating-point",
        choices=OPERATING_POINT_RULES,
        default="per-source",
        help="per-source: the worst validation source's 3%%; new-source: a 95%% prediction bound for an "
        "unseen source's 3%%, from the spread of the validation sources'",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    if args.command == "run":
        if "adapt" in args.recipe and len(args.backbone) > 1:
            parser.error("--recipe adapt trains one --backbone")
        run(args)
    else:
        from realcheck.model.evaluation.protocol import write_report

        write_report(args.out, tuple(e.split("+") for e in args.ensemble), args.operating_point)


if __name__ == "__main__":
    main()
