"""API errors: each has an HTTP status and a stable machine-readable code, rendered as JSON."""

from __future__ import annotations

import re

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
