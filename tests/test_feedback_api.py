"""POST and GET /v1/feedback (server/feedback/routes.py) through Flask's test client, on real databases."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import random

import imagegen
import pytest
from PIL import Image
from serving import free_port
from test_server import assert_error, bomb_png, schema_validator

from realcheck.server.app import create_app
from realcheck.server.config import ServerConfig
from realcheck.server.feedback.store import FeedbackStore


@pytest.fixture
def make_client(service, tiny_artifact, onnx_cache_dir, tmp_path):
    """A test client for an app with these config overrides (its own SQLite file unless told otherwise)."""

    def make(**overrides):
        values = {"feedback_db": str(tmp_path / "feedback.sqlite3")} | overrides
        config = ServerConfig(model_dir=tiny_artifact, backend="onnx", cache_dir=onnx_cache_dir, **values)
        return create_app(config, service=service).test_client()

    return make


def body(data: bytes | None = None, **changes) -> dict:
    """A valid report; with `data`, about those bytes and sharing them."""
    data_for_hash = data if data is not None else b"an image not shared"
    document = {
        "sha256": hashlib.sha256(data_for_hash).hexdigest(),
        "label": "real",
        "model": {"name": "realcheck-tiny", "version": "0.0.1-test"},
        "score": 0.91,
        "verdict": "ai",
    }
    if data is not None:
        document["image_b64"] = base64.b64encode(data).decode()
    return document | changes


def stored(client) -> list[dict]:
    response = client.get("/v1/feedback?limit=1000")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["reports"]


def test_a_report_is_stored_and_listed(make_client, feedback_db):
    client = make_client(feedback_db=feedback_db)
    png = imagegen.image_bytes("real", 48, seed=1)
    response = client.post("/v1/feedback", json=body(png, note="my own photo", client="extension"))
    assert response.status_code == 201, response.get_data(as_text=True)
    report = response.get_json()["report"]
    assert report["image_shared"] and report["label"] == "real" and report["note"] == "my own photo"
    assert report["model"] == {"name": "realcheck-tiny", "version": "0.0.1-test"}
    plain = client.post("/v1/feedback", json=body(label="ai", verdict=None)).get_json()["report"]
    assert not plain["image_shared"] and plain["verdict"] is None
    # A data URL (what a browser's FileReader makes) is accepted as base64.
    data_url = body(png, label="real")
    data_url["image_b64"] = "data:image/png;base64," + data_url["image_b64"]
    assert client.post("/v1/feedback", json=data_url).status_code == 201
    listing = client.get("/v1/feedback").get_json()
    assert listing["total"] == 3 and listing["next_after"] is None
    assert [r["id"] for r in listing["reports"]] == sorted(r["id"] for r in listing["reports"])
    assert listing["reports"][0] == report
    assert FeedbackStore(feedback_db).image(report["sha256"]).data == png


def test_pages_of_reports(make_client):
    client = make_client()
    for index in range(5):
        assert client.post("/v1/feedback", json=body(note=str(index))).status_code == 201
    first = client.get("/v1/feedback?limit=2").get_json()
    assert [r["note"] for r in first["reports"]] == ["0", "1"] and first["total"] == 5
    second = client.get(f"/v1/feedback?limit=2&after={first['next_after']}").get_json()
    assert [r["note"] for r in second["reports"]] == ["2", "3"]
    last = client.get(f"/v1/feedback?limit=2&after={second['next_after']}").get_json()
    assert [r["note"] for r in last["reports"]] == ["4"] and last["next_after"] is None
    for query in ("limit=0", "limit=1001", "limit=x", "after=-1", "after=1.5"):
        assert_error(client.get(f"/v1/feedback?{query}"), 400, "invalid_parameter")


BAD_REPORTS = [
    # (name, request keyword arguments, status, code)
    ("form body", {"data": {"sha256": "x"}}, 415, "unsupported_media_type"),
    ("image body", {"data": b"\x89PNG", "content_type": "image/png"}, 415, "unsupported_media_type"),
    ("empty", {"data": b"", "content_type": "application/json"}, 400, "empty_body"),
    ("not json", {"data": b"{label: real", "content_type": "application/json"}, 400, "invalid_json"),
    ("array", {"json": [body()]}, 400, "invalid_json"),
    ("deep", {"data": b"[" * 100_000, "content_type": "application/json"}, 400, "invalid_json"),
    ("page url", {"json": body(page_url="https://news.example/story")}, 400, "unknown_field"),
    ("user", {"json": body(user="alice")}, 400, "unknown_field"),
    ("no sha", {"json": {k: v for k, v in body().items() if k != "sha256"}}, 400, "missing_field"),
    ("no score", {"json": body(score=None)}, 400, "missing_field"),
    ("model string", {"json": body(model="realcheck-tiny")}, 400, "invalid_model"),
    ("model extra", {"json": body(model={"name": "m", "version": "1", "url": "x"})}, 400, "invalid_model"),
    ("model no version", {"json": body(model={"name": "m"})}, 400, "invalid_model"),
    ("sha number", {"json": body(sha256=12)}, 400, "invalid_sha256"),
    ("label", {"json": body(label="fake")}, 400, "invalid_label"),
    ("score", {"json": body(score=-0.1)}, 400, "invalid_score"),
    ("bool score", {"json": body(score=True)}, 400, "invalid_score"),
    (
        "huge score",
        {"data": json.dumps(body(score=10**400)), "content_type": "application/json"},
        400,
        "invalid_score",
    ),
    ("note", {"json": body(note="n" * 1001)}, 400, "note_too_long"),
    ("base64", {"json": body(image_b64="not base64!")}, 400, "invalid_base64"),
    ("base64 number", {"json": body(image_b64=5)}, 400, "invalid_base64"),
    ("nul in note", {"json": body(note="a\x00b")}, 400, "invalid_note"),
    ("lone surrogate in note", {"json": body(note="\ud800")}, 400, "invalid_note"),
    (
        "lone surrogate in model",
        {"json": body(model={"name": "\udfff", "version": "1"})},
        400,
        "invalid_model",
    ),
    ("nul in version", {"json": body(model={"name": "m", "version": "1\x00"})}, 400, "invalid_model"),
    ("client with newline", {"json": body(client="app\n")}, 400, "invalid_client"),
]


@pytest.mark.parametrize(
    ("name", "request_args", "status", "code"), BAD_REPORTS, ids=[c[0] for c in BAD_REPORTS]
)
def test_bad_reports_get_a_clear_4xx_and_store_nothing(make_client, name, request_args, status, code):
    client = make_client()
    assert_error(client.post("/v1/feedback", **request_args), status, code)
    assert stored(client) == []


def test_shared_bytes_pass_the_same_checks_as_predict(make_client):
    client = make_client(max_image_bytes=20_000)
    png = imagegen.image_bytes("ai", 48, seed=2)
    mismatch = body(png) | {"sha256": hashlib.sha256(b"another image").hexdigest()}
    assert_error(client.post("/v1/feedback", json=mismatch), 400, "sha256_mismatch")
    assert_error(client.post("/v1/feedback", json=body(b"GIF89a" + b"\0" * 40)), 400, "invalid_image")
    truncated = imagegen.image_bytes("ai", 200, seed=2, fmt="JPEG")[:600]
    assert_error(client.post("/v1/feedback", json=body(truncated)), 400, "invalid_image")
    assert_error(client.post("/v1/feedback", json=body(bomb_png())), 400, "invalid_image", "too many pixels")
    strip = io.BytesIO()
    Image.new("RGB", (1700, 100)).save(strip, format="PNG")  # more elongated than 16:1
    assert_error(client.post("/v1/feedback", json=body(strip.getvalue())), 400, "invalid_image")
    large = imagegen.image_bytes("ai", 400, seed=3)
    assert len(large) > 20_000
    assert_error(client.post("/v1/feedback", json=body(large)), 413, "image_too_large")
    assert stored(client) == []
    assert client.post("/v1/feedback", json=body(png)).status_code == 201


def test_request_size_limit(make_client):
    client = make_client(max_request_bytes=10_000)
    response = client.post("/v1/feedback", json=body(note="x" * 20_000))
    assert_error(response, 413, "request_too_large")
    assert stored(client) == []


def test_api_key_and_rate_limit_cover_feedback(make_client):
    locked = make_client(api_key="s3cret")
    assert_error(locked.post("/v1/feedback", json=body()), 401, "unauthorized")
    assert_error(locked.get("/v1/feedback"), 401, "unauthorized")
    assert locked.post("/v1/feedback", json=body(), headers={"X-API-Key": "s3cret"}).status_code == 201
    assert locked.get("/v1/feedback", headers={"X-API-Key": "s3cret"}).get_json()["total"] == 1
    limited = make_client(rate_limit_per_minute=2)
    assert limited.post("/v1/feedback", json=body()).status_code == 201
    assert limited.post("/v1/feedback", json=body()).status_code == 201
    response = limited.post("/v1/feedback", json=body())
    assert_error(response, 429, "rate_limited")
    assert int(response.headers["Retry-After"]) >= 1


def test_both_databases_answer_client_mistakes_alike(make_client, feedback_db):
    client = make_client(feedback_db=feedback_db)
    for document in (body(note="a\x00b"), body(note="\ud800"), body(model={"name": "m\x00", "version": "1"})):
        assert client.post("/v1/feedback", json=document).status_code == 400
    for after in (2**31 - 1, 2**31, 2**63, 10**30):
        answer = client.get(f"/v1/feedback?after={after}")
        assert answer.status_code == 200 and answer.get_json()["reports"] == [], after
    assert stored(client) == []


def test_unknown_fields_are_named_briefly(make_client):
    document = body() | {f"field-{index}-" + "x" * 100: 1 for index in range(10_000)}
    error = assert_error(make_client().post("/v1/feedback", json=document), 400, "unknown_field")
    assert len(error["message"]) < 600 and "and 9995 more" in error["message"]


def test_a_database_that_cannot_be_opened_is_a_503_not_a_500(make_client, tmp_path):
    not_a_database = tmp_path / "garbage.sqlite3"
    not_a_database.write_bytes(b"this is not a database file " * 100)
    blocked = tmp_path / "a-file"
    blocked.write_text("a file where the database's folder should be")
    for location in (not_a_database, blocked / "feedback.sqlite3"):
        client = make_client(feedback_db=str(location))
        assert_error(client.post("/v1/feedback", json=body()), 503, "feedback_unavailable")
        assert_error(client.get("/v1/feedback"), 503, "feedback_unavailable")


def test_an_unreachable_database_is_a_503_that_says_retry(make_client):
    client = make_client(feedback_db=f"postgresql://nobody@127.0.0.1:{free_port()}/none?connect_timeout=2")
    response = client.post("/v1/feedback", json=body())
    assert_error(response, 503, "feedback_unavailable", "nothing was stored")
    assert response.headers["Retry-After"] == "5"
    assert_error(client.get("/v1/feedback"), 503, "feedback_unavailable")


def test_a_database_outage_is_logged_once_per_interval_not_per_report(make_client, caplog):
    client = make_client(feedback_db=f"postgresql://nobody@127.0.0.1:{free_port()}/none?connect_timeout=2")
    with caplog.at_level("ERROR", logger="realcheck"):
        for _ in range(5):
            assert client.post("/v1/feedback", json=body()).status_code == 503
    outage_lines = [record for record in caplog.records if "feedback database" in record.getMessage()]
    assert len(outage_lines) <= 1, [record.getMessage() for record in outage_lines]


def test_openapi_describes_feedback(make_client):
    from openapi_spec_validator import validate

    document = make_client().get("/openapi.json").get_json()
    validate(document)
    operations = document["paths"]["/v1/feedback"]
    assert {"post", "get"} <= set(operations)
    request_schema = document["components"]["schemas"]["FeedbackRequest"]
    # The document names exactly the fields the server takes.
    from realcheck.server.feedback.routes import REPORT_FIELDS

    assert set(request_schema["properties"]) == REPORT_FIELDS
    assert request_schema["additionalProperties"] is False


def test_hostile_report_bodies_never_get_a_5xx(make_client):
    """A seeded corpus of mutated reports: each gets JSON below 500, only valid ones are stored, and the
    served OpenAPI document's FeedbackRequest agrees: what it refuses, the server refuses (the server also
    refuses what a schema cannot say: NUL characters, an image that does not hash to sha256)."""
    client = make_client()
    schema = schema_validator(client, "FeedbackRequest")
    rng = random.Random(13)
    png = imagegen.image_bytes("real", 40, seed=4)
    values = [
        None,
        True,
        0,
        -1,
        1e308,
        "",
        "ai",
        "real",
        "x" * 3000,
        [],
        {},
        [1],
        {"a": None},
        "\u0000",
        "é" * 50,
    ]
    accepted = 0
    for _ in range(300):
        document = body(png if rng.random() < 0.3 else None)
        for _ in range(rng.randint(1, 3)):
            key = rng.choice([*document, "extra"])
            document[key] = rng.choice(values)
        response = client.post("/v1/feedback", data=json.dumps(document), content_type="application/json")
        assert response.status_code < 500, (document, response.get_data(as_text=True))
        assert response.mimetype == "application/json"
        if not schema.is_valid(document):
            assert response.status_code == 400, document
        if response.status_code == 201:
            accepted += 1
        else:
            assert set(response.get_json()["error"]) == {"code", "message"}
    assert client.get("/v1/feedback").get_json()["total"] == accepted


def test_the_feedback_gate_refuses_only_while_the_database_stores_nothing():
    import time

    from realcheck.server.errors import ApiError
    from realcheck.server.feedback.routes import FeedbackGate

    gate = FeedbackGate(slots=2, stuck_s=0.05)
    first, second = gate.admit(), gate.admit()
    first.__enter__()
    second.__enter__()
    time.sleep(0.1)
    first.__exit__(None, None, None)  # stored: a slow queue that moves
    third, fourth = gate.admit(), gate.admit()
    third.__enter__()  # two in flight, the oldest long waiting, but one was just stored: admitted
    fourth.__enter__()
    time.sleep(0.1)  # nothing stored since: stuck
    with pytest.raises(ApiError, match="busy"), gate.admit():
        pass
    for admitted in (second, third, fourth):
        admitted.__exit__(None, None, None)
    with gate.admit():  # nothing in flight: admitted again
        pass
