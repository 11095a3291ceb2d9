"""A small client for the RealCheck API, for programs that check images without the model installed.

    from realcheck.server.client import RealCheckClient

    client = RealCheckClient("http://127.0.0.1:8000")
    for result in client.check(["photo.jpg", open("other.png", "rb").read()]):
        print(result["score"], result["verdict"])

It talks through one `requests` Session (connections kept alive across calls, safe to share between threads);
idempotent calls (GET) are retried with backoff when the connection fails or a proxy answers 502/504.
"""

from __future__ import annotations

import base64
import os
import urllib.parse
from collections.abc import Iterable
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

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

    def __init__(
        self, url: str = DEFAULT_URL, api_key: str | None = None, timeout: float = 60.0, retries: int = 2
    ):
        if "://" not in url:
            url = f"http://{url}"  # `127.0.0.1:8000` means what a browser would make of it
        if not url.startswith(("http://", "https://")):
            raise ClientError(f"server URL must start with http:// or https://, got {url!r}")
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.session = requests.Session()
        # GETs only: a POST that failed mid-way is the caller's to repeat. 503 is the server's own answer
        # (loading, overloaded) with a Retry-After the caller sees; 502/504 come from a proxy in front.
        retry = Retry(
            total=retries,
            read=0,
            status_forcelist=(502, 504),
            allowed_methods=frozenset({"GET"}),
            backoff_factor=0.2,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry, pool_maxsize=32)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["Accept"] = "application/json"
        if api_key:
            self.session.headers["X-API-Key"] = api_key

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
        files = [
            ("image", (name, data, "application/octet-stream"))
            for name, data in (_read(item, index) for index, item in enumerate(items))
        ]
        response = self._request("POST", "/v1/predict", files=files)
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
        response = self._request("POST", "/v1/predict", json={"instances": instances})
        return response["predictions"]

    def models(self) -> list[dict]:
        """Metadata of the served model(s)."""
        return self._request("GET", "/v1/models")["models"]

    def model(self, name: str) -> dict:
        """Metadata of the model called `name`."""
        return self._request("GET", f"/v1/models/{urllib.parse.quote(name, safe='')}")

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

    def close(self) -> None:
        """Close the kept-alive connections."""
        self.session.close()

    def _request(self, method: str, path: str, **body) -> dict:
        try:
            response = self.session.request(method, self.url + path, timeout=self.timeout, **body)
        except requests.RequestException as error:
            inner = error.args[0] if error.args else error  # urllib3's MaxRetryError, or the error itself
            raise ClientError(f"cannot reach the RealCheck server at {self.url}: {_reason(inner)}") from None
        if response.status_code >= 400:
            raise _error_from_response(response)
        try:
            return response.json()
        except ValueError as error:
            raise ClientError(f"the server at {self.url} did not answer JSON: {error}") from None


def _reason(error) -> str:
    """The innermost cause of a connection failure in plain words ("Connection refused"), not the HTTP
    library's own wrapping of it."""
    seen = getattr(error, "reason", error)
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        seen = seen.__cause__ or seen.__context__
    return str(getattr(error, "reason", error)).rsplit(": ", 1)[-1]


def _error_from_response(response: requests.Response) -> ClientError:
    try:
        detail = response.json()["error"]
        # The server's own words; the status is on the error (`status`), not in a sentence for people.
        return ClientError(detail["message"], response.status_code, detail.get("code"))
    except (ValueError, KeyError, TypeError):
        return ClientError(f"the server refused the request ({response.reason})", response.status_code)


def _read(item: ImageInput, index: int) -> tuple[str, bytes]:
    if isinstance(item, (bytes, bytearray, memoryview)):
        return f"image-{index}", bytes(item)
    path = Path(item)
    try:
        return path.name, path.read_bytes()
    except OSError as error:
        raise ClientError(f"cannot read {path}: {error.strerror or error}") from None
