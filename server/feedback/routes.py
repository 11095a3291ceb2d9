"""The `/v1/feedback` blueprint: users report a wrong verdict; the operator lists the reports.

POST takes one JSON report (see `REPORT_FIELDS` and the OpenAPI document); GET lists them, oldest first, in
pages (`?after=ID&limit=N`). Both sit behind the API key and the rate limit like every `/v1` path. A 201
means the report is committed to the database.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time

from flask import Blueprint, current_app, jsonify, request
from pydantic import ValidationError

from realcheck.server.errors import ApiError
from realcheck.server.feedback.store import (
    FeedbackReport,
    FeedbackStore,
    FeedbackUnavailable,
    InvalidFeedback,
)
from realcheck.server.schemas import FeedbackRequest, report_error
from realcheck.server.uploads import decode_base64

log = logging.getLogger("realcheck")
feedback = Blueprint("feedback", __name__, url_prefix="/v1")

# From the declaration. Anything else (a page URL, a user id) is refused rather than silently dropped: the
# client learns at once that this server stores nothing more.
REPORT_FIELDS = frozenset(FeedbackRequest.model_fields)
REQUIRED_FIELDS = tuple(name for name, field in FeedbackRequest.model_fields.items() if field.is_required())
DEFAULT_PAGE = 100
MAX_PAGE = 1000


def feedback_store() -> FeedbackStore:
    """The app's store (created with the app, opened on first use)."""
    return current_app.extensions["realcheck_feedback"]


class FeedbackGate:
    """Keeps a slow or locked feedback database from taking every worker thread away from predict.

    Reports are admitted freely while the database answers: a burst of users reporting at once queues in
    the database as usual, however slowly a loaded machine works through it. Once `slots` reports are in
    flight, the oldest has waited `stuck_s` and none has finished in that time (another process holds
    the SQLite lock, or PostgreSQL hangs), further ones get a 503 at once instead of a thread.
    """

    def __init__(self, slots: int, stuck_s: float = 0.5):
        self.slots = slots
        self.stuck_s = stuck_s
        self.lock = threading.Lock()
        self.started: dict[int, float] = {}
        self.next_ticket = 0
        self.last_done = 0.0  # a queue that moves is slow, not stuck

    @contextlib.contextmanager
    def admit(self):
        with self.lock:
            now = time.monotonic()
            if (
                len(self.started) >= self.slots
                and now - min(self.started.values()) > self.stuck_s
                and now - self.last_done > self.stuck_s
            ):
                raise ApiError(
                    "feedback storage is busy; nothing was stored, retry later",
                    status=503,
                    code="feedback_unavailable",
                    headers={"Retry-After": "5"},
                )
            ticket, self.next_ticket = self.next_ticket, self.next_ticket + 1
            self.started[ticket] = now
        try:
            yield
            with self.lock:
                self.last_done = time.monotonic()
        finally:
            with self.lock:
                del self.started[ticket]


def feedback_gate() -> FeedbackGate:
    return current_app.extensions["realcheck_feedback_gate"]


@feedback.post("/feedback")
def post_feedback():
    """Store one report: 201 with the stored report, or a JSON 4xx saying what is wrong."""
    config = current_app.config["REALCHECK"]
    report = report_from_json(_json_body(config.max_request_bytes))
    try:
        checked = report.checked(config.max_image_bytes, config.max_pixels)
        with feedback_gate().admit():
            stored = feedback_store().add(checked)
    except InvalidFeedback as error:
        raise ApiError(str(error), status=error.status, code=error.code) from None
    except FeedbackUnavailable as error:
        raise _unavailable(error) from None
    return jsonify(report=stored.to_dict()), 201


@feedback.get("/feedback")
def list_feedback():
    """A page of reports, oldest first: `after` (an id) and `limit` (1-1000) page through them."""
    after = _int_argument("after", 0, 0)
    limit = _int_argument("limit", DEFAULT_PAGE, 1, MAX_PAGE)
    store = feedback_store()
    try:
        with feedback_gate().admit():
            reports = store.reports(after=after, limit=limit)
            total = store.count()
    except FeedbackUnavailable as error:
        raise _unavailable(error) from None
    following = reports[-1].id if len(reports) == limit else None
    return jsonify(reports=[report.to_dict() for report in reports], total=total, next_after=following)


def report_from_json(document) -> FeedbackReport:
    """The report in a parsed JSON body, validated by its declaration (`FeedbackRequest`); raises ApiError
    naming the first field that is wrong. What a declaration cannot say (NUL characters, the image) is
    checked after, by `FeedbackReport.checked`."""
    if not isinstance(document, dict):
        raise ApiError("feedback must be a JSON object", code="invalid_json")
    unknown = sorted(set(document) - REPORT_FIELDS)
    if unknown:
        # Named, but bounded: a body of millions of keys gets a short answer.
        shown = ", ".join(repr(name[:40]) for name in unknown[:5]) + (
            f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        )
        raise ApiError(
            f"unknown field(s) {shown}: a report holds only {', '.join(sorted(REPORT_FIELDS))}",
            code="unknown_field",
        )
    missing = [name for name in REQUIRED_FIELDS if document.get(name) is None]
    if missing:
        raise ApiError(f"missing field(s): {', '.join(missing)}", code="missing_field")
    try:
        report = FeedbackRequest.model_validate(document)
    except ValidationError as error:
        message, code = report_error(error)
        raise ApiError(message, code=code) from None
    return FeedbackReport(
        sha256=report.sha256,
        label=report.label,
        model_name=report.model.name,
        model_version=report.model.version,
        score=report.score,
        verdict=report.verdict,
        note=report.note,
        client=report.client,
        image=None if report.image_b64 is None else decode_base64(report.image_b64, "image_b64"),
    )


def _json_body(max_bytes: int):
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise ApiError(
            f"request body is {declared:,} bytes, over the limit of {max_bytes:,}",
            status=413,
            code="request_too_large",
        )
    if request.mimetype != "application/json":
        raise ApiError(
            f"unsupported content type {request.mimetype or '(none)'!r}: send the report as application/json",
            status=415,
            code="unsupported_media_type",
        )
    body = request.get_data(cache=False)
    if not body:
        raise ApiError("empty request body: send the report as a JSON object", code="empty_body")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(f"request body is not valid JSON ({error})", code="invalid_json") from None
    except RecursionError:
        raise ApiError("request body is JSON nested too deeply", code="invalid_json") from None


def _int_argument(name: str, default: int, low: int, high: int | None = None) -> int:
    text = request.args.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        bounds = f"{low}-{high}" if high is not None else f"at least {low}"
        raise ApiError(f"{name} must be a whole number, {bounds}; got {text!r}", code="invalid_parameter")
    return value


class _OutageLog:
    """One log line per outage interval, not per refused report: a down database must not flood the log."""

    def __init__(self, interval_s: float = 10.0):
        self.interval_s = interval_s
        self.lock = threading.Lock()
        self.last = float("-inf")
        self.skipped = 0

    def error(self, error: Exception) -> None:
        with self.lock:
            now = time.monotonic()
            if now - self.last < self.interval_s:
                self.skipped += 1
                return
            skipped, self.skipped, self.last = self.skipped, 0, now
        more = f" ({skipped} more refused since the last line)" if skipped else ""
        log.error("%s%s", error, more)


_outages = _OutageLog()


def _unavailable(error: FeedbackUnavailable) -> ApiError:
    _outages.error(error)  # the operator sees the database's own words; the client a plain retry
    return ApiError(
        "feedback storage is unavailable; nothing was stored, retry later",
        status=503,
        code="feedback_unavailable",
        headers={"Retry-After": "5"},
    )
