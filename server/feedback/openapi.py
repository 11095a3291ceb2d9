"""The OpenAPI description of `/v1/feedback` (merged into the document of server/openapi.py)."""

from __future__ import annotations

from realcheck.server.feedback.routes import DEFAULT_PAGE, MAX_PAGE


def _json(schema: str, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": schema}}}}


def feedback_paths(errors: dict, secured: list) -> dict:
    """The paths object entries for POST and GET /v1/feedback; `errors` are the shared error responses."""
    unavailable = _json("#/components/schemas/Error", "The feedback database cannot be reached; retry later")
    return {
        "/v1/feedback": {
            "post": {
                "summary": "Report a wrong verdict",
                "description": (
                    "Stores what a user says is the right label for an image, with the model and score they "
                    "saw. image_b64 (only when the user agreed to share the image) must hash to sha256 and "
                    "pass the same decode checks as predict. A 201 means the report is committed. No page "
                    "URL, cookie or identity is taken: unknown fields are refused."
                ),
                "operationId": "postFeedback",
                "security": secured,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/FeedbackRequest"}}
                    },
                },
                "responses": {
                    "201": _json("#/components/schemas/FeedbackCreated", "Stored"),
                    "400": _json(
                        "#/components/schemas/Error",
                        "Bad report: invalid JSON, unknown or missing field, bad label, sha256, score or note; "
                        "image bytes that are not an image or do not hash to sha256",
                    ),
                    **{status: errors[status] for status in ("401", "413", "415", "429")},
                    "503": unavailable,
                },
            },
            "get": {
                "summary": "List reports (for the operator)",
                "operationId": "listFeedback",
                "security": secured,
                "parameters": [
                    {
                        "name": "after",
                        "in": "query",
                        "description": "only reports with a larger id (the previous page's next_after)",
                        "schema": {"type": "integer", "minimum": 0, "default": 0},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": MAX_PAGE,
                            "default": DEFAULT_PAGE,
                        },
                    },
                ],
                "responses": {
                    "200": _json("#/components/schemas/FeedbackList", "Reports, oldest first"),
                    "400": _json("#/components/schemas/Error", "Bad after or limit"),
                    **{status: errors[status] for status in ("401", "429")},
                    "503": unavailable,
                },
            },
        }
    }
