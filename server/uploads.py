"""Request bodies -> uploads: multipart parts, JSON `{"instances": [{"b64": ...}]}` or one raw image body.

Only bytes sent by the client are accepted; nothing here (or anywhere in the server) fetches a URL.
"""

from __future__ import annotations

import base64
import binascii
import json

from flask import Request
from pydantic import ValidationError

from realcheck.server.config import ServerConfig
from realcheck.server.errors import ApiError
from realcheck.server.schemas import PredictRequest
from realcheck.server.service import Upload

RAW_TYPES = ("application/octet-stream",)
ACCEPTED = (
    'multipart/form-data, application/json with {"instances": [{"b64": ...}]}, or raw image bytes (image/*)'
)


def upload_limits(config: ServerConfig) -> dict[str, int]:
    """The limits `uploads_from_request` enforces, for clients to stay within (served by /v1/models)."""
    return {
        "max_image_bytes": config.max_image_bytes,
        "max_request_bytes": config.max_request_bytes,
        "max_images_per_request": config.max_images_per_request,
    }


def uploads_from_request(request: Request, config: ServerConfig) -> list[Upload]:
    """The images of a predict request, checked for count and declared size; raises ApiError otherwise."""
    declared = request.content_length
    if declared is not None and declared > config.max_request_bytes:
        raise ApiError(
            f"request body is {declared:,} bytes, over the limit of {config.max_request_bytes:,}",
            status=413,
            code="request_too_large",
        )
    mimetype = request.mimetype
    if declared == 0 or (declared is None and not request.headers.get("Transfer-Encoding")):
        raise ApiError(f"empty request body: send {ACCEPTED}", code="empty_body")
    if mimetype == "multipart/form-data":
        uploads = _from_multipart(request)
    elif mimetype == "application/json":
        uploads = _from_json(request.get_data(cache=False), config.max_images_per_request)
    elif mimetype.startswith("image/") or mimetype in RAW_TYPES:
        uploads = [Upload(request.get_data(cache=False))]
    else:
        raise ApiError(
            f"unsupported content type {mimetype or '(none)'!r}: send {ACCEPTED}",
            status=415,
            code="unsupported_media_type",
        )
    if not uploads:
        raise ApiError(f"no images in the request: send {ACCEPTED}", code="no_images")
    for index, upload in enumerate(uploads):
        if len(upload.data) > config.max_image_bytes:
            raise ApiError(
                f"{upload.describe(index)} is {len(upload.data):,} bytes, over the per-image limit of "
                f"{config.max_image_bytes:,}",
                status=413,
                code="image_too_large",
            )
    if len(uploads) > config.max_images_per_request:
        raise ApiError(
            f"{len(uploads)} images in one request, over the limit of {config.max_images_per_request}; "
            "split them over several requests",
            status=413,
            code="too_many_images",
        )
    return uploads


def _from_multipart(request: Request) -> list[Upload]:
    uploads = []
    for field in request.files:
        for part in request.files.getlist(field):
            uploads.append(Upload(part.read(), part.filename or None))
    if not uploads:
        # A part without a name has the key None: names are shown as given, never compared.
        fields = ", ".join(sorted(str(name) for name in request.form)) or "none"
        raise ApiError(
            f"multipart body has no file parts (form fields: {fields}); send each image as a file part",
            code="no_images",
        )
    return uploads


# Commas and braces an instance may need: {"b64": "data:image/png;base64,...", "name": "x"} and the one between
# instances. Counted (in C) before parsing, so a body of millions of tiny items is refused before Python
# builds an object for each of them.
SEPARATORS_PER_INSTANCE = 4


def _from_json(body: bytes, max_images: int) -> list[Upload]:
    separators = body.count(b",") + body.count(b"{")
    if separators > SEPARATORS_PER_INSTANCE * (max_images + 1):
        raise ApiError(
            f"the JSON body holds far more items than {max_images} images need; send at most {max_images} "
            "instances per request",
            status=413,
            code="too_many_images",
        )
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(f"request body is not valid JSON ({error})", code="invalid_json") from None
    except RecursionError:
        raise ApiError("request body is JSON nested too deeply", code="invalid_json") from None
    try:
        instances = PredictRequest.model_validate(document).instances
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        # ("instances", 0, "b64") -> "instance 0 b64", as the base64 errors name them
        where = " ".join(str(part) for part in first["loc"]).replace("instances ", "instance ", 1)
        raise ApiError(
            f'JSON body must be {{"instances": [{{"b64": "<base64 image bytes>"}}, ...]}}: {where}: {first["msg"]}',
            code="invalid_json",
        ) from None
    return [
        Upload(
            decode_base64(instance.b64, f"instance {index}"),
            instance.name if isinstance(instance.name, str) else None,
        )
        for index, instance in enumerate(instances)
    ]


def decode_base64(encoded: str, what: str) -> bytes:
    """Base64 (or a data URL) -> bytes; an ApiError naming `what` when it is not valid base64."""
    # Browsers produce data URLs (canvas.toDataURL, FileReader): accept them as plain base64.
    if encoded.startswith("data:") and "," in encoded:
        encoded = encoded.split(",", 1)[1]
    compact = "".join(encoded.split())
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ApiError(f"{what}: invalid base64 ({error})", code="invalid_base64") from None
