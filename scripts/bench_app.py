#!/usr/bin/env python
"""Time the upload page's first screen, and its first verdict, in a fresh process each run.

Each run starts a new Python process that renders the app with Streamlit's AppTest (the script run a
browser's first visit triggers, without the browser): the first page (model loaded, uploader shown), then
one uploaded JPEG with its verdict, with and without the Grad-CAM heatmap. It reports the seconds from the
process's start, its peak resident memory, and whether TensorFlow was imported by then. Prints one JSON
object.

    python scripts/bench_app.py --runs 3
    python scripts/bench_app.py --model runs/my-artifact --runs 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

# Runs in the child: everything it imports counts, as it does for `realcheck app`.
CHILD = r"""
import io, json, resource, sys, time
started = time.perf_counter()
from PIL import Image
from streamlit.testing.v1 import AppTest
from realcheck.streamlit_app.launch import APP_PATH

def peak_mb():
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)

report = {}
app = AppTest.from_file(str(APP_PATH), default_timeout=600)
app.run()
assert not app.exception, [e.value for e in app.exception]
report["first_page"] = {"s": time.perf_counter() - started, "peak_mb": peak_mb(),
                        "tensorflow": "tensorflow" in sys.modules}
picture = io.BytesIO()
Image.new("RGB", (640, 480), (120, 90, 60)).save(picture, format="JPEG", quality=90)
for heatmaps in (False, True):
    app.toggle[0].set_value(heatmaps)
    app.file_uploader[0].set_value([(f"photo-{heatmaps}.jpg", picture.getvalue(), "image/jpeg")])
    step = time.perf_counter()
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    report["verdict_with_heatmap" if heatmaps else "verdict"] = {
        "s": time.perf_counter() - step, "peak_mb": peak_mb(), "tensorflow": "tensorflow" in sys.modules}
print(json.dumps(report))
"""


def run_once(model: Path | None) -> dict:
    env = dict(os.environ)
    if model is not None:
        env["REALCHECK_MODEL"] = str(model)
    done = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=1200, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"the app run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", type=Path, default=None, help="artifact folder (default: the bundled model)"
    )
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = [run_once(args.model) for _ in range(max(1, args.runs))]
    summary = {
        step: {
            "median_s": round(statistics.median(run[step]["s"] for run in runs), 2),
            "peak_mb": max(run[step]["peak_mb"] for run in runs),
            "tensorflow_imported": any(run[step]["tensorflow"] for run in runs),
        }
        for step in runs[0]
    }
    print(json.dumps({"model": str(args.model or "bundled"), "runs": len(runs), **summary}, indent=2))


if __name__ == "__main__":
    main()
