"""The app's logic without Streamlit: which model to load, scoring uploads, the results table and CSV.

Scores and decisions come from the scoring core (`realcheck.model.scoring.inference.Detector`, with a provenance reader) on
the uploaded bytes, the path the server, `check` and `realcheck evaluate` take, so a file gets the same
score and verdict here as everywhere else.
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

from realcheck.model.artifacts.artifact import bundled_model_dir
from realcheck.model.scoring.inference import Detector, Prediction

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
    "score",
    "real_below",
    "ai_above",
    "image_rule",
    "model",
    "version",
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


def parse_app_args(argv: Sequence[str]) -> argparse.Namespace:
    """The app's own options (what follows `--` in `streamlit run streamlit_app/app.py -- --model DIR`).

    Unknown arguments are ignored: inside tests the script shares `sys.argv` with pytest.
    """
    parser = argparse.ArgumentParser(prog="streamlit_app", add_help=False, allow_abbrev=False)
    parser.add_argument("--model", default=None, help="RealCheck artifact folder")
    parser.add_argument(
        "--feedback-db", default=None, help="where wrong-verdict reports go (server.feedback.store)"
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


def analyse(detector: Detector, uploads: Sequence[Upload], max_bytes: int) -> list[Prediction]:
    """One Prediction per upload, in order, from the scoring core; oversized files are refused unread."""
    results: list[Prediction | None] = [None] * len(uploads)
    to_score: list[int] = []
    for index, upload in enumerate(uploads):
        if len(upload.data) > max_bytes:
            size, limit = _megabytes(len(upload.data)), _megabytes(max_bytes)
            results[index] = Prediction(
                upload.sha256, error=f"file too large: {size}, over the limit of {limit}"
            )
        else:
            to_score.append(index)
    for position, prediction in detector.iter_predict(uploads[i].data for i in to_score):
        results[to_score[position]] = prediction
    return results


def result_rows(
    uploads: Sequence[Upload], predictions: Sequence[Prediction], metadata: Mapping
) -> list[dict]:
    """One row per image (the table and the CSV): its record under the names every face uses
    (`Prediction.record`), the model that produced it, and what is the upload's own."""
    return [
        {"file": upload.name}
        | prediction.record()
        | {
            "verdict": prediction.verdict or "error",
            "basis": prediction.basis if prediction.ok else None,
            "score": None if prediction.score is None else round(prediction.score, 6),
            "model": metadata["name"],
            "version": metadata["version"],
            "bytes": len(upload.data),
            "provenance": prediction.provenance.summary if prediction.ok else None,
            "c2pa_state": prediction.provenance.c2pa.state if prediction.provenance.c2pa else None,
            "error": prediction.error or "",
        }
        for upload, prediction in zip(uploads, predictions)
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
