"""Synthetic images for tests: two classes with different statistics that a tiny model learns in an epoch.

"real" images are smooth colour gradients with mild noise; "ai" images carry a strong periodic
high-frequency pattern (the kind of upsampling artefact detectors look for).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image


def make_array(label: str, size: int = 48, seed: int = 0) -> np.ndarray:
    """An RGB uint8 image of the given class."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = np.stack(
        [x * rng.uniform(80, 200), y * rng.uniform(80, 200), (x + y) * rng.uniform(40, 100)], axis=-1
    )
    base += rng.uniform(20, 60)
    if label == "ai":
        checker = ((np.indices((size, size)).sum(axis=0) % 2) * 2 - 1)[..., None]
        base += 45.0 * checker
        base += rng.normal(0, 4, base.shape)
    else:
        base += rng.normal(0, 2, base.shape)
    return np.clip(base, 0, 255).astype(np.uint8)


def image_bytes(label: str, size: int = 48, seed: int = 0, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(make_array(label, size, seed)).save(buffer, format=fmt)
    return buffer.getvalue()


def write_image(path: Path, label: str, size: int = 48, seed: int = 0) -> Path:
    """Write one synthetic image; the format follows the (last) suffix, PNG for doubled ones like .jpg.png."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".png": "PNG"}[path.suffix.lower()]
    options = {"quality": 95} if fmt in {"JPEG", "WEBP"} else {}
    Image.fromarray(make_array(label, size, seed)).save(path, format=fmt, **options)
    return path


def make_folder_dataset(
    root: Path, per_class: int = 24, size: int = 48, real_name: str = "real", ai_name: str = "fake"
) -> Path:
    """A plain real/fake folder data set."""
    for index in range(per_class):
        write_image(root / real_name / f"r{index:03d}.png", "real", size, seed=index)
        write_image(root / ai_name / f"f{index:03d}.png", "ai", size, seed=1000 + index)
    return root


def make_deepguard_dataset(root: Path, pairs_per_generator: int = 6, size: int = 48) -> Path:
    """A DeepGuardDB_v1-shaped tree with the known quirks; returns the DeepGuardDB_v1 folder.

    Quirks: doubled extensions (.jpg.png, .jpg.webp), mixed formats, an id with an `A` suffix that shares
    its real image with another record, a record whose fake is missing, and a stray `(1)` duplicate.
    """
    top = root / "DeepGuardDB_v1"
    platforms = {
        "sd": "SD_dataset",
        "dall-E3": "DALLE_dataset",
        "im": "IMAGEN_dataset",
        "GLIDE": "GLIDE_dataset",
    }
    records = []
    seed = 0
    for platform, folder in platforms.items():
        for index in range(pairs_per_generator):
            seed += 1
            stem = f"{folder[:2].lower()}{index:09d}"
            real_name = f"{stem}.jpg"
            fake_disk = f"{stem}.jpg.png" if index % 2 else f"{stem}.jpg.webp"
            write_image(
                top / folder / "real" / (real_name + ".png" if index % 3 == 0 else real_name),
                "real",
                size,
                seed,
            )
            write_image(top / folder / "fake" / fake_disk, "ai", size, seed + 500)
            records.append(
                {
                    "id": f"{stem}",
                    "real_image_file_name": real_name,
                    "fake_image_file_name": f"{stem}.jpg",
                    "prompts": "a photo",
                    "platform": platform,
                }
            )
        # Second fake from the first real image: id with an `A` suffix.
        stem0 = f"{folder[:2].lower()}{0:09d}"
        write_image(top / folder / "fake" / f"{stem0}A.png", "ai", size, seed + 900)
        records.append(
            {
                "id": f"{stem0}A",
                "real_image_file_name": f"{stem0}.jpg",
                "fake_image_file_name": f"{stem0}A.png",
                "prompts": "a photo",
                "platform": platform,
            }
        )
        # A record whose fake image is missing.
        missing = f"{folder[:2].lower()}{99:09d}"
        write_image(top / folder / "real" / f"{missing}.jpeg", "real", size, seed + 950)
        records.append(
            {
                "id": missing,
                "real_image_file_name": f"{missing}.jpeg",
                "fake_image_file_name": f"{missing}.png",
                "prompts": "a photo",
                "platform": platform,
            }
        )
    # A stray duplicate copy.
    original = top / "SD_dataset" / "real" / f"sd{1:09d}.jpg"
    (top / "SD_dataset" / "real" / f"sd{1:09d} (1).jpg").write_bytes(original.read_bytes())
    (top / "json_files").mkdir(parents=True, exist_ok=True)
    (top / "json_files" / "DeepGuardDB.json").write_text(json.dumps(records), encoding="utf-8")
    return top
