"""A small client for the RealCheck API, for programs that check images without the model installed.

    from realcheck.server.client import RealCheckClient

    client = RealCheckClient("http://127.0.0.1:8000")
    for result in client.check(["photo.jpg", open("other.png", "rb").read()]):
        print(result["score"], result["verdict"])

Only the standard library is used (urllib), so importing it costs nothing.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable
from pathlib import Path

from realcheck.model.errors import RealCheckError

DEFAULT_URL = "http://127.0.0.1:8000"
ImageInput = str | os.PathLike | bytes | bytearray | memoryview


class ClientError(RealCheckError):
    """The server refused a request (status and error code from its JSON) or could not be reached."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class RealCheckClient:
    """Talks to a RealCheck server: check images, read model metadata, health and readiness."""

    def __init__(self, url: str = DEFAULT_URL, api_key: str | None = None, timeout: float = 60.0):
        if "://" not in url:
            url = f"http://{url}"  # `127.0.0.1:8000` means what a browser would make of it
        if not url.startswith(("http://", "https://")):
            raise ClientError(f"server URL must start with http:// or https://, got {url!r}")
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    def check(self, images: ImageInput | Iterable[ImageInput]) -> list[dict]:
        """Score one image or several (paths or bytes) in one request; one result dict per image, in order.

        Each result has score (P(AI)), verdict, threshold, sha256, cached, time_ms, plus model and version;
        in a call with several images, one the server cannot decode has `error` ({code, message}) instead
        of a score (a single bad image raises ClientError).
        """
        items = (
            [images] if isinstance(images, (str, os.PathLike, bytes, bytearray, memoryview)) else list(images)
        )
        if not items:
            return []
        parts = [_read(item, index) for index, item in enumerate(items)]
        boundary = f"realcheck-{uuid.uuid4().hex}"
        body = _multipart(parts, boundary)
        response = self._request(
            "POST", "/v1/predict", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        )
        model = response.get("model", {})
        return [
            prediction | {"model": model.get("name"), "version": model.get("version")}
            for prediction in response["predictions"]
        ]

    def check_one(self, image: ImageInput) -> dict:
        """Score a single image (path or bytes)."""
        return self.check([image])[0]

    def check_base64(self, images: Iterable[bytes]) -> list[dict]:
        """Score images sent as JSON base64 instances (the TF Serving style body)."""
        instances = [{"b64": base64.b64encode(bytes(data)).decode("ascii")} for data in images]
        body = json.dumps({"instances": instances}).encode()
        response = self._request("POST", "/v1/predict", body, {"Content-Type": "application/json"})
        return response["predictions"]

    def models(self) -> list[dict]:
        """Metadata of the served model(s)."""
        return self._request("GET", "/v1/models")["models"]

    def model(self, name: str) -> dict:
        """Metadata of the model called `name`."""
        return self._request("GET", f"/v1/models/{urllib.request.quote(name, safe='')}")

    def healthy(self) -> bool:
        """True when the server answers /healthz."""
        try:
            return self._request("GET", "/healthz").get("status") == "ok"
        except ClientError:
            return False

    def ready(self) -> bool:
        """True when the model is loaded and warmed up (/readyz answers 200)."""
        try:
            self._request("GET", "/readyz")
            return True
        except ClientError:
            return False

    def _request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> dict:
        headers = dict(headers or {})
        headers["Accept"] = "application/json"
        if self.api_key:
            headers["X-API-Key"] = self.api_key
        request = urllib.request.Request(self.url + path, data=body, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise _error_from_response(error) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise ClientError(f"cannot reach the RealCheck server at {self.url}: {reason}") from None
        except ValueError as error:
            raise ClientError(f"the server at {self.url} did not answer JSON: {error}") from None


def _error_from_response(error: urllib.error.HTTPError) -> ClientError:
    try:
        detail = json.loads(error.read())["error"]
        # The server's own words; the status is on the error (`status`), not in a sentence for people.
        return ClientError(detail["message"], error.code, detail.get("code"))
    except (ValueError, KeyError, TypeError, OSError):
        return ClientError(f"the server refused the request ({error.reason})", error.code)


def _read(item: ImageInput, index: int) -> tuple[str, bytes]:
    if isinstance(item, (bytes, bytearray, memoryview)):
        return f"image-{index}", bytes(item)
    path = Path(item)
    try:
        return path.name, path.read_bytes()
    except OSError as error:
        raise ClientError(f"cannot read {path}: {error.strerror or error}") from None


def _multipart(parts: list[tuple[str, bytes]], boundary: str) -> bytes:
    chunks = []
    for filename, data in parts:
        safe_name = filename.replace('"', "_").replace("\r", "_").replace("\n", "_")
        chunks.append(
            (
                f"--{boundary}\r\n"
                f'Content-Disposition: form-data; name="image"; filename="{safe_name}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
        )
        chunks.append(data)
        chunks.append(b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks)
