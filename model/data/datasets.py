"""Find labelled images: the DeepGuardDB layout, or plain folders of real and AI images.

Every image becomes a `Sample` that keeps what per-source results and leak-free splits need: its source (the
generator of an AI image, the collection of a photo) and a group id that ties a real image to the fakes
generated from its caption.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from realcheck.model.data.imaging import DEFAULT_MAX_PIXELS, is_image_file, open_rgb
from realcheck.model.errors import DataError, ImageDecodeError
from realcheck.model.labels import AI, LABEL_NAMES, REAL, label_for_folder

# DeepGuardDB's `platform` field -> the folder that holds that generator's images.
DEEPGUARD_PLATFORMS = {
    "sd": "SD_dataset",
    "dall-e3": "DALLE_dataset",
    "im": "IMAGEN_dataset",
    "glide": "GLIDE_dataset",
}
DEEPGUARD_GENERATORS = {
    "SD_dataset": "stable-diffusion",
    "DALLE_dataset": "dall-e-3",
    "IMAGEN_dataset": "imagen",
    "GLIDE_dataset": "glide",
}
_DUPLICATE_SUFFIX = re.compile(r"\s*\(\d+\)$")


@dataclass(frozen=True)
class Sample:
    """One labelled image. `path` is relative to the data root; `group` keeps pairs in one split."""

    path: str
    label: int
    source: str  # the generator of an AI image, the collection (camera, data set) of a photo
    group: str

    @property
    def label_name(self) -> str:
        return LABEL_NAMES[self.label]

    def to_row(self) -> dict:
        return asdict(self)


@dataclass
class Discovery:
    """What a data root held: usable samples, plus what was left out and why."""

    root: Path
    layout: str
    samples: list[Sample]
    skipped: list[dict]
    notes: list[str]

    def summary(self) -> dict:
        """Counts by class and source, for logs, metadata and model cards."""
        return summarize(self.samples) | {
            "layout": self.layout,
            "root_name": self.root.name,
            "skipped": len(self.skipped),
            "notes": self.notes,
        }


def summarize(samples: list[Sample]) -> dict:
    """Counts of samples by class and by source and class (`by_generator`, its published name)."""
    by_class = Counter(s.label_name for s in samples)
    by_generator: dict[str, dict[str, int]] = {}
    for sample in samples:
        counts = by_generator.setdefault(sample.source, {"real": 0, "ai": 0})
        counts[sample.label_name] += 1
    return {
        "n": len(samples),
        "real": by_class.get("real", 0),
        "ai": by_class.get("ai", 0),
        "by_generator": dict(sorted(by_generator.items())),
    }


def discover(
    root: str | Path,
    verify: bool = True,
    workers: int = 8,
    both_classes: bool = True,
    label: int | None = None,
) -> Discovery:
    """Find labelled images under `root` (DeepGuardDB or plain class folders) and check they decode.

    With `verify`, every image is decoded once; files that fail are left out and listed in `skipped`.
    `label` (REAL or AI) gives every image under `root` that class, class folders or not (one collection
    to evaluate). Raises DataError when the root is missing or holds no usable image, and, with `both_classes`
    (training needs them), when it holds only one class.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"data folder not found: {root}")
    if not root.is_dir():
        raise DataError(f"data path is not a folder: {root}")
    deepguard_root = find_deepguard_root(root) if label is None else None
    if deepguard_root is not None:
        discovery = discover_deepguard(deepguard_root)
    else:
        discovery = discover_folders(root, label)
    if verify:
        discovery = verify_samples(discovery, workers=workers)
    check_usable(discovery, both_classes)
    return discovery


def check_usable(discovery: Discovery, both_classes: bool = True) -> None:
    """Raise DataError unless there are images (of both classes, with `both_classes`)."""
    counts = Counter(s.label for s in discovery.samples)
    if not discovery.samples:
        raise DataError(f"no usable images under {discovery.root} ({len(discovery.skipped)} skipped)")
    missing = [LABEL_NAMES[c] for c in (REAL, AI) if counts[c] == 0]
    if missing and both_classes:
        raise DataError(
            f"only one class under {discovery.root}: no {missing[0]} images found "
            f"({counts[REAL]} real, {counts[AI]} ai). Both classes are needed."
        )


# ---------------------------------------------------------------------------------------------- DeepGuardDB


def find_deepguard_root(root: Path) -> Path | None:
    """The DeepGuardDB_v1 folder at or directly under `root`, recognised by its generator folders."""
    for candidate in (root, root / "DeepGuardDB_v1"):
        if any((candidate / folder).is_dir() for folder in DEEPGUARD_GENERATORS):
            return candidate
    return None


def image_key(name: str) -> str:
    """Normalise a file name so the JSON's names match the files on disk.

    Strips every image extension (doubled ones like `x.jpg.png` too) and lower-cases, so `0009.jpg`,
    `0009.jpg.webp` and `0009.JPEG` all give `0009`.
    """
    stem = name.strip()
    while True:
        suffix = Path(stem).suffix.lower()
        if suffix in {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}:
            stem = stem[: -len(suffix)]
        else:
            return stem.lower()


def _index_folder(folder: Path) -> tuple[dict[str, Path], list[Path]]:
    """Map image keys to files; stray `name (1).jpg` copies whose original exists are set aside."""
    index: dict[str, Path] = {}
    duplicates: list[Path] = []
    if not folder.is_dir():
        return index, duplicates
    files = sorted(p for p in folder.rglob("*") if p.is_file() and is_image_file(p))
    for path in files:
        key = image_key(path.name)
        base = _DUPLICATE_SUFFIX.sub("", key)
        if base != key:
            duplicates.append(path)
            continue
        index.setdefault(key, path)
    # A "(1)" copy with no original is the only copy: keep it.
    for path in list(duplicates):
        base = _DUPLICATE_SUFFIX.sub("", image_key(path.name))
        if base not in index:
            index[base] = path
            duplicates.remove(path)
    return index, duplicates


class _Groups:
    """Union-find over file paths: a real image shared by several records joins them into one group."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, item: str) -> str:
        self.parent.setdefault(item, item)
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, a: str, b: str) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self.parent[max(root_a, root_b)] = min(root_a, root_b)


def _load_records(root: Path) -> list[dict] | None:
    path = root / "json_files" / "DeepGuardDB.json"
    if not path.is_file():
        return None
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"cannot read {path}: {error}") from error
    if not isinstance(records, list):
        raise DataError(f"{path} must hold a JSON array of records")
    return records


def discover_deepguard(root: Path) -> Discovery:
    """Samples from a DeepGuardDB_v1 tree, paired through json_files/DeepGuardDB.json where present.

    Handles the known quirks: doubled and mixed extensions, ids with an `A` suffix (several fakes from one
    real image share its group), pairs whose fake file is missing, and stray `(1)` duplicate files.
    Without the JSON, a real and a fake with the same normalised name in one generator folder are paired.
    """
    notes: list[str] = []
    skipped: list[dict] = []
    indexes: dict[tuple[str, int], dict[str, Path]] = {}
    for folder in DEEPGUARD_GENERATORS:
        for label, sub in ((REAL, "real"), (AI, "fake")):
            index, duplicates = _index_folder(root / folder / sub)
            indexes[(folder, label)] = index
            skipped.extend(
                {"path": str(p.relative_to(root)), "reason": "duplicate copy of another file"}
                for p in duplicates
            )
    groups = _Groups()
    records = _load_records(root)
    if records is None:
        notes.append("json_files/DeepGuardDB.json not found: pairs matched by file name")
        for folder in DEEPGUARD_GENERATORS:
            for key in indexes[(folder, REAL)].keys() & indexes[(folder, AI)].keys():
                groups.union(str(indexes[(folder, REAL)][key]), str(indexes[(folder, AI)][key]))
    else:
        missing_fakes = unknown_platforms = 0
        for record in records:
            folder = DEEPGUARD_PLATFORMS.get(str(record.get("platform", "")).strip().lower())
            if folder is None:
                unknown_platforms += 1
                continue
            real = indexes[(folder, REAL)].get(image_key(str(record.get("real_image_file_name") or "")))
            fake = indexes[(folder, AI)].get(image_key(str(record.get("fake_image_file_name") or "")))
            if fake is None:
                missing_fakes += 1
            if real is not None and fake is not None:
                groups.union(str(real), str(fake))
        if missing_fakes:
            notes.append(f"{missing_fakes} JSON records name a fake image that is not on disk")
        if unknown_platforms:
            notes.append(f"{unknown_platforms} JSON records have an unknown platform")
    samples = []
    for (folder, label), index in indexes.items():
        for path in index.values():
            group = groups.find(str(path))
            samples.append(
                Sample(
                    path=str(path.relative_to(root)),
                    label=label,
                    source=DEEPGUARD_GENERATORS[folder],
                    group=str(Path(group).relative_to(root)),
                )
            )
    samples.sort(key=lambda s: s.path)
    return Discovery(root=root, layout="deepguarddb", samples=samples, skipped=skipped, notes=notes)


# ---------------------------------------------------------------------------------------------- plain folders


def discover_folders(root: Path, label: int | None = None) -> Discovery:
    """Samples from class-named folders anywhere under `root` (real/fake, 0_real/1_fake, nature/ai...).

    Each image's source (generator, camera collection) is its row in a `manifest.csv` beside its class
    folder (columns `relpath` and `source`, `generator` or `generator_or_source`), else the path above its
    class folder (GenImage's `<generator>/train/ai`) joined with the sub-folder inside it (`fake/midjourney/`),
    else `unknown`.
    With `label`, the whole of `root` is one class and its sub-folders name the sources. Each image is
    its own group.
    """
    samples: list[Sample] = []
    class_dirs = [(root, label)] if label is not None else _find_class_dirs(root)
    if not class_dirs:
        raise DataError(
            f"no class folders under {root}. Put real photographs in a folder named `real` (or 0_real, "
            f"human, nature...) and AI images in one named `fake` (or ai, 1_fake, generated, synthetic...), "
            f"or name the class of every image under it with --label ai or --label real."
        )
    manifests: dict[Path, dict[str, str]] = {}
    for folder, folder_label in class_dirs:
        # A manifest describes the data set holding the class folder (or `root` itself with --label).
        base = folder if label is not None and (folder / SOURCE_MANIFEST).is_file() else folder.parent
        if base not in manifests:  # several class folders share their data set's manifest: read it once
            manifests[base] = read_source_manifest(base)
        listed = manifests[base]
        above = _source_name(root, folder)
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and is_image_file(p)):
            relative = path.relative_to(root).as_posix()
            inside = path.parent.relative_to(folder).as_posix()
            named = [part for part in (above, inside) if part not in {"unknown", "."}]
            source = listed.get(path.relative_to(base).as_posix()) or "/".join(named) or "unknown"
            samples.append(Sample(path=relative, label=folder_label, source=source, group=relative))
    notes = [f"sources from {SOURCE_MANIFEST}"] if any(manifests.values()) else []
    return Discovery(root=root, layout="folders", samples=samples, skipped=[], notes=notes)


SOURCE_MANIFEST = "manifest.csv"
SOURCE_COLUMNS = ("source", "generator", "generator_or_source")


def read_source_manifest(root: Path) -> dict[str, str]:
    """relpath -> source from `root/manifest.csv` when it has those columns; {} otherwise (never an error)."""
    path = root / SOURCE_MANIFEST
    if not path.is_file():
        return {}
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            column = next((c for c in SOURCE_COLUMNS if c in (reader.fieldnames or [])), None)
            if column is None or "relpath" not in (reader.fieldnames or []):
                return {}
            return {
                row["relpath"].strip().replace("\\", "/"): row[column].strip()
                for row in reader
                if row.get("relpath") and row.get(column)
            }
    except (OSError, UnicodeDecodeError, csv.Error):
        return {}


def _find_class_dirs(root: Path) -> list[tuple[Path, int]]:
    found = []
    for folder in sorted(p for p in [root, *root.rglob("*")] if p.is_dir()):
        label = label_for_folder(folder.name)
        # Only the outermost class folder counts: `fake/real_looking/` stays fake.
        if label is not None and not any(parent in {f for f, _ in found} for parent in folder.parents):
            found.append((folder, label))
    return found


def _source_name(root: Path, class_dir: Path) -> str:
    split_names = {"train", "training", "val", "valid", "validation", "test", "testing"}
    parts = [p for p in class_dir.relative_to(root).parent.parts if p.lower() not in split_names]
    return "/".join(parts) if parts else "unknown"


# ---------------------------------------------------------------------------------------------- verification


def verify_samples(discovery: Discovery, workers: int = 8, max_pixels: int = DEFAULT_MAX_PIXELS) -> Discovery:
    """Decode every image once in parallel; images that fail move to `skipped` with the reason."""

    def check(sample: Sample) -> str | None:
        try:
            open_rgb(discovery.root / sample.path, max_pixels=max_pixels)
        except ImageDecodeError as error:
            return str(error)
        return None

    with ThreadPoolExecutor(max_workers=workers) as pool:
        problems = list(pool.map(check, discovery.samples))
    good = [s for s, problem in zip(discovery.samples, problems) if problem is None]
    bad = [{"path": s.path, "reason": p} for s, p in zip(discovery.samples, problems) if p is not None]
    return Discovery(
        root=discovery.root,
        layout=discovery.layout,
        samples=good,
        skipped=discovery.skipped + bad,
        notes=discovery.notes,
    )
