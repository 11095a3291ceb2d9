"""API errors: each has an HTTP status and a stable machine-readable code, rendered as JSON."""

from __future__ import annotations

import logging
import re
from concurrent.futures import TimeoutError as FutureTimeout

from flask import Flask, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger("realcheck")

# An absolute path: a slash-separated run of at least two parts (`/home/x/model.keras`, `C:\\models\\x`).
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~-])(?:[A-Za-z]:)?[/\\](?:[^\s/\\'\"]+[/\\])+([^\s/\\'\",:;)]+)")


def without_paths(message: str) -> str:
    """`message` with every absolute path cut to its last part: what a client may see of the server's disk."""
    return _ABSOLUTE_PATH.sub(lambda match: f".../{match.group(1)}", message)


class ApiError(Exception):
    """An error answered as `{"error": {"code", "message"}}` with `status`."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None, headers=None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.headers = dict(headers or {})


class InvalidImage(ApiError):
    """One of the request's images cannot be scored (not an image, truncated, bomb, unsupported)."""

    code = "invalid_image"


class NotReady(ApiError):
    """The model is still loading or failed to load."""

    status = 503
    code = "not_ready"


def register_error_handlers(app: Flask) -> None:
    """Every error as `{"error": {"code", "message"}}`: the API's own, HTTP ones, timeouts and the unexpected."""
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(FutureTimeout, _timeout)
    app.register_error_handler(Exception, _unexpected)


def _api_error(error: ApiError):
    return error_response(error.status, error.code, error.message, error.headers)


def _http_error(error: HTTPException):
    from realcheck.server.access import retry_after_s

    config = current_app.config["REALCHECK"]
    code = (error.name or "error").lower().replace(" ", "_")
    headers = {}
    if error.code == 405 and error.valid_methods:
        headers["Allow"] = ", ".join(error.valid_methods)
    message = error.description or error.name
    if error.code == 404:
        message = f"no such endpoint: {request.path} (the API is described at /openapi.json)"
    elif error.code == 405:
        message = (
            f"{request.method} is not allowed on {request.path}; use {headers.get('Allow', 'another method')}"
        )
    elif error.code == 429:  # Flask-Limiter's RateLimitExceeded
        code = "rate_limited"
        wait = retry_after_s(current_app)
        headers["Retry-After"] = str(wait)
        message = (
            f"rate limit of {config.rate_limit_per_minute} requests a minute exceeded; retry in {wait} s"
        )
    elif error.code == 413:
        code = "request_too_large"
        message = f"request body is over the limit of {config.max_request_bytes:,} bytes"
        if (request.content_length or 0) <= config.max_request_bytes:
            # Werkzeug also raises 413 for a multipart body with more parts than MAX_FORM_PARTS.
            code = "too_many_images"
            message = f"too many multipart parts; send at most {config.max_images_per_request} images"
    return error_response(error.code or 500, code, message, headers)


def _timeout(error: FutureTimeout):
    return error_response(503, "timeout", "the model did not answer in time; retry", {"Retry-After": "2"})


def _unexpected(error: Exception):
    # Logged with its traceback for the operator; the client gets JSON without internals.
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(500, "internal_error", "internal server error", {})


def error_response(status: int, code: str, message: str, headers: dict):
    """The JSON error answer; its code is kept for the error metrics."""
    g.error_code = code
    response = jsonify(error={"code": code, "message": message})
    response.status_code = status
    response.headers.update(headers)
    return response
