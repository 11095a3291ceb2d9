"""A hostile-input corpus against the API: over a thousand malformed images, bodies and requests, no 5xx.

The corpus is generated from a fixed seed (the same inputs on every run, so a failure reproduces), through
Flask's test client for the bulk and the real waitress process for malformed HTTP. Every answer must be a
client error or a success, in JSON, without a traceback or a server path in it.
"""

from __future__ import annotations

import base64
import io
import json
import random
import socket
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import imagegen
import pytest
from PIL import Image

from realcheck.server.app import create_app
from realcheck.server.config import ServerConfig
from realcheck.server.service import PredictionService

SEED = 20261202
LEAKS = ("Traceback", "site-packages", 'File "', "/tmp/", "/home/", "/root/", "/work/")
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
# Header sizes a mutation writes: zero, tiny, ordinary, elongated and far past any pixel limit.
DIMENSIONS = (0, 1, 2, 31, 64, 1000, 7000, 65535, 100_000, 2**31 - 1, 2**32 - 1)


@dataclass(frozen=True)
class Case:
    """One hostile request: a name to reproduce it by, and what the test client is given."""

    name: str
    method: str = "POST"
    path: str = "/v1/predict"
    data: bytes | dict | None = None
    content_type: str | None = None
    json_text: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


@pytest.fixture(scope="module")
def client(tiny_artifact, onnx_cache_dir):
    config = ServerConfig(
        model_dir=tiny_artifact,
        backend="onnx",
        cache_dir=onnx_cache_dir,
        max_request_bytes=4 * 1024 * 1024,
        max_images_per_request=16,
    )
    service = PredictionService(config).start()
    yield create_app(config, service=service).test_client()
    service.stop()


def seed_images() -> dict[str, bytes]:
    """One small valid image per format, to mutate."""
    images = {}
    for index, fmt in enumerate(FORMATS):
        buffer = io.BytesIO()
        Image.fromarray(imagegen.make_array("real" if index % 2 else "ai", 40, seed=index)).save(
            buffer, format=fmt
        )
        images[fmt] = buffer.getvalue()
    return images


def png_with_size(width: int, height: int, payload: bytes = b"\0" * 64) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(payload))
        + chunk(b"IEND", b"")
    )


def mutated_images(rng: random.Random) -> Iterator[Case]:
    """Byte flips, cuts, insertions, duplicated spans and rewritten header sizes of every format."""
    for fmt, data in seed_images().items():
        mime = f"image/{fmt.lower()}"
        for index in range(40):
            flipped = bytearray(data)
            for _ in range(rng.randint(1, 24)):
                flipped[rng.randrange(len(flipped))] = rng.randrange(256)
            yield Case(f"{fmt}-flip-{index}", data=bytes(flipped), content_type=mime)
        for index in range(25):
            yield Case(f"{fmt}-cut-{index}", data=data[: rng.randrange(1, len(data))], content_type=mime)
        for index in range(15):
            at = rng.randrange(len(data))
            junk = rng.randbytes(rng.randint(1, 400))
            yield Case(f"{fmt}-insert-{index}", data=data[:at] + junk + data[at:], content_type=mime)
        for index in range(10):
            start = rng.randrange(len(data))
            span = data[start : start + rng.randint(1, 200)]
            yield Case(f"{fmt}-repeat-{index}", data=data[:start] + span * rng.randint(2, 50) + data[start:])
        for index in range(10):  # the magic bytes of one format in front of another's body
            other = FORMATS[(FORMATS.index(fmt) + 1 + index) % len(FORMATS)]
            yield Case(
                f"{fmt}-as-{other}-{index}", data=seed_images()[other][:16] + data[16:], content_type=mime
            )
    for width in DIMENSIONS:
        for height in DIMENSIONS:
            yield Case(
                f"png-header-{width}x{height}", data=png_with_size(width, height), content_type="image/png"
            )
    for index in range(20):
        width, height = rng.choice(DIMENSIONS), rng.choice(DIMENSIONS)
        data = bytearray(seed_images()["JPEG"])
        sof = data.find(b"\xff\xc0")
        data[sof + 5 : sof + 9] = struct.pack(">HH", height & 0xFFFF, width & 0xFFFF)
        yield Case(f"jpeg-sof-{index}-{width}x{height}", data=bytes(data), content_type="image/jpeg")
    buffer = io.BytesIO()
    Image.fromarray(imagegen.make_array("real", 64, seed=7)).save(buffer, format="JPEG", progressive=True)
    progressive = buffer.getvalue()
    for index in range(20):  # cut anywhere in its scans, an end marker appended to hide the cut
        cut = rng.randrange(progressive.index(b"\xff\xda"), len(progressive) - 2)
        yield Case(
            f"progressive-cut-{index}", data=progressive[:cut] + b"\xff\xd9", content_type="image/jpeg"
        )
    for index in range(20):
        data = bytearray(seed_images()["BMP"])
        data[18:26] = struct.pack(
            "<ii", rng.choice((-1, 0, 1, 2**31 - 1, -(2**31))), rng.choice((-40, 40, 10**6))
        )
        yield Case(f"bmp-header-{index}", data=bytes(data), content_type="image/bmp")


def hostile_multipart(rng: random.Random) -> Iterator[Case]:
    """Multipart bodies with wrong, missing and repeated structure."""
    good = seed_images()["PNG"]
    boundary = "fuzzboundary"

    def body(parts: list[bytes], closing: bool = True) -> bytes:
        joined = b"".join(b"--" + boundary.encode() + b"\r\n" + part + b"\r\n" for part in parts)
        return joined + (b"--" + boundary.encode() + b"--\r\n" if closing else b"")

    dispositions = [
        b'Content-Disposition: form-data; name="image"; filename="a.png"',
        b"Content-Disposition: form-data",
        b'Content-Disposition: form-data; filename="no-name.png"',
        b'Content-Disposition: form-data; name=""; filename=""',
        b'Content-Disposition: form-data; name="image"; filename="../../etc/passwd"',
        b'Content-Disposition: form-data; name="image"; filename="\xff\xfe.png"',
        b'Content-Disposition: form-data; name="image"; filename="a\x00b.png"',
        b"Content-Disposition: attachment",
        b"",
    ]
    payloads = [good, b"", b"not an image", good[: len(good) // 2], png_with_size(100_000, 100_000)]
    for index in range(140):
        parts = []
        for _ in range(rng.randint(0, 5)):
            head = rng.choice(dispositions)
            if rng.random() < 0.5:
                head += b"\r\nContent-Type: " + rng.choice([b"image/png", b"text/plain", b"", b"\xff"])
            parts.append(head + b"\r\n\r\n" + rng.choice(payloads))
        data = body(parts, closing=rng.random() < 0.8)
        if rng.random() < 0.2:
            data = data[: rng.randrange(1, max(2, len(data)))]
        content_type = rng.choice(
            [
                f"multipart/form-data; boundary={boundary}",
                "multipart/form-data",
                "multipart/form-data; boundary=",
                "multipart/form-data; boundary=other",
                f'multipart/form-data; boundary="{boundary}"; charset=utf-8',
            ]
        )
        yield Case(f"multipart-{index}", data=data, content_type=content_type)
    many = body([b'Content-Disposition: form-data; name="i"; filename="x.png"\r\n\r\n' + good] * 40)
    yield Case(
        "multipart-too-many-parts", data=many, content_type=f"multipart/form-data; boundary={boundary}"
    )


def hostile_json(rng: random.Random) -> Iterator[str]:
    """JSON texts of every wrong shape, type and encoding."""
    good = base64.b64encode(seed_images()["PNG"]).decode()
    values = [
        None, 0, -1, 1e308, True, "", "x", [], {}, [[]], good, "data:,", "data:image/png;base64," + good,
        good[:-3], good + "!", " " + good + "\n", "=" * 8, "A" * 4099, "\u00e9\u4e2d", {"b64": None},
    ]  # fmt: skip
    fixed = [
        "", "null", "[]", "{}", '"instances"', "[1,2,3]", '{"instances": null}', '{"instances": {}}',
        '{"instances": "abc"}', '{"instances": [null]}', '{"instances": [[]]}', '{"instances": [1]}',
        '{"instances": [{}]}', '{"instances": [{"b64": 1}]}', '{"instances": NaN}', '{"instances": Infinity}',
        '{"instances": [{"b64": "' + good + '", "b64": 5}]}', "[" * 5000 + "]" * 5000, '{"a":' * 3000 + "1" + "}" * 3000,
        '{"instances": []}', "\ufeff{}", '{"instances": [{"b64": "\\ud800"}]}', "\xff\xfe{", "{" + '"k": 1,' * 5000 + '"z": 2}',
    ]  # fmt: skip
    yield from fixed
    for _ in range(160):
        instances = []
        for _ in range(rng.randint(0, 4)):
            instance = {"b64": rng.choice(values)} if rng.random() < 0.8 else rng.choice(values)
            if isinstance(instance, dict) and rng.random() < 0.3:  # a copy: `values` holds dicts too
                instance = {**instance, "name": rng.choice(values)}
            instances.append(instance)
        document = {"instances": instances} if rng.random() < 0.85 else rng.choice(values)
        yield json.dumps(document)


def hostile_requests() -> Iterator[Case]:
    """Odd methods, paths, content types and empty bodies."""
    png = seed_images()["PNG"]
    for method in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE"):
        for path in (
            "/v1/predict",
            "/v1/models",
            "/v1/models/x",
            "/readyz",
            "/",
            "/metrics",
            "/openapi.json",
        ):
            yield Case(f"{method} {path}", method=method, path=path)
    paths = [
        "/v1//predict", "/v1/predict/", "/V1/PREDICT", "/v1/predict?x=1&x=2", "/v1/models/%00", "/v1/models/..%2f..",
        "/v1/models/" + "a" * 5000, "/static/x", "/static/../README.md", "/v2/predict", "/%ff", "/v1/models/%ff%fe",
    ]  # fmt: skip
    for path in paths:
        yield Case(f"path {path[:40]}", path=path, data=png, content_type="image/png")
        yield Case(f"get {path[:40]}", method="GET", path=path)
    content_types = [
        None, "", "image/png; charset=utf-8", "image/", "image/svg+xml", "text/plain", "application/x-www-form-urlencoded",
        "application/json; charset=latin-1", "application/octet-stream", "*/*", "multipart/mixed; boundary=x",
        "image/png, image/jpeg", "\x00", "a" * 3000,
    ]  # fmt: skip
    for content_type in content_types:
        for data in (b"", png, b"\x00" * 100):
            yield Case(f"content-type {content_type!r:.30} {len(data)}", data=data, content_type=content_type)


def hostile_feedback_and_hosts() -> Iterator[Case]:
    """The second round's finds: feedback text the databases cannot store, ids past 32 bits, floods of
    unknown fields or tiny JSON instances, and requests addressed to a rebinding page's name."""
    report = {"sha256": "ab" * 32, "label": "real", "model": {"name": "m", "version": "1"}, "score": 0.5}
    texts = ["\x00", "a\x00b", "\ud800", "\udfff\ud800", "x" * 1001, "app\n", "", " "]
    for index, text in enumerate(texts):
        for field in ("note", "client", "model"):
            value = {"name": text, "version": "1"} if field == "model" else text
            body = json.dumps(report | {field: value})
            yield Case(
                f"feedback {field} {index}",
                path="/v1/feedback",
                json_text=body,
                content_type="application/json",
            )
    flood = json.dumps(report | {f"k{index}": 1 for index in range(20_000)})
    yield Case(
        "feedback unknown-field flood", path="/v1/feedback", json_text=flood, content_type="application/json"
    )
    for after in (
        "2147483647",
        "2147483648",
        "9223372036854775808",
        "1" + "0" * 400,
        "-1",
        "1e3",
        "0x10",
        "",
    ):
        yield Case(f"feedback after={after[:20]}", method="GET", path=f"/v1/feedback?after={after}")
    tiny = '{"instances": [' + ",".join(['{"b64": ""}'] * 200_000) + "]}"
    yield Case("json instance flood", json_text=tiny, content_type="application/json")
    for host in (
        "rebind.evil.example",
        "rebind.evil.example:8000",
        "localhost.evil",
        "[::1",
        "a" * 300,
        "\u00e9.example",
    ):
        for path in ("/v1/models", "/v1/feedback", "/"):
            yield Case(f"host {host[:30]} {path}", method="GET", path=path, headers=(("Host", host),))


def corpus() -> list[Case]:
    rng = random.Random(SEED)
    cases = list(mutated_images(rng)) + list(hostile_multipart(rng)) + list(hostile_requests())
    cases += list(hostile_feedback_and_hosts())
    cases += [
        Case(f"json-{index}", json_text=text, content_type="application/json")
        for index, text in enumerate(hostile_json(rng))
    ]
    return cases


def send(client, case: Case):
    data = case.json_text.encode("utf-8", "surrogatepass") if case.json_text is not None else case.data
    headers = {"Content-Type": case.content_type} if case.content_type is not None else {}
    return client.open(case.path, method=case.method, data=data, headers=headers | dict(case.headers))


def problems_with(case: Case, response) -> str | None:
    """Why an answer is wrong, or None: no 5xx, JSON errors, nothing internal, one result per image."""
    if response.status_code >= 500:
        return f"{response.status_code}: {response.get_data(as_text=True)[:200]}"
    text = response.get_data(as_text=True)
    if any(leak in text for leak in LEAKS):
        return f"leaks internals: {text[:200]}"
    if case.method == "HEAD" or response.status_code in (204, 304) or case.method == "OPTIONS":
        return None
    body = response.get_json(silent=True)
    if response.status_code >= 400:
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict) or set(error) != {"code", "message"}:
            return f"{response.status_code} without a JSON error: {text[:200]}"
    elif case.path == "/v1/predict" and case.method == "POST":
        predictions = body.get("predictions") if isinstance(body, dict) else None
        if not predictions or not all(("score" in p) != ("error" in p) for p in predictions):
            return f"200 without one score or error per image: {text[:200]}"
    return None


def test_the_corpus_is_large_and_varied():
    cases = corpus()
    assert len(cases) >= 1000
    assert len({case.name for case in cases}) == len(cases), "every case can be named to reproduce it"
    assert corpus() == cases, "the same seed gives the same corpus"


def test_no_hostile_input_gets_a_5xx_or_an_answer_that_is_not_json(client):
    failures = []
    statuses: dict[int, int] = {}
    for case in corpus():
        response = send(client, case)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        problem = problems_with(case, response)
        if problem:
            failures.append(f"{case.name}: {problem}")
    assert not failures, f"{len(failures)} bad answers, first ones:\n" + "\n".join(failures[:10])
    # The corpus reaches the model and every kind of refusal, not just one error path.
    assert {200, 400, 404, 405, 413, 415} <= set(statuses), statuses


# Malformed HTTP never reaches Flask: waitress answers it (plain text), so it is sent over a real socket.
RAW_REQUESTS = [
    b"GARBAGE\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
    b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 300_000 + b"\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-H: 1\r\n" * 5000 + b"\r\n",
    b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,  # a TLS ClientHello on the plain port
]


def raw_status(port: int, request: bytes) -> int | None:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        try:
            connection.sendall(request)
            connection.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may close before reading it all
        answer = b""
        try:
            while chunk := connection.recv(65536):
                answer += chunk
        except OSError:
            pass
    if not answer:
        return None  # closed without an answer: allowed for bytes that are not HTTP
    return int(answer.split(b" ", 2)[1])


def test_malformed_http_gets_a_documented_answer_from_the_real_server(live_server):
    # 400s, 431 for oversized headers, 501 for a transfer coding HTTP servers need not implement (RFC 9112
    # 6.1), 200 where a lenient parse still makes a valid GET; never a 500, and the server keeps answering.
    allowed = {None, 200, 400, 404, 405, 408, 413, 415, 431, 501}
    statuses = [raw_status(live_server.port, request) for request in RAW_REQUESTS]
    assert set(statuses) <= allowed, list(zip(statuses, (r[:40] for r in RAW_REQUESTS)))
    assert live_server.get_json("/readyz")[0] == 200
