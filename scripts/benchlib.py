"""Shared by the serving benchmarks: a 224-px artifact to measure with, JPEGs to send, the FP32 peak."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np

DEFAULT_ARTIFACT = Path("runs") / "bench-resnet50-224"


def ensure_artifact(folder: str | Path = DEFAULT_ARTIFACT, size: int = 224) -> Path:
    """An untrained ResNet-50 artifact at `size` px (same speed as a trained one), built once."""
    folder = Path(folder)
    if (folder / "metadata.json").is_file() and (folder / "model.keras").is_file():
        return folder
    from realcheck.model.artifacts.artifact import save_untrained_artifact

    return save_untrained_artifact(folder, "resnet50", size, "realcheck-bench", f"untrained-{size}")


def jpeg_images(
    count: int, folder: str | Path | None = None, size: int = 512, quality: int = 95
) -> list[bytes]:
    """`count` JPEG files from `folder` (cycled), or photo-like synthetic 512x512 JPEGs at quality 95."""
    if folder:
        paths = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in {".jpg", ".jpeg"})
        if not paths:
            raise SystemExit(f"no JPEG files under {folder}")
        return [paths[i % len(paths)].read_bytes() for i in range(count)]
    from PIL import Image

    rng = np.random.default_rng(0)
    images = []
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    for _ in range(count):
        base = np.stack(
            [x * rng.uniform(60, 200), y * rng.uniform(60, 200), (x + y) * rng.uniform(30, 100)], -1
        )
        base += rng.normal(0, 12, base.shape)
        buffer = io.BytesIO()
        Image.fromarray(np.clip(base + 30, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=quality)
        images.append(buffer.getvalue())
    return images


def fp32_peak_gflops(n: int = 4096, seconds: float = 3.0) -> float:
    """The machine's FP32 matrix-product rate (GFLOP/s): best of repeated n x n products through NumPy's BLAS."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b  # warm-up: thread pool and caches
    best = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - started) / 1e9)
    return best


def backbone_gflop_per_image(backbone: str = "resnet50", size: int = 224) -> float:
    """Multiply-adds x 2 of a RealCheck backbone's convolutions at `size` px, counted from Keras (the head is
    negligible)."""
    import keras

    from realcheck.model.networks.architecture import build_backbone

    model = build_backbone(backbone, size, "none")
    flops = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            _, height, width, channels = layer.output.shape
            kernel_h, kernel_w = layer.kernel_size
            flops += 2 * kernel_h * kernel_w * channels * height * width
        elif isinstance(layer, keras.layers.Conv2D):
            _, height, width, channels_out = layer.output.shape
            kernel_h, kernel_w = layer.kernel_size
            channels_in = layer.input.shape[-1]
            flops += 2 * kernel_h * kernel_w * channels_in * channels_out * height * width
    return flops / 1e9


def percentiles(values: list[float]) -> dict:
    """p50/p95/p99 (and mean) in milliseconds of latencies given in seconds."""
    if not values:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "mean_ms": None}
    array = np.asarray(values) * 1000.0
    return {
        "p50_ms": round(float(np.percentile(array, 50)), 2),
        "p95_ms": round(float(np.percentile(array, 95)), 2),
        "p99_ms": round(float(np.percentile(array, 99)), 2),
        "mean_ms": round(float(array.mean()), 2),
    }


def write_report(report: dict, out: str | Path | None) -> None:
    """Print the report as JSON, and write it to `out` when given."""
    text = json.dumps(report, indent=2)
    print(text)
    if out:
        Path(out).write_text(text + "\n", encoding="utf-8")
