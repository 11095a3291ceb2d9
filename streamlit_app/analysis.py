"""The app's logic without Streamlit: which model to load, scoring uploads, the results table and CSV.

Scores come from `model.inference.Detector.predict` on the uploaded bytes, the same call the server and
`realcheck evaluate` make, so a file gets the same score here as everywhere else; provenance comes from
`model.provenance`, the reader and decision rule the server and `check` use.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from model.artifact import bundled_model_dir
from model.inference import Detector
from model.provenance import NO_PROVENANCE, Provenance, ProvenanceReader, decide

MODEL_ENV = "REALCHECK_MODEL"
MAX_UPLOAD_ENV = "REALCHECK_MAX_UPLOAD_MB"
DEFAULT_MAX_UPLOAD_MB = 50.0
# What the uploader offers; anything else Pillow might open is refused by the decode path anyway.
UPLOAD_TYPES = ("jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff")
CSV_COLUMNS = (
    "file",
    "verdict",
    "basis",
    "model_verdict",
    "p_ai",
    "threshold",
    "uncertain_low",
    "uncertain_high",
    "model",
    "model_version",
    "bytes",
    "sha256",
    "provenance",
    "c2pa_state",
    "error",
)


@dataclass(frozen=True)
class Upload:
    """One uploaded file: its name as the user gave it and its bytes."""

    name: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class ImageResult:
    """The outcome for one upload: a score and verdict, or the reason it could not be scored.

    `verdict` is the decision, `model_verdict` the model's own and `basis` which of the two decided.
    """

    name: str
    size_bytes: int
    sha256: str
    score: float | None = None
    verdict: str | None = None
    error: str | None = None
    model_verdict: str | None = None
    basis: str = "model"
    provenance: Provenance = NO_PROVENANCE

    @property
    def ok(self) -> bool:
        return self.error is None


def parse_app_args(argv: Sequence[str]) -> argparse.Namespace:
    """The app's own options (what follows `--` in `streamlit run streamlit_app/app.py -- --model DIR`).

    Unknown arguments are ignored: inside tests the script shares `sys.argv` with pytest.
    """
    parser = argparse.ArgumentParser(prog="streamlit_app", add_help=False, allow_abbrev=False)
    parser.add_argument("--model", default=None, help="RealCheck artifact folder")
    parser.add_argument(
        "--feedback-db", default=None, help="where wrong-verdict reports go (server.feedback_store)"
    )
    args, _ = parser.parse_known_args(list(argv))
    return args


def default_model_path() -> Path | None:
    """The model used when none is named: the one bundled with RealCheck (None if it is missing)."""
    return bundled_model_dir()


def resolve_model_path(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> Path | None:
    """The artifact folder to load: `--model DIR`, else $REALCHECK_MODEL, else the bundled default."""
    environ = os.environ if environ is None else environ
    named = parse_app_args(argv).model or environ.get(MODEL_ENV, "").strip()
    if named:
        return Path(named).expanduser()
    return default_model_path()


def max_upload_bytes(environ: Mapping[str, str] | None = None) -> int:
    """Largest file the app scores: $REALCHECK_MAX_UPLOAD_MB megabytes (default 50)."""
    environ = os.environ if environ is None else environ
    text = environ.get(MAX_UPLOAD_ENV, "").strip()
    try:
        megabytes = float(text) if text else DEFAULT_MAX_UPLOAD_MB
    except ValueError:
        megabytes = DEFAULT_MAX_UPLOAD_MB
    if megabytes <= 0:
        megabytes = DEFAULT_MAX_UPLOAD_MB
    return int(megabytes * 1_000_000)


def analyse(
    detector: Detector,
    uploads: Sequence[Upload],
    max_bytes: int,
    provenance_reader: ProvenanceReader | None = None,
) -> list[ImageResult]:
    """Score every upload in one batch through the inference path; oversized files are refused unread."""
    provenance_reader = provenance_reader or ProvenanceReader()
    results: list[ImageResult | None] = [None] * len(uploads)
    to_score: list[int] = []
    for index, upload in enumerate(uploads):
        if len(upload.data) > max_bytes:
            results[index] = ImageResult(
                upload.name,
                len(upload.data),
                upload.sha256,
                error=f"file too large: {_megabytes(len(upload.data))}, over the limit of {_megabytes(max_bytes)}",
            )
        else:
            to_score.append(index)
    predictions = detector.predict([uploads[i].data for i in to_score]) if to_score else []
    for index, prediction in zip(to_score, predictions):
        upload = uploads[index]
        if not prediction.ok:
            results[index] = ImageResult(upload.name, len(upload.data), upload.sha256, error=prediction.error)
            continue
        provenance = provenance_reader.read(upload.data)
        decision = decide(prediction.verdict, provenance)
        results[index] = ImageResult(
            upload.name,
            len(upload.data),
            upload.sha256,
            score=prediction.score,
            verdict=decision.verdict,
            model_verdict=prediction.verdict,
            basis=decision.basis,
            provenance=provenance,
        )
    return [result for result in results if result is not None]


def result_rows(results: Sequence[ImageResult], metadata: Mapping) -> list[dict]:
    """One row per image with the decision rule and model that produced it (the table and the CSV)."""
    low, high = (float(v) for v in metadata["uncertainty_band"])
    return [
        {
            "file": result.name,
            "verdict": result.verdict or "error",
            "basis": result.basis if result.ok else None,
            "model_verdict": result.model_verdict,
            "p_ai": None if result.score is None else round(result.score, 6),
            "threshold": float(metadata["threshold"]),
            "uncertain_low": low,
            "uncertain_high": high,
            "model": metadata["name"],
            "model_version": metadata["version"],
            "bytes": result.size_bytes,
            "sha256": result.sha256,
            "provenance": result.provenance.summary if result.ok else None,
            "c2pa_state": result.provenance.c2pa.state if result.provenance.c2pa else None,
            "error": result.error or "",
        }
        for result in results
    ]


def results_csv(rows: Sequence[Mapping]) -> str:
    """The rows as CSV text with a fixed header (empty cells for missing scores)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _cell(row.get(key)) for key in CSV_COLUMNS})
    return buffer.getvalue()


def _cell(value) -> object:
    if value is None:
        return ""
    # A file name like "=HYPERLINK(...)" would run as a formula when the CSV is opened in a spreadsheet.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _megabytes(count: int) -> str:
    return f"{count / 1_000_000:.1f} MB"
