"""Scripted queries behind `realcheck check` and `realcheck scan`: through a server, or in-process.

Both produce the same rows (path, verdict, basis, score, model verdict, the ranges real_below and ai_above,
sha256, model, version, provenance columns, error), so a scan made against a server and one made with the model loaded locally are
interchangeable.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import re
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from realcheck.model.data.imaging import is_image_file
from realcheck.model.errors import RealCheckError
from realcheck.model.scoring.decision import (
    CONDITION_WORDS,
    RECORD_FIELDS,
    describe_rules,
    measured_accuracy,
)
from realcheck.model.scoring.provenance import NO_PROVENANCE

# `verdict` is the decision and `basis` what it rests on (`provenance` or `model`); `score` and
# `model_verdict` are always the model's own. The provenance columns flatten the API's provenance object.
PROVENANCE_FIELDS = ("provenance", "c2pa_state", "c2pa_signer", "declares_ai", "signed_capture")
ROW_FIELDS = ("path", *RECORD_FIELDS, "model", "version", *PROVENANCE_FIELDS, "error")
OUTPUT_SUFFIXES = (".csv", ".jsonl")
_IMAGE_PREFIX = re.compile(r"^image \d+(?: \([^)]*\))?: ")


def _never() -> bool:
    return False


class RemoteChecker:
    """Checks files through a RealCheck server, `concurrency` requests at a time."""

    def __init__(self, url: str, api_key: str | None = None, concurrency: int = 4, timeout: float = 120.0):
        from realcheck.server.client import RealCheckClient

        self.client = RealCheckClient(url, api_key=api_key, timeout=timeout)
        self.concurrency = max(1, concurrency)
        if not self.client.ready():
            # One clear error instead of one failed row per file.
            raise RealCheckError(f"no ready RealCheck server at {url} (is `realcheck serve` running?)")

    def check(self, files: Sequence[tuple[str, Path]], stop_requested=_never) -> Iterator[dict]:
        """Rows for (name, path) pairs, in input order, with a bounded number of requests in flight.

        Once `stop_requested()` is true no new request starts; the ones in flight are finished and yielded.
        """
        window: deque = deque()
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            for name, path in files:
                if stop_requested():
                    break
                window.append((name, pool.submit(self._check_file, name, path)))
                if len(window) >= 2 * self.concurrency:
                    yield window.popleft()[1].result()
            while window:
                yield window.popleft()[1].result()

    def model_metadata(self) -> dict:
        """The served model's public metadata (/v1/models)."""
        return self.client.models()[0]

    def _check_file(self, name: str, path: Path) -> dict:
        from realcheck.server.client import ClientError

        try:
            result = self.client.check_one(path)
        except ClientError as error:
            # The line already names the file: drop the server's "image 1 (photo.jpg): " in front.
            return _row(name, error=_IMAGE_PREFIX.sub("", str(error)))
        record = {key: result.get(key) for key in RECORD_FIELDS}
        # A server from before provenance decided verdicts sends neither: its verdict is the model's.
        record["basis"] = record["basis"] or "model"
        record["model_verdict"] = record["model_verdict"] or result["verdict"]
        return _row(
            name,
            **record,
            model=result.get("model"),
            version=result.get("version"),
            **provenance_columns(result.get("provenance")),
        )


class LocalChecker:
    """Checks files with the model loaded in this process, through the scoring core (`Detector`)."""

    def __init__(
        self, model_dir: str | Path | None, batch_size: int = 32, trust_anchors: str | Path | None = None
    ):
        from realcheck.model.artifacts.artifact import resolve_model_dir
        from realcheck.model.scoring.inference import load_detector
        from realcheck.model.scoring.provenance import ProvenanceReader

        provenance = ProvenanceReader.from_trust_anchors_file(trust_anchors)
        self.detector = load_detector(resolve_model_dir(model_dir), provenance=provenance)
        self.batch_size = max(1, batch_size)

    def model_metadata(self) -> dict:
        """The loaded artifact's metadata."""
        return self.detector.metadata

    def check(self, files: Sequence[tuple[str, Path]], stop_requested=_never) -> Iterator[dict]:
        """Rows for (name, path) pairs, in input order, a batch at a time.

        Once `stop_requested()` is true no new file is taken; the batch being filled is scored and yielded.
        """
        paths = (path for _, path in itertools.takewhile(lambda _: not stop_requested(), files))
        for index, prediction in self.detector.iter_predict(paths, batch_size=self.batch_size):
            name = files[index][0]
            if not prediction.ok:
                yield _row(name, error=prediction.error)
                continue
            yield _row(
                name,
                **prediction.record(),
                **provenance_columns(prediction.provenance.to_dict()),
                model=self.detector.name,
                version=self.detector.version,
            )


def _check_line(row: dict) -> str:
    model_part = f"P(AI) {row['score']:.3f}"  # the ranges that turn it into a verdict close the output
    if row.get("image_rule") in CONDITION_WORDS:
        model_part += f", {CONDITION_WORDS[row['image_rule']]}: its own ranges"
    if row.get("basis") == "provenance":
        return f"{row['path']}: {row['verdict']} by provenance: {row['provenance']} (the model: {row['model_verdict']}, {model_part})"
    verdict = "no AI signs found" if row["verdict"] == "real" else row["verdict"]  # never "real" from pixels
    line = f"{row['path']}: {verdict} ({model_part})"
    if row.get("provenance") and row["provenance"] != NO_PROVENANCE.summary:
        line += f"; {row['provenance']}"
    return line


def provenance_columns(provenance: dict | None) -> dict:
    """The flat provenance columns of a row, from the API's provenance object."""
    provenance = provenance or {}
    c2pa = provenance.get("c2pa") or {}
    return {
        "provenance": provenance.get("summary"),
        "c2pa_state": c2pa.get("state"),
        "c2pa_signer": c2pa.get("signer"),
        "declares_ai": provenance.get("declares_ai"),
        "signed_capture": provenance.get("signed_capture"),
    }


def _row(path: str, **values) -> dict:
    return {key: values.get(key) for key in ROW_FIELDS} | {"path": path}


def make_checker(
    server: str | None,
    model_dir: str | None,
    api_key: str | None,
    concurrency: int,
    batch_size: int,
    trust_anchors: str | None = None,
):
    """A RemoteChecker with `server`, else a LocalChecker on `model_dir` (or the default model)."""
    if server and model_dir:
        raise RealCheckError(
            "give --server (check through a running server) or --model (in-process), not both"
        )
    if server and trust_anchors:
        raise RealCheckError(
            "--c2pa-trust-anchors applies in-process; with --server, start the server with it"
        )
    if server:
        return RemoteChecker(server, api_key=api_key, concurrency=concurrency)
    return LocalChecker(model_dir, batch_size=batch_size, trust_anchors=trust_anchors)


def check_images(images: Sequence[str], make_checker, as_json: bool = False) -> int:
    """`realcheck check`: print one line (or one JSON list) for the images; 1 when any failed.

    `make_checker()` gives the checker; it is called only when some image is a file, so a typo is
    reported at once instead of after loading a model.
    """
    files = [(image, Path(image)) for image in images]
    problems = {image: _file_problem(path) for image, path in files}
    readable = [(image, path) for image, path in files if problems[image] is None]
    checker = make_checker() if readable else None
    scored = {row["path"]: row for row in checker.check(readable)} if checker else {}
    rows = [
        scored[image] if problems[image] is None else _row(image, error=problems[image]) for image, _ in files
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            if row["error"]:
                print(f"{row['path']}: error: {row['error']}")
            else:
                print(_check_line(row))
        if checker:
            metadata = checker.model_metadata()
            print(f"Scores: {describe_rules(metadata)}.")
            print(measured_accuracy(metadata))
    return 1 if any(row["error"] for row in rows) else 0


@dataclass
class ScanSummary:
    """What a scan did."""

    total: int = 0
    skipped: int = 0
    checked: int = 0
    failed: int = 0
    verdicts: dict = field(default_factory=dict)
    seconds: float = 0.0
    interrupted: bool = False

    def text(self, out: Path) -> str:
        counts = ", ".join(f"{count} {verdict}" for verdict, count in sorted(self.verdicts.items())) or "none"
        rate = self.checked / self.seconds if self.seconds > 0 else 0.0
        text = (
            f"scanned {self.checked} of {self.total} images in {self.seconds:.1f} s ({rate:.1f} images/s): "
            f"{counts}; {self.failed} failed; {self.skipped} skipped (already in {out}); results in {out}"
        )
        if self.interrupted:
            text += "; interrupted: run the same command again to check the rest"
        return text


def _file_problem(path: Path) -> str | None:
    if path.is_dir():
        return "is a folder (use `realcheck scan FOLDER --out results.csv`)"
    if not path.is_file():
        return "no such file"
    return None


def check_scan_arguments(folder: str | Path, out: str | Path) -> None:
    """Raise RealCheckError for a scan that cannot run (checked before any model is loaded)."""
    if not Path(folder).is_dir():
        raise RealCheckError(f"not a folder: {folder}")
    if Path(out).suffix.lower() not in OUTPUT_SUFFIXES:
        raise RealCheckError(f"--out must end in .csv or .jsonl, got {Path(out).name}")


def image_files(folder: Path) -> list[tuple[str, Path]]:
    """(name relative to `folder`, path) of every image under `folder`, sorted, hidden folders skipped."""
    found = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            path = Path(root) / name
            if is_image_file(path):
                found.append((path.relative_to(folder).as_posix(), path))
    return found


def scan_folder(
    folder: str | Path, out: str | Path, checker, progress: bool = True
) -> tuple[ScanSummary, int]:
    """`realcheck scan`: check every image under `folder` into `out` (.csv or .jsonl); resumable.

    Rows already in `out` with a score are kept and their files skipped; failed rows are dropped and their
    files tried again. Every row is flushed as it is written, so an interrupted scan loses nothing.
    Returns the summary and the exit status (1 when any image failed).
    """
    folder, out = Path(folder), Path(out)
    check_scan_arguments(folder, out)
    done = _resume(out)
    files = image_files(folder)
    todo = [(name, path) for name, path in files if name not in done]
    summary = ScanSummary(total=len(files), skipped=len(files) - len(todo))
    started = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    with (
        _RowWriter(out) as writer,
        _Progress(len(todo), enabled=progress) as bar,
        _GracefulInterrupt() as interrupt,
    ):
        for row in checker.check(todo, stop_requested=interrupt.requested):
            writer.write(row)
            summary.checked += 1
            if row["error"]:
                summary.failed += 1
            else:
                summary.verdicts[row["verdict"]] = summary.verdicts.get(row["verdict"], 0) + 1
            bar.update(summary.checked, summary.failed)
    summary.seconds = time.perf_counter() - started
    if interrupt.requested():
        summary.interrupted = True
        return summary, INTERRUPTED_STATUS
    return summary, 1 if summary.failed else 0


INTERRUPTED_STATUS = 130  # what a shell reports for a command stopped by Ctrl-C


class _GracefulInterrupt:
    """The first Ctrl-C asks the scan to finish the images in flight and stop; a second one stops at once."""

    def __init__(self):
        self._requested = False
        self._previous = None

    def requested(self) -> bool:
        return self._requested

    def _handle(self, signum, frame) -> None:
        if self._requested:
            raise KeyboardInterrupt
        self._requested = True
        print(
            "\nrealcheck: finishing the images in flight, then stopping (Ctrl-C again to stop at once)",
            file=sys.stderr,
            flush=True,
        )

    def __enter__(self):
        # Signal handlers can only be set from the main thread; elsewhere Ctrl-C keeps its default.
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _resume(out: Path) -> set[str]:
    """Paths already scored in `out`; rewrites `out` without its failed rows so they are retried cleanly."""
    if not out.is_file():
        return set()
    rows = _read_rows(out)
    good = [row for row in rows if not row.get("error") and row.get("score") not in (None, "")]
    # A CSV from an older RealCheck has other columns: rewrite it under today's header before appending.
    if len(good) != len(rows) or not _has_current_header(out):
        temporary = out.with_name(f".{out.stem}.resume{out.suffix}")  # same suffix: same format
        with _RowWriter(temporary, append=False) as writer:
            for row in good:
                writer.write(row)
        temporary.replace(out)
    return {row["path"] for row in good}


def _read_rows(path: Path) -> list[dict]:
    try:
        if path.suffix.lower() == ".csv":
            with open(path, newline="", encoding="utf-8") as handle:
                return list(csv.DictReader(handle))
        rows = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    continue  # a line cut short by an interrupted scan: that file is checked again
        return rows
    except OSError as error:
        raise RealCheckError(f"cannot read {path} to resume: {error}") from None


def _has_current_header(path: Path) -> bool:
    if path.suffix.lower() != ".csv":
        return True
    with open(path, newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle), None) == list(ROW_FIELDS)


class _RowWriter:
    def __init__(self, path: Path, append: bool = True):
        self.path = path
        self.csv = path.suffix.lower() == ".csv"
        self.new = not (append and path.is_file() and path.stat().st_size > 0)
        self.handle = open(path, "a" if append else "w", newline="", encoding="utf-8")  # noqa: SIM115
        self.writer = csv.DictWriter(self.handle, fieldnames=ROW_FIELDS) if self.csv else None
        if self.csv and self.new:
            self.writer.writeheader()

    def write(self, row: dict) -> None:
        if self.csv:
            self.writer.writerow({key: "" if row.get(key) is None else row.get(key) for key in ROW_FIELDS})
        else:
            self.handle.write(json.dumps({key: row.get(key) for key in ROW_FIELDS}) + "\n")
        self.handle.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()


class _Progress:
    """A one-line progress bar on a terminal; a line every 10% otherwise (logs stay short)."""

    def __init__(self, total: int, enabled: bool = True):
        self.total = total
        self.enabled = enabled and total > 0
        self.tty = sys.stderr.isatty()
        self.started = time.perf_counter()
        self.last_tenth = -1

    def update(self, done: int, failed: int) -> None:
        if not self.enabled:
            return
        rate = done / max(time.perf_counter() - self.started, 1e-9)
        width = 30
        filled = int(width * done / self.total)
        line = (
            f"[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} {rate:.1f} img/s, {failed} failed"
        )
        if self.tty:
            print("\r" + line, end="", file=sys.stderr, flush=True)
        elif done * 10 // self.total > self.last_tenth:
            self.last_tenth = done * 10 // self.total
            print(line, file=sys.stderr, flush=True)

    def __enter__(self):
        self.update(0, 0)  # at once: the first batch (and a model warming up) can take a while
        return self

    def __exit__(self, *exc):
        if self.enabled and self.tty:
            print(file=sys.stderr)
