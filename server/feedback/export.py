"""`realcheck feedback export`: the reports as a data set that `realcheck train`/`finetune --data` reads as is.

    DIR/real/<sha256>.<ext>   shared images whose reports say "real"
    DIR/fake/<sha256>.<ext>   shared images whose reports say "ai"
    DIR/manifest.csv          every report, one row each; `relpath` names its image file when that was exported,
                              and `source` is "feedback" (the column training reads for per-source results)

An image goes to the folder most of its reports name; one whose reports are split evenly goes nowhere (its
rows stay in the CSV with an empty relpath), since a data set must not teach a label its users dispute.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from realcheck.model.errors import RealCheckError
from realcheck.server.feedback.store import SUFFIXES, FeedbackStore

MANIFEST = "manifest.csv"
FOLDERS = {"real": "real", "ai": "fake"}
SOURCE = "feedback"
COLUMNS = (
    "relpath",
    "source",
    "id",
    "created_at",
    "sha256",
    "label",
    "model_name",
    "model_version",
    "score",
    "verdict",
    "image_shared",
    "client",
    "note",
)


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote."""

    reports: int
    real_images: int
    fake_images: int
    disputed_images: int

    def text(self, out: Path) -> str:
        return (
            f"exported {self.reports} reports to {out / MANIFEST}; images: {self.real_images} in real/, "
            f"{self.fake_images} in fake/"
            + (
                f", {self.disputed_images} left out (their reports disagree evenly)"
                if self.disputed_images
                else ""
            )
        )


def export_feedback(store: FeedbackStore, out: str | Path) -> ExportSummary:
    """Write the store's reports and shared images under `out` (which must be new or empty)."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RealCheckError(f"{out} exists and is not empty: export into a new folder")
    reports = list(store.iter_reports())
    votes: dict[str, Counter] = defaultdict(Counter)
    for report in reports:
        votes[report.sha256][report.label] += 1
    shared = store.shared_hashes()
    relpaths: dict[str, str] = {}
    disputed = 0
    for folder in FOLDERS.values():
        (out / folder).mkdir(parents=True, exist_ok=True)
    for sha256 in sorted(shared & votes.keys()):
        (label, first), *rest = votes[sha256].most_common()
        if rest and rest[0][1] == first:
            disputed += 1
            continue
        image = store.image(sha256)
        relpath = f"{FOLDERS[label]}/{sha256}.{SUFFIXES.get(image.format, 'img')}"
        (out / relpath).write_bytes(image.data)
        relpaths[sha256] = relpath
    with (out / MANIFEST).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for report in reports:
            writer.writerow(
                {
                    "relpath": relpaths.get(report.sha256, ""),
                    "source": SOURCE,
                    "id": report.id,
                    "created_at": report.to_dict()["created_at"],
                    "sha256": report.sha256,
                    "label": report.label,
                    "model_name": report.model_name,
                    "model_version": report.model_version,
                    "score": report.score,
                    "verdict": report.verdict or "",
                    "image_shared": int(report.image_shared),
                    "client": report.client or "",
                    "note": report.note or "",
                }
            )
    folders = Counter(path.split("/", 1)[0] for path in relpaths.values())
    return ExportSummary(len(reports), folders["real"], folders["fake"], disputed)
