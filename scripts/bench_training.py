#!/usr/bin/env python
"""Does the input pipeline starve training? fit() on the real pipeline vs the raw train-step rate.

Both runs use the same model, batch size and number of steps. The raw rate feeds batches that are already
in memory as float32 tensors (one pass of the pipeline, taken before timing: no decoding, no augmentation
while timed); the pipeline rate reads the real images through `make_dataset` (parallel decode, cache,
augmentation, prefetch) after one warm-up epoch fills the cache. The two alternate for --repeats rounds and
each keeps its best time. Prints JSON with images/s for both and their ratio (1.0 = no starvation).

    python scripts/bench_training.py --data ../shared/data/dhanush-dev --training-size 224 --steps 30
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    args = build_parser().parse_args()
    import keras

    from realcheck.model.networks.architecture import build_model
    from realcheck.model.training.phases import compile_for_training

    keras.utils.set_random_seed(0)
    pipeline, raw, count = datasets(args)
    steps = int(pipeline.cardinality())
    model = build_model(args.backbone, args.training_size, "none", train_backbone=args.mode == "full")
    compile_for_training(model, 1e-3, steps * 10)
    model.fit(raw.take(2), epochs=1, verbose=0)  # trace and compile the train step once

    def timed_fit(dataset) -> float:
        started = time.perf_counter()
        model.fit(dataset, epochs=1, verbose=0)
        return time.perf_counter() - started

    warm_up = timed_fit(pipeline)  # first fit on this dataset object (iterator set-up)
    # Alternate the two and keep each one's best time, so a burst of other work on a shared machine
    # slows one round of both rather than one side of the comparison.
    raw_times, pipeline_times = [], []
    for _ in range(args.repeats):
        raw_times.append(timed_fit(raw))
        pipeline_times.append(timed_fit(pipeline))
    result = {
        "backbone": args.backbone,
        "mode": args.mode,
        "training_size": args.training_size,
        "batch_size": args.batch_size,
        "steps": steps,
        "augment": not args.no_augment,
        "cpu_count": os.cpu_count(),
        "warm_up_seconds": round(warm_up, 2),
        "repeats": args.repeats,
        "raw_seconds_each": [round(t, 2) for t in raw_times],
        "pipeline_seconds_each": [round(t, 2) for t in pipeline_times],
        "raw_step_images_per_second": round(count / min(raw_times), 2),
        "pipeline_images_per_second": round(count / min(pipeline_times), 2),
    }
    result["pipeline_to_raw_ratio"] = round(
        result["pipeline_images_per_second"] / result["raw_step_images_per_second"], 3
    )
    print(json.dumps(result, indent=2))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", required=True)
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--training-size", "--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=30, help="training steps measured per mode")
    parser.add_argument(
        "--mode",
        choices=("frozen", "full"),
        default="frozen",
        help="frozen backbone (head training) or the whole network (from scratch)",
    )
    parser.add_argument("--no-augment", action="store_true")
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds; the best of each is kept")
    return parser


def datasets(args: argparse.Namespace):
    """(the real pipeline, the same batches in memory and cached, how many images an epoch has)."""
    import numpy as np
    import tensorflow as tf

    from realcheck.model.data.datasets import discover
    from realcheck.model.data.pipeline import make_dataset
    from realcheck.model.settings import AugmentConfig, InputSpec

    samples = discover(args.data).samples
    needed = args.steps * args.batch_size
    samples = [samples[i] for i in np.random.default_rng(0).permutation(len(samples))[:needed]]
    pipeline = make_dataset(
        samples,
        args.data,
        InputSpec(args.training_size),
        args.batch_size,
        training=True,
        augment=AugmentConfig(enabled=not args.no_augment),
    )
    # Distinct batches, not one batch repeated: a model that memorises a single batch gets tiny gradients,
    # and their arithmetic is not representative.
    in_memory = list(pipeline)
    raw = tf.data.Dataset.from_tensor_slices(
        (np.concatenate([x for x, _ in in_memory]), np.concatenate([y for _, y in in_memory]))
    )
    raw = raw.batch(args.batch_size).cache()
    for _ in raw:  # fill the cache before timing
        pass
    return pipeline, raw, sum(int(x.shape[0]) for x, _ in in_memory)


if __name__ == "__main__":
    main()
