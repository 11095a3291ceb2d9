"""Compare backbones under the same head, split and budget (the study's accuracy comparison)."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path

from realcheck.model.errors import RealCheckError
from realcheck.model.settings import TrainConfig
from realcheck.model.training.flows import train

log = logging.getLogger("realcheck")
COLUMNS = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "average_precision")


def compare_backbones(config: TrainConfig, backbones: list[str]) -> list[dict]:
    """Train each backbone with `config` on one shared split; write comparison.{json,md,png} to config.out."""
    if config.distribute == "multiworker":
        raise RealCheckError(
            "compare trains its backbones one after another in one process: run `realcheck train "
            "--distribute multiworker` for each backbone instead"
        )
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    split = config.split
    for backbone in backbones:
        run = replace(
            config,
            backbone=backbone,
            out=str(out / backbone),
            split=split,
            name=f"{config.name or 'realcheck'}-{backbone}",
        )
        started = time.perf_counter()
        result = train(run)
        split = split or str(out / backbone / "split.csv")  # every later backbone sees the same split
        test = result.metadata["metrics"].get("test") or result.metadata["metrics"]["val"]
        rows.append(
            {
                "backbone": backbone,
                **{key: test.get(key) for key in COLUMNS},
                "n_test": test["n"],
                "parameters": result.metadata["parameters"],
                "seconds": round(time.perf_counter() - started, 1),
                "epoch_seconds": result.metadata.get("epoch_seconds", {}),
                "artifact": str(result.artifact_dir),
            }
        )
    (out / "comparison.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    (out / "comparison.md").write_text(markdown_table(rows), encoding="utf-8")
    bar_chart(rows, out / "comparison.png")
    return rows


def markdown_table(rows: list[dict]) -> str:
    """The comparison as a markdown table (test split)."""
    header = "| backbone | " + " | ".join(c.replace("_", " ") for c in COLUMNS) + " | parameters | seconds |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 3)]
    for row in rows:
        values = " | ".join("n/a" if row[c] is None else f"{row[c]:.4f}" for c in COLUMNS)
        lines.append(f"| {row['backbone']} | {values} | {row['parameters']:,} | {row['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def bar_chart(rows: list[dict], path: Path) -> None:
    """Accuracy and balanced accuracy per backbone as a bar chart PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = [row["backbone"] for row in rows]
    positions = np.arange(len(rows))
    figure, axis = plt.subplots(figsize=(5.5, 3.8))
    for offset, key in ((-0.2, "accuracy"), (0.2, "roc_auc")):
        values = [row[key] or 0.0 for row in rows]
        bars = axis.bar(positions + offset, values, width=0.4, label=key.replace("_", " "))
        axis.bar_label(bars, fmt="%.3f", fontsize=8)
    axis.set_xticks(positions, names)
    axis.set_ylim(0, 1.18)
    axis.set_ylabel("test split")
    axis.set_title("backbones under the same head")
    axis.legend(loc="upper center", ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
