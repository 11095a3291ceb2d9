"""Pair-aware, stratified, seeded train/val/test split, saved as a CSV manifest that can be reused.

Groups (a real image and the fakes made from its caption) are the unit of splitting, so a pair never
straddles two splits; groups are stratified by generator and by which classes they hold.
"""

from __future__ import annotations

import csv
import io
import random
from collections import defaultdict
from pathlib import Path

from realcheck.model.data.datasets import Sample
from realcheck.model.errors import DataError
from realcheck.model.labels import AI, REAL

SPLITS = ("train", "val", "test")
MANIFEST_FIELDS = ("path", "label", "source", "group", "split")
# The source column's name in manifests written before it was called so (the bundled model's among them).
LEGACY_SOURCE_FIELD = "generator"


def split_samples(
    samples: list[Sample], val_fraction: float = 0.15, test_fraction: float = 0.15, seed: int = 42
) -> dict[str, list[Sample]]:
    """Assign whole groups to train/val/test, stratified by (generator, classes in the group)."""
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise DataError(
            f"split fractions must be in [0, 1) and sum below 1, got val={val_fraction} test={test_fraction}"
        )
    groups: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        groups[sample.group].append(sample)
    strata: dict[tuple, list[str]] = defaultdict(list)
    for group_id, members in groups.items():
        key = (members[0].source, tuple(sorted({m.label for m in members})))
        strata[key].append(group_id)
    rng = random.Random(seed)
    result: dict[str, list[Sample]] = {name: [] for name in SPLITS}
    for key in sorted(strata):
        group_ids = sorted(strata[key])
        rng.shuffle(group_ids)
        n = len(group_ids)
        n_test = round(n * test_fraction)
        n_val = round(n * val_fraction)
        # Small strata still feed every split that asked for data, as long as train keeps one group.
        if test_fraction > 0 and n_test == 0 and n - n_val >= 2:
            n_test = 1
        if val_fraction > 0 and n_val == 0 and n - n_test >= 2:
            n_val = 1
        assignment = {gid: "test" for gid in group_ids[:n_test]}
        assignment |= {gid: "val" for gid in group_ids[n_test : n_test + n_val]}
        for gid in group_ids:
            result[assignment.get(gid, "train")].extend(groups[gid])
    for name in SPLITS:
        result[name].sort(key=lambda s: s.path)
    return result


def save_manifest(split: dict[str, list[Sample]], path: str | Path) -> None:
    """Write the split as CSV: one row per image with its label, source, group and split."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        for name in SPLITS:
            for sample in split.get(name, []):
                writer.writerow(sample.to_row() | {"split": name})


def load_manifest(path: str | Path, available: list[Sample] | None = None) -> dict[str, list[Sample]]:
    """Read a split manifest. With `available`, rows whose image is no longer usable are dropped."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"split manifest not found: {path}")
    usable = None if available is None else {s.path for s in available}
    result: dict[str, list[Sample]] = {name: [] for name in SPLITS}
    try:
        # utf-8-sig: a manifest saved again by a spreadsheet starts with a byte-order mark.
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(f"{path} is not a split manifest (not UTF-8 text: {error})") from error
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = set(reader.fieldnames or ())
    source_field = "source" if "source" in columns else LEGACY_SOURCE_FIELD
    if not set(MANIFEST_FIELDS) - {"source"} | {source_field} <= columns:
        raise DataError(f"{path} is not a split manifest (columns {', '.join(MANIFEST_FIELDS)} expected)")
    for row in reader:
        if row["split"] not in result:
            raise DataError(f"{path}: unknown split {row['split']!r} for {row['path']}")
        if str(row["label"]).strip() not in {str(REAL), str(AI)}:
            raise DataError(
                f"{path}: label must be {REAL} (real) or {AI} (ai), got {row['label']!r} for {row['path']}"
            )
        if usable is not None and row["path"] not in usable:
            continue
        sample = Sample(
            path=row["path"], label=int(row["label"]), source=row[source_field], group=row["group"]
        )
        result[row["split"]].append(sample)
    if usable is not None and not any(result.values()):
        raise DataError(f"none of the images in {path} are in this data folder: was it made for other data?")
    return result


def source_folds(samples: list[Sample], folds: int, seed: int = 42) -> dict[str, int]:
    """Assign every source (Sample.source) to one of `folds` folds, whole, balancing images per class.

    Sources are dealt largest first to the fold with the fewest images of the source's majority class, so
    each fold holds out some AI and some real sources. The unit of the source-held-out protocol: a model
    trained without fold k is tested on fold k's sources, none of which it has seen.
    """
    if folds < 2:
        raise DataError(f"source folds need at least 2 folds, got {folds}")
    sizes = _source_sizes(samples)
    if len(sizes) < folds:
        raise DataError(f"{len(sizes)} sources cannot fill {folds} folds: use fewer folds")
    rng = random.Random(seed)
    order = sorted(sizes, key=lambda s: (-sum(sizes[s]), s))
    load = [[0, 0] for _ in range(folds)]
    assignment: dict[str, int] = {}
    for source in order:
        majority = AI if sizes[source][AI] >= sizes[source][REAL] else REAL
        lightest = min(load[f][majority] for f in range(folds))
        fold = rng.choice([f for f in range(folds) if load[f][majority] == lightest])
        assignment[source] = fold
        load[fold][REAL] += sizes[source][REAL]
        load[fold][AI] += sizes[source][AI]
    return assignment


def split_by_source(
    samples: list[Sample],
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 42,
    test_sources: set[str] | None = None,
    val_sources: set[str] | None = None,
) -> dict[str, list[Sample]]:
    """Whole sources held out: test (the given `test_sources`, or about `test_fraction` of each class's
    images, in whole sources) and val (the given `val_sources`, or about `val_fraction` of each class from
    the remaining sources).

    Validation on unseen sources is what makes the threshold, the calibration and the uncertainty band
    honest for images from anywhere else; a random split would tune them on near-copies of training images.
    """
    sizes = _source_sizes(samples)
    remaining = set(sizes)
    held: dict[str, set[str]] = {}
    for name, given in (("test", test_sources), ("val", val_sources)):
        if given is not None:
            unknown = set(given) - remaining
            if unknown:
                raise DataError(f"unknown or already held-out {name} source(s): {', '.join(sorted(unknown))}")
            held[name] = set(given)
            remaining -= held[name]
    rng = random.Random(seed)
    for name, fraction in (("test", test_fraction), ("val", val_fraction)):
        if name in held:
            continue
        held[name] = set()
        for label in (REAL, AI):
            total = sum(sizes[s][label] for s in sizes)
            candidates = sorted(s for s in remaining if sizes[s][label] > sizes[s][1 - label])
            rng.shuffle(candidates)
            # Keep at least one source of the class for training; take sources while they fit the share,
            # else the smallest one, so a split that asked for images gets some.
            candidates = candidates[: max(0, len(candidates) - 1)]
            taken = 0
            for source in candidates:
                if taken + sizes[source][label] <= fraction * total:
                    held[name].add(source)
                    taken += sizes[source][label]
            if taken == 0 and fraction > 0 and candidates:
                held[name].add(min(candidates, key=lambda s: (sizes[s][label], s)))
            remaining -= held[name]
    result: dict[str, list[Sample]] = {name: [] for name in SPLITS}
    for sample in samples:
        name = next((n for n in ("test", "val") if sample.source in held[n]), "train")
        result[name].append(sample)
    for name in SPLITS:
        result[name].sort(key=lambda s: s.path)
    return result


def _source_sizes(samples: list[Sample]) -> dict[str, list[int]]:
    sizes: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for sample in samples:
        sizes[sample.source][sample.label] += 1
    return dict(sizes)
