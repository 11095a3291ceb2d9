"""scripts/cross_collection.py end to end on two tiny collections, in its own process."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import imagegen
import pytest

from realcheck.model.evaluation.protocol import COLLECTIONS

pytestmark = pytest.mark.heavy_children  # the script's process holds an ImageNet backbone

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "cross_collection.py"


def make_collections(root: Path) -> Path:
    """Every collection folder the protocol reads, four sources per class (sub-folders name them)."""
    seed = 0
    for folders in COLLECTIONS.values():
        for folder in folders:
            for kind, label in (("real", "real"), ("fake", "ai")):
                for source in range(4):
                    for index in range(4):
                        seed += 1
                        path = root / folder / kind / f"{folder}-{kind}{source}" / f"{index}.png"
                        imagegen.write_image(path, label, size=40, seed=seed)
    return root


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600, check=False
    )


def test_a_frozen_probe_is_measured_across_collections_with_an_out_of_source_rule(tmp_path):
    data, out = make_collections(tmp_path / "data"), tmp_path / "xc"
    run = [
        "run", "--data", str(data), "--out", str(out), "--recipe", "frozen-stages", "--window", "64",
        "--tiers", "clean", "--c", "0.01", "0.1", "--balance-sources", "--small-images", "mirror",
        "--chain-copies", "1", "--out-of-source-folds", "3",
    ]  # fmt: skip
    done = run_script(*run)
    assert done.returncode == 0, done.stderr[-3000:]
    with (out / "scores.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["split"] for row in rows} == {"val", "test", "out_of_source"}
    # The fitting splits in the copies of each image condition too, for their rules: thumbnails and 512:40
    # copies. Every 40-px image is small for the 64-px window (two thirds of it: 42 px).
    copies = {(row["split"], row["tier"]) for row in rows}
    conditions = [("val", "web_256_q75"), ("out_of_source", "web_256_q75"), ("out_of_source", "web_512_q40")]
    assert set(conditions) <= copies
    assert {row["small"] for row in rows} == {"1"}
    qualities = {row["tier"]: row["jpeg_quality"] for row in rows}  # the PNG files have none
    assert qualities == {"clean": "", "web_256_q75": "75", "web_512_q40": "40"}
    record = json.loads((out / "done.json").read_text())["frozen-stages A->B"]
    assert record["run"]["out_of_source_folds"] == 3 and record["settings"]["c"] in (0.01, 0.1)
    assert record["run"]["balance_sources"] and record["settings"]["source_balanced"]
    assert record["run"]["small_images"] == "mirror"
    assert record["run"]["chain_copies"] == 1 and record["settings"]["chain_copies"] == 1

    assert run_script(*run).returncode == 0  # finished jobs are skipped
    changed = run_script(*run[:-1], "5")
    assert changed.returncode != 0 and "use another --out" in changed.stderr

    reported = run_script("report", "--out", str(out), "--operating-point", "new-source")
    assert reported.returncode == 0, reported.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())["frozen-stages"]
    for direction in ("A->B", "B->A"):
        assert report[direction]["rule_fitted_on"]["splits"] == ["val", "out_of_source"]
        assert report[direction]["rule"] == "new-source"
        assert report[direction]["small_image_rule"]["threshold"] >= 0.5
        assert report[direction]["compressed_image_rule"]["threshold"] >= 0.5
        assert report[direction]["clean"]["n"] == 2 * 4 * 4 * (2 if direction == "B->A" else 1)
