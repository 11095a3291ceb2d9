#!/usr/bin/env python
"""Pack collections small enough to travel: one lossless centre crop of each JPEG, with the manifests.

A lent GPU machine receives at most 64 MiB with the working tree, and the collections are ten times that.
`jpegtran -crop` cuts on the JPEG's own 16-pixel block grid without decoding and re-encoding, so each crop
keeps its image's compression history exactly (no second JPEG that both classes would then share).

    python scripts/pack_crops.py --data ../shared/data --collections wild-dev dhanush-dev wild-train \\
        --size 160 --out .gpu-data
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

from PIL import Image

BLOCK = 16  # 4:2:0 JPEG's iMCU: crops on this grid are lossless


def crop_box(width: int, height: int, size: int) -> tuple[int, int, int, int]:
    """(left, top, width, height) of the centre crop on the block grid (the whole side when smaller)."""
    crop_w, crop_h = min(size, width), min(size, height)
    left = (width - crop_w) // 2 // BLOCK * BLOCK
    top = (height - crop_h) // 2 // BLOCK * BLOCK
    return left, top, crop_w, crop_h


def pack(source: Path, target: Path, size: int) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(source) as image:
        width, height, fmt = image.width, image.height, image.format
    if fmt != "JPEG" or max(width, height) <= size:
        shutil.copyfile(source, target)
        return
    left, top, crop_w, crop_h = crop_box(width, height, size)
    with target.open("wb") as handle:
        subprocess.run(
            ["jpegtran", "-copy", "none", "-crop", f"{crop_w}x{crop_h}+{left}+{top}", str(source)],
            stdout=handle,
            check=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--collections", nargs="+", required=True)
    parser.add_argument("--size", type=int, default=160, help="side of the crop (a multiple of 16)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if shutil.which("jpegtran") is None:
        raise SystemExit("jpegtran is needed: apt-get install libjpeg-turbo-progs")
    total = 0
    for name in args.collections:
        folder = args.data / name
        for path in sorted(folder.rglob("*")):
            if not path.is_file():
                continue
            target = args.out / name / path.relative_to(folder)
            if path.name == "manifest.csv":
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
            elif path.suffix.lower() in {".jpg", ".jpeg", ".png"}:
                pack(path, target, args.size)
                total += target.stat().st_size
    print(f"{args.out}: {total / 2**20:.1f} MiB of images")


if __name__ == "__main__":
    main()
