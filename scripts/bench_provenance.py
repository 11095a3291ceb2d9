"""What reading provenance costs per image, beside what decoding the same image costs, in one run.

    python scripts/bench_provenance.py --images ../shared/data/wild-dev --limit 400

Reads every image (bytes already in memory) with `ProvenanceReader.read` and with the decode path
(`open_rgb`), and prints per-image times (median, p95, max) for images with and without any provenance,
the ratio of the two medians, and what was found.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from realcheck.model.data.imaging import is_image_file, open_rgb  # noqa: E402
from realcheck.model.errors import ImageDecodeError  # noqa: E402
from realcheck.model.scoring.provenance import ProvenanceReader  # noqa: E402


def _milliseconds(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "median_ms": round(statistics.median(ordered) * 1e3, 3),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1e3, 3),
        "max_ms": round(ordered[-1] * 1e3, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", required=True, help="folder of images (searched recursively)")
    parser.add_argument("--limit", type=int, default=400, help="most images to read")
    parser.add_argument("--repeats", type=int, default=3, help="reads per image (the fastest counts)")
    args = parser.parse_args()

    paths = sorted(p for p in Path(args.images).rglob("*") if p.is_file() and is_image_file(p))[: args.limit]
    if not paths:
        raise SystemExit(f"no images under {args.images}")
    contents = [path.read_bytes() for path in paths]
    reader = ProvenanceReader()
    reader.read(contents[0])  # the first call loads the C2PA library and Pillow's plugins

    without, with_evidence, decode = [], [], []
    found: Counter = Counter()
    for data in contents:
        best = float("inf")
        for _ in range(max(1, args.repeats)):
            started = time.perf_counter()
            provenance = reader.read(data)
            best = min(best, time.perf_counter() - started)
        (with_evidence if provenance.evidence else without).append(best)
        found.update(f"{item.kind}:{item.says}:{item.trust}" for item in provenance.evidence)
        started = time.perf_counter()
        try:
            open_rgb(data)
        except ImageDecodeError:
            continue
        decode.append(time.perf_counter() - started)

    report = {
        "images": len(contents),
        "provenance_without_any": _milliseconds(without),
        "provenance_with_some": _milliseconds(with_evidence),
        "decode": _milliseconds(decode),
        "found": dict(found.most_common()),
    }
    if without and decode:
        report["median_ratio_provenance_to_decode"] = round(
            statistics.median(without) / statistics.median(decode), 4
        )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
