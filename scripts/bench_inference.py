#!/usr/bin/env python
"""Model throughput per runtime at batch 1, 8 and 32, against the machine's FP32 peak measured in the same run.

Runtimes: ONNX Runtime (the server's CPU path), TensorFlow through the Detector's compiled forward pass (the
server's GPU path), and Keras `model.predict` (the naive way). The FP32 peak is the best rate of a large
matrix product; each runtime's images/s is also given as a percentage of the FP32 limit
(peak / FLOPs per image). Prints one JSON object.

    python scripts/bench_inference.py                      # untrained 224-px ResNet-50, built once in runs/
    python scripts/bench_inference.py --model ARTIFACT --seconds 10 --out bench_inference.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def measure(run, batch, seconds: float, max_calls: int = 10_000) -> float:
    """Images/s of `run(batch)` over about `seconds` (after one warm-up call)."""
    run(batch)
    calls = 0
    started = time.perf_counter()
    while calls < max_calls and (calls < 2 or time.perf_counter() - started < seconds):
        run(batch)
        calls += 1
    return calls * len(batch) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", default=None, help="artifact folder (default: an untrained 224-px ResNet-50)"
    )
    parser.add_argument("--batches", default="1,8,32", help="batch sizes (comma-separated)")
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="measuring time per runtime and batch size"
    )
    parser.add_argument("--runtimes", default="onnx,tensorflow,keras-predict")
    parser.add_argument("--cache-dir", default=None, help="ONNX export cache (default ~/.cache/realcheck)")
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args()

    import benchlib
    import numpy as np

    from realcheck.model.artifacts.artifact import read_metadata
    from realcheck.model.scoring.inference import load_detector
    from realcheck.model.scoring.runtimes import OnnxRuntime
    from realcheck.server.backends import ensure_onnx_export
    from realcheck.server.config import ServerConfig

    model_dir = Path(args.model) if args.model else benchlib.ensure_artifact()
    metadata = read_metadata(model_dir)
    size = int(metadata["input_size"])
    batches = [int(b) for b in args.batches.split(",")]
    wanted = [r.strip() for r in args.runtimes.split(",") if r.strip()]

    peak = benchlib.fp32_peak_gflops()
    gflop = benchlib.backbone_gflop_per_image(metadata["backbone"], size)
    limit = peak / gflop if gflop else None
    rng = np.random.default_rng(0)
    inputs = {b: rng.uniform(0, 255, (b, size, size, 3)).astype(np.float32) for b in batches}

    runners = {}
    if "onnx" in wanted:
        cache = ServerConfig(cache_dir=args.cache_dir).resolved_cache_dir
        runners["onnx"] = OnnxRuntime(ensure_onnx_export(model_dir, cache, metadata["name"])).scores
    if "tensorflow" in wanted or "keras-predict" in wanted:
        detector = load_detector(model_dir, runtime="keras")
        if "tensorflow" in wanted:
            runners["tensorflow"] = detector.scores
        if "keras-predict" in wanted:
            runners["keras-predict"] = lambda batch: detector.runtime.model.predict(batch, verbose=0)

    results = {}
    for name, run in runners.items():
        results[name] = {}
        for batch in batches:
            rate = measure(run, inputs[batch], args.seconds)
            results[name][f"batch_{batch}"] = {
                "images_per_s": round(rate, 2),
                "percent_of_fp32_limit": round(100 * rate / limit, 1) if limit else None,
            }
        print(
            f"{name}: " + ", ".join(f"{k} {v['images_per_s']} img/s" for k, v in results[name].items()),
            file=sys.stderr,
        )

    report = {
        "model": {"name": metadata["name"], "version": metadata["version"], "input_size": size},
        "cpu_count": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "fp32_peak_gflops": round(peak, 1),
        "gflop_per_image": round(gflop, 2) if gflop else None,
        "fp32_limit_images_per_s": round(limit, 1) if limit else None,
        "runtimes": results,
    }
    benchlib.write_report(report, args.out)


if __name__ == "__main__":
    main()
