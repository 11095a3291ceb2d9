"""`realcheck evaluate`: score any labelled folder or DeepGuardDB tree with an artifact."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from realcheck.model.artifacts.artifact import read_metadata, write_json
from realcheck.model.data.datasets import discover
from realcheck.model.data.imaging import WebDegradation
from realcheck.model.data.splitting import load_manifest
from realcheck.model.errors import DataError, ImageDecodeError
from realcheck.model.evaluation import measures
from realcheck.model.scoring.inference import load_detector

log = logging.getLogger("realcheck")


def evaluate_folder(
    model_dir: str | Path,
    data: str | Path,
    subset: str = "all",
    out: str | Path | None = None,
    batch_size: int = 32,
    degradation: WebDegradation | None = None,
    label: int | None = None,
) -> dict:
    """Metrics of the artifact on the labelled images under `data`, through the inference path.

    `data` may hold one class only (a folder of one generator's images, or of one camera's photos): the
    report then gives that class's rate (AI caught, or real photographs called AI). `label` labels every
    image under `data` (for a folder without class folders). Results are broken down per source (see
    `discover_folders`). `subset` other than "all" keeps only that split of the artifact's split.csv (for the
    data it was trained on). `degradation` scores web-degraded copies (made in memory) instead of the
    files. With `out`, writes evaluation.json, predictions.csv and the plots there.
    """
    read_metadata(model_dir)  # a wrong --model fails in a line, before the images are read
    discovery = discover(data, both_classes=False, label=label)
    detector = load_detector(model_dir)
    samples = discovery.samples
    if subset != "all":
        manifest = Path(model_dir) / "split.csv"
        if not manifest.is_file():
            raise DataError(f"--subset {subset} needs {manifest}, which this artifact does not have")
        samples = load_manifest(manifest, available=samples)[subset]
        if not samples:
            raise DataError(f"no image of the {subset} split of {model_dir} is under {data}")
    log.info("scoring %d images with %s %s", len(samples), detector.name, detector.version)
    paths = [discovery.root / s.path for s in samples]
    sources = paths if degradation is None else (_degraded(path, degradation) for path in paths)
    predictions = detector.predict(sources, batch_size=batch_size)
    failed = [(s, p) for s, p in zip(samples, predictions) if not p.ok]
    kept = [(s, p) for s, p in zip(samples, predictions) if p.ok]
    labels = np.array([s.label for s, _ in kept], dtype=int)
    scores = np.array([p.score for _, p in kept], dtype=np.float64)
    conditions = [p.image_rule for _, p in kept]
    result = measures.compute_metrics(labels, scores, detector.rules, [s.source for s, _ in kept], conditions)
    result |= {
        "model": {"name": detector.name, "version": detector.version},
        "data": {
            "root": str(discovery.root),
            "layout": discovery.layout,
            "subset": subset,
            "degradation": str(degradation) if degradation else None,
        },
        "skipped": len(discovery.skipped) + len(failed),
    }
    if out:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "evaluation.json", result)
        write_json(
            out / "skipped.json", discovery.skipped + [{"path": s.path, "reason": p.error} for s, p in failed]
        )
        with (out / "predictions.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["path", "label", "source", "score", "verdict"])
            for sample, prediction in kept:
                writer.writerow(
                    [
                        sample.path,
                        sample.label_name,
                        sample.source,
                        f"{prediction.score:.6f}",
                        prediction.verdict,
                    ]
                )
        measures.save_plots(labels, scores, result, out / "plots", title=Path(data).name)
    return result


def _degraded(path: Path, degradation: WebDegradation) -> bytes | Path:
    try:
        return degradation.apply(path)
    except ImageDecodeError:
        return path  # the detector reports the same decode error for the original file
