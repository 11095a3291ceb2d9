"""The API through Flask's test client: every endpoint, every bad input of the safety list, access rules."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import struct
import threading
import time
import zlib

import imagegen
import provenancegen
import pytest
from PIL import Image
from serving import jpeg_bytes, varied_images

from realcheck.server.app import create_app
from realcheck.server.config import ServerConfig
from realcheck.server.metrics import Metrics
from realcheck.server.service import PredictionService

ERROR_KEYS = {"code", "message"}


@pytest.fixture(scope="module")
def make_client(service, tiny_artifact, onnx_cache_dir):
    """A test client for an app with these config overrides, sharing the one loaded model."""

    def make(**overrides):
        config = ServerConfig(model_dir=tiny_artifact, backend="onnx", cache_dir=onnx_cache_dir, **overrides)
        return create_app(config, service=service).test_client()

    return make


@pytest.fixture(scope="module")
def client(make_client):
    return make_client()


def multipart(*images: bytes, names=None) -> dict:
    names = names or [f"img{i}.png" for i in range(len(images))]
    return {
        "data": {"image": [(io.BytesIO(data), name) for data, name in zip(images, names)]},
        "content_type": "multipart/form-data",
    }


def assert_error(response, status: int, code: str | None = None, says: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body["error"]) == ERROR_KEYS
    assert "Traceback" not in body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    if says:
        assert says in body["error"]["message"].lower()
    return body["error"]


# --- endpoints ------------------------------------------------------------------------------------------


def test_healthz_and_readyz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.get_json()
    assert body["status"] == "ready" and body["model"]["name"] == "realcheck-tiny"
    assert body["runtime"]["runtime"] == "onnxruntime"


def test_readyz_and_predict_before_the_model_is_loaded(tiny_artifact, onnx_cache_dir):
    config = ServerConfig(model_dir=tiny_artifact, cache_dir=onnx_cache_dir)
    loading = PredictionService(config)
    loading.metadata = {"name": "realcheck-tiny", "version": "0.0.1-test"}
    client = create_app(config, service=loading).test_client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 503
    response = client.post("/v1/predict", data=jpeg_bytes(), content_type="image/jpeg")
    assert_error(response, 503, "not_ready")
    assert response.headers["Retry-After"]


def test_predict_multipart_names_model_and_every_field(client):
    images = varied_images(3, size=40)
    response = client.post("/v1/predict", **multipart(*images, names=["a.png", "b.jpg", "c.jpg"]))
    assert response.status_code == 200
    body = response.get_json()
    assert body["model"] == {"name": "realcheck-tiny", "version": "0.0.1-test"}
    assert body["decision"]["accuracy_statement"].startswith("This model's accuracy")
    assert [p["filename"] for p in body["predictions"]] == ["a.png", "b.jpg", "c.jpg"]
    for prediction, data in zip(body["predictions"], images):
        assert 0.0 <= prediction["score"] <= 1.0
        assert prediction["verdict"] in {"ai", "real", "uncertain"}
        assert prediction["threshold"] == 0.5
        assert (prediction["real_below"], prediction["ai_above"]) == tuple(
            body["decision"]["uncertainty_band"]
        )
        assert prediction["sha256"] == __import__("hashlib").sha256(data).hexdigest()
        assert prediction["cached"] is False
        assert prediction["time_ms"] >= 0


def test_json_base64_raw_body_and_data_url_give_the_same_score(client):
    data = jpeg_bytes("ai", 57, seed=7)
    encoded = base64.b64encode(data).decode()
    by_multipart = client.post("/v1/predict", **multipart(data)).get_json()["predictions"][0]["score"]
    by_json = client.post("/v1/predict", json={"instances": [{"b64": encoded}]}).get_json()
    by_raw = client.post("/v1/predict", data=data, content_type="image/jpeg").get_json()
    by_data_url = client.post(
        "/v1/predict", json={"instances": [{"b64": "data:image/jpeg;base64," + encoded, "name": "x.jpg"}]}
    ).get_json()
    assert by_json["predictions"][0]["score"] == by_multipart
    assert by_raw["predictions"][0]["score"] == by_multipart
    assert by_data_url["predictions"][0]["filename"] == "x.jpg"
    assert by_json["predictions"][0]["cached"] is True


def test_many_images_in_one_request_score_like_one_at_a_time(make_client):
    client = make_client(result_cache_size=0)
    images = varied_images(7, size=45)
    together = [
        p["score"] for p in client.post("/v1/predict", **multipart(*images)).get_json()["predictions"]
    ]
    alone = [
        client.post("/v1/predict", **multipart(data)).get_json()["predictions"][0]["score"] for data in images
    ]
    assert together == pytest.approx(alone, abs=1e-6)


def test_cache_hit_costs_no_model_time(client, service):
    data = jpeg_bytes("real", 71, seed=71)
    first = client.post("/v1/predict", data=data, content_type="image/jpeg").get_json()["predictions"][0]
    batches_before = service.metrics.batch_size._sum.get()
    second = client.post("/v1/predict", data=data, content_type="image/jpeg").get_json()["predictions"][0]
    assert (first["cached"], second["cached"]) == (False, True)
    assert first["score"] == second["score"] and first["sha256"] == second["sha256"]
    assert service.metrics.batch_size._sum.get() == batches_before


def test_models_and_one_model(client):
    models = client.get("/v1/models").get_json()["models"]
    assert len(models) == 1
    model = models[0]
    for key in (
        "name",
        "version",
        "backbone",
        "input_size",
        "threshold",
        "uncertainty_band",
        "training_data",
    ):
        assert key in model
    assert model["backbone"] == "efficientnet_lite0" and model["input_size"] == 32
    assert "metrics" in model and model["state"] == "ready"
    assert client.get("/v1/models/realcheck-tiny").get_json()["version"] == "0.0.1-test"
    assert_error(client.get("/v1/models/other"), 404, "model_not_found")


def schema_validator(client, name: str):
    """A validator for the server's own OpenAPI schema `name`, as /openapi.json serves it."""
    from openapi_schema_validator import OAS31Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    document = client.get("/openapi.json").get_json()
    registry = Registry().with_resource("urn:realcheck", Resource.from_contents(document, DRAFT202012))
    return OAS31Validator({"$ref": f"urn:realcheck#/components/schemas/{name}"}, registry=registry)


def test_a_model_shows_its_public_metadata_as_the_openapi_schema_describes(client, service):
    from realcheck.model.artifacts.metadata import FIELDS_BY_KEY, PUBLIC_FIELDS

    model = client.get("/v1/models").get_json()["models"][0]
    schema_validator(client, "Model").validate(model)
    shown = {key for key in model if key in FIELDS_BY_KEY}
    assert shown == {key for key in PUBLIC_FIELDS if key in service.metadata}
    assert {"weights", "score", "created_at"} <= shown and not {"command", "library_versions"} & set(model)


def test_models_state_how_good_the_model_is_in_words_from_its_metadata(client, service, monkeypatch):
    model = client.get("/v1/models").get_json()["models"][0]
    assert "was not measured" in model["accuracy_statement"]
    rates = {"ai_caught": 0.5, "real_called_ai": 0.02, "uncertain": 0.25}
    measured = {"protocol": "cross-collection (test)", "clean": rates}
    monkeypatch.setattr(service, "metadata", service.metadata | {"operating_point": {"measured": measured}})
    model = client.get("/v1/models").get_json()["models"][0]
    assert "called 50% of AI images AI and 2.0% of real photos AI" in model["accuracy_statement"]
    schema_validator(client, "Model").validate(model)


def test_models_state_the_upload_limits_of_the_servers_configuration(make_client):
    client = make_client(max_image_bytes=1000, max_request_bytes=5000, max_images_per_request=3)
    answer = client.get("/v1/models").get_json()
    assert answer["limits"] == {
        "max_image_bytes": 1000,
        "max_request_bytes": 5000,
        "max_images_per_request": 3,
    }
    validator = schema_validator(client, "ModelList")
    validator.validate(answer)
    with pytest.raises(Exception, match="limits"):
        validator.validate({"models": answer["models"]})
    # What is stated is what is enforced.
    too_big = jpeg_bytes("real", 200)
    assert len(too_big) > 1000
    assert_error(client.post("/v1/predict", data=too_big, content_type="image/jpeg"), 413, "image_too_large")


def test_metrics_in_prometheus_format(client):
    client.post("/v1/predict", data=b"", content_type="image/png")
    client.post("/v1/predict", data=jpeg_bytes(seed=3), content_type="image/jpeg")
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    for name in (
        "realcheck_http_requests_total",
        "realcheck_http_request_duration_seconds_bucket",
        "realcheck_batch_size_bucket",
        "realcheck_cache_hits_total",
        "realcheck_cache_misses_total",
        "realcheck_model_ready 1.0",
    ):
        assert name in text
    assert 'realcheck_http_errors_total{code="empty_body",status="400"}' in text


def test_openapi_document_is_valid_and_complete(client):
    from openapi_spec_validator import validate

    document = client.get("/openapi.json").get_json()
    validate(document)
    assert document["openapi"].startswith("3.")
    for path in ("/v1/predict", "/v1/models", "/v1/models/{name}", "/healthz", "/readyz", "/metrics"):
        assert path in document["paths"]


def test_unknown_path_and_wrong_method_are_json(client):
    assert_error(client.get("/v2/nothing"), 404, "not_found", "no such endpoint")
    response = client.get("/v1/predict")
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


# --- the safety list: each bad input is a 4xx with a message saying what was wrong -----------------------


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid PNG header claiming width x height pixels, with almost no data: a decompression bomb."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def test_upload_over_the_size_limit_is_413(make_client):
    client = make_client(max_request_bytes=50_000)
    big = jpeg_bytes("real", 600, quality=95)
    assert len(big) > 50_000
    assert_error(client.post("/v1/predict", data=big, content_type="image/jpeg"), 413, "request_too_large")
    assert_error(client.post("/v1/predict", **multipart(big)), 413, "request_too_large")


def test_image_over_the_per_image_limit_is_413(make_client):
    client = make_client(max_image_bytes=1000)
    assert_error(
        client.post("/v1/predict", data=jpeg_bytes("real", 200), content_type="image/jpeg"),
        413,
        "image_too_large",
    )


def test_more_images_than_allowed_is_413(make_client):
    client = make_client(max_images_per_request=2)
    images = [jpeg_bytes(seed=i) for i in range(3)]
    assert_error(
        client.post("/v1/predict", **multipart(*images)), 413, "too_many_images", "over the limit of 2"
    )
    parts = multipart(*[b"x"] * 40)  # past Werkzeug's own multipart part limit (max images + 16)
    assert_error(client.post("/v1/predict", **parts), 413, "too_many_images")
    instances = [{"b64": base64.b64encode(d).decode()} for d in images]
    assert_error(client.post("/v1/predict", json={"instances": instances}), 413, "too_many_images")


def test_decompression_bomb_is_rejected_before_decoding(client, monkeypatch):
    from PIL import ImageFile

    def must_not_decode(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", must_not_decode)
    error = assert_error(
        client.post("/v1/predict", data=bomb_png(), content_type="image/png"), 400, "invalid_image"
    )
    assert "pixels" in error["message"]
    # Under Pillow's own bomb limit but over RealCheck's pixel limit: refused from the header alone.
    error = assert_error(
        client.post("/v1/predict", data=bomb_png(9000, 9000), content_type="image/png"), 400, "invalid_image"
    )
    assert "over the limit" in error["message"]


def test_real_oversized_image_file_is_rejected(client):
    buffer = io.BytesIO()
    Image.new("1", (8000, 7000)).save(buffer, format="PNG")  # 56 M pixels in a few kB
    error = assert_error(
        client.post("/v1/predict", data=buffer.getvalue(), content_type="image/png"), 400, "invalid_image"
    )
    assert "over the limit" in error["message"]


@pytest.mark.parametrize(
    "data, says",
    [
        (jpeg_bytes("ai", 120)[:400], "truncated"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20, "corrupt"),
        (b"just some text, not an image", "not an image"),
        (b"P6\n2 2\n255\n" + bytes(12), "unsupported image format ppm"),
    ],
    ids=["truncated", "corrupt", "not-an-image", "unsupported-format"],
)
def test_bad_image_bytes_are_400_with_the_reason(client, data, says):
    for response in (
        client.post("/v1/predict", data=data, content_type="image/jpeg"),
        client.post("/v1/predict", **multipart(data, names=["bad.jpg"])),
        client.post("/v1/predict", json={"instances": [{"b64": base64.b64encode(data).decode()}]}),
    ):
        assert_error(response, 400, "invalid_image", says)


def test_bad_image_among_good_ones_gets_its_own_error_and_the_others_are_scored(client, service):
    good = [jpeg_bytes(seed=91), jpeg_bytes("ai", seed=92)]
    alone = [client.post("/v1/predict", **multipart(image)).get_json()["predictions"][0] for image in good]
    before = service.metrics.batch_size._sum.get()
    invalid_before = service.metrics.invalid_images._value.get()
    bomb = bomb_png(9000, 9000)
    response = client.post(
        "/v1/predict",
        **multipart(good[0], b"nope", bomb, good[1], names=["ok.jpg", "bad.png", "bomb.png", "ok2.jpg"]),
    )
    assert response.status_code == 200
    first, bad, bombed, last = response.get_json()["predictions"]
    assert [first["score"], last["score"]] == [alone[0]["score"], alone[1]["score"]]
    assert bad["error"]["code"] == bombed["error"]["code"] == "invalid_image"
    assert bad["filename"] == "bad.png" and "image 2 (bad.png)" in bad["error"]["message"]
    assert "image 3 (bomb.png)" in bombed["error"]["message"] and "pixels" in bombed["error"]["message"]
    assert bad["sha256"] == hashlib.sha256(b"nope").hexdigest()
    assert "score" not in bad and "verdict" not in bad
    # The good images were cache hits, so the bad ones cost no model time either.
    assert service.metrics.batch_size._sum.get() == before
    assert service.metrics.invalid_images._value.get() == invalid_before + 2
    assert "realcheck_invalid_images_total" in client.get("/metrics").get_data(as_text=True)


def test_a_large_text_field_beside_an_image_is_ignored_not_called_too_many_images(client):
    data = {"note": "x" * 600_000, "image": (io.BytesIO(jpeg_bytes(seed=93)), "a.jpg")}
    response = client.post("/v1/predict", data=data, content_type="multipart/form-data")
    assert response.status_code == 200, response.get_json()
    assert [p["filename"] for p in response.get_json()["predictions"]] == ["a.jpg"]


def test_a_request_of_only_bad_images_answers_each(client):
    response = client.post("/v1/predict", **multipart(b"nope", b"", names=["a.png", "b.png"]))
    assert response.status_code == 200
    assert [p["error"]["code"] for p in response.get_json()["predictions"]] == ["invalid_image"] * 2


@pytest.mark.parametrize(
    "body, code, says",
    [
        ({"instances": [{"b64": "not base64 !!"}]}, "invalid_base64", "invalid base64"),
        ({"instances": [{"b64": "QUJ"}]}, "invalid_base64", "invalid base64"),
        ({"instances": []}, "no_images", "no images"),
        ({"images": ["x"]}, "invalid_json", "instances"),
        ({"instances": ["abc"]}, "invalid_json", "instance 0"),
        ([1, 2], "invalid_json", "instances"),
    ],
)
def test_bad_json_bodies_are_400(client, body, code, says):
    assert_error(client.post("/v1/predict", json=body), 400, code, says)


def test_malformed_json_is_400(client):
    assert_error(
        client.post("/v1/predict", data=b"{not json", content_type="application/json"), 400, "invalid_json"
    )


def test_empty_bodies_are_400(client):
    assert_error(client.post("/v1/predict", data=b"", content_type="image/jpeg"), 400, "empty_body")
    assert_error(client.post("/v1/predict"), 400, "empty_body")
    assert_error(client.post("/v1/predict", **multipart(b"")), 400, "invalid_image", "empty")
    response = client.post("/v1/predict", data={"note": "hello"}, content_type="multipart/form-data")
    assert_error(response, 400, "no_images", "no file parts")


def test_wrong_content_type_is_415(client):
    assert_error(
        client.post("/v1/predict", data=b"hello", content_type="text/plain"), 415, "unsupported_media_type"
    )
    assert_error(
        client.post("/v1/predict", data=b"a=1", content_type="application/x-www-form-urlencoded"),
        415,
        "unsupported_media_type",
    )


def test_urls_are_never_fetched(client):
    # A URL where image bytes belong is just bad base64/bytes: the server has no code path that fetches.
    assert_error(
        client.post("/v1/predict", json={"instances": [{"b64": "http://169.254.169.254/latest/"}]}), 400
    )
    assert_error(client.post("/v1/predict", json={"instances": [{"url": "http://example.org/x.jpg"}]}), 400)


def test_no_input_produces_a_500(client):
    rng = __import__("random").Random(0)
    for _ in range(40):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
        for kind in ("image/png", "application/json", "multipart/form-data", "application/octet-stream"):
            response = client.post("/v1/predict", data=data, content_type=kind)
            assert 400 <= response.status_code < 500, (kind, data)
            json.loads(response.get_data())


# --- access: CORS, API key, rate limit ------------------------------------------------------------------


def test_cors_only_for_configured_origins(make_client):
    default = make_client()
    assert (
        "Access-Control-Allow-Origin"
        not in default.get("/healthz", headers={"Origin": "chrome-extension://abc"}).headers
    )

    client = make_client(allow_extension_origins=True, cors_origins=["https://news.example"])
    for origin in ("chrome-extension://abcdefgh", "moz-extension://0b1c-22d3", "https://news.example"):
        assert (
            client.get("/healthz", headers={"Origin": origin}).headers["Access-Control-Allow-Origin"]
            == origin
        )
    for origin in ("https://evil.example", "chrome-extension://", "null"):
        refused = client.get("/healthz", headers={"Origin": origin}).headers
        assert "Access-Control-Allow-Origin" not in refused
        assert refused["Vary"] == "Origin"  # a cache must not hand this answer to an allowed origin, or back
    assert client.get("/healthz", headers={"Origin": "https://news.example"}).headers["Vary"] == "Origin"

    preflight = client.options(
        "/v1/predict",
        headers={
            "Origin": "chrome-extension://abcdefgh",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-api-key, x-other",
            "Access-Control-Request-Private-Network": "true",
        },
    )
    assert preflight.status_code == 200
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    allowed = {name.strip().lower() for name in preflight.headers["Access-Control-Allow-Headers"].split(",")}
    assert allowed == {"content-type", "x-api-key"}  # the API's headers, not whatever is asked for
    assert preflight.headers["Access-Control-Allow-Private-Network"] == "true"


def test_cors_config_refuses_wildcards():
    from realcheck.model.errors import RealCheckError

    with pytest.raises(RealCheckError, match="no wildcards"):
        ServerConfig(cors_origins=["*"])


def test_api_key(make_client):
    client = make_client(api_key="s3cret")
    assert_error(
        client.post("/v1/predict", data=jpeg_bytes(), content_type="image/jpeg"), 401, "unauthorized"
    )
    assert_error(client.get("/v1/models", headers={"X-API-Key": "wrong"}), 401, "unauthorized")
    assert client.get("/v1/models", headers={"X-API-Key": "s3cret"}).status_code == 200
    assert client.get("/v1/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
    assert client.options("/v1/predict").status_code == 200  # CORS preflights carry no key
    assert client.get("/openapi.json").get_json()["paths"]["/v1/predict"]["post"]["security"]


def test_rate_limit(make_client):
    client = make_client(rate_limit_per_minute=2)
    assert client.get("/v1/models").status_code == 200
    assert client.get("/v1/feedback").status_code == 200
    response = client.get("/v1/models")  # one count per client, whatever the routes
    assert_error(response, 429, "rate_limited", "rate limit of 2 requests a minute exceeded")
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert client.get("/healthz").status_code == 200  # open paths and preflights are never counted
    assert client.options("/v1/predict").status_code == 200


@pytest.mark.parametrize("trusted_proxies", [0, 1])
def test_behind_a_trusted_balancer_the_rate_limit_counts_the_clients_it_names(make_client, trusted_proxies):
    client = make_client(rate_limit_per_minute=1, trusted_proxies=trusted_proxies)
    statuses = [
        client.get("/v1/models", headers={"X-Forwarded-For": address}).status_code
        for address in ("203.0.113.1", "203.0.113.2")
    ]
    # Trusted: two clients, one request each. Not trusted: the header is anyone's to forge, so one client.
    assert statuses == ([200, 200] if trusted_proxies else [200, 429])


def test_metrics_are_per_app():
    assert Metrics().registry is not Metrics().registry


def test_imagegen_sanity():
    assert imagegen.image_bytes("ai", 20)[:4] == b"\x89PNG"


@pytest.mark.parametrize("size", [(1, 7000), (7000, 1), (1, 5_000_000)])
def test_a_strip_image_is_a_400_not_a_memory_bomb(client, size):
    buffer = io.BytesIO()
    Image.new("L", size).save(buffer, format="PNG", optimize=True)
    assert len(buffer.getvalue()) < 40_000  # tiny on the wire
    error = assert_error(
        client.post("/v1/predict", data=buffer.getvalue(), content_type="image/png"), 400, "invalid_image"
    )
    assert "aspect ratio" in error["message"]


def test_a_multipart_part_without_a_name_is_a_400(client):
    body = b"--xx\r\nContent-Disposition: form-data\r\n\r\nhello\r\n--xx--\r\n"
    response = client.post("/v1/predict", data=body, content_type="multipart/form-data; boundary=xx")
    assert_error(response, 400, "no_images")


def test_deeply_nested_json_is_a_400(client):
    body = b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert_error(client.post("/v1/predict", data=body, content_type="application/json"), 400, "invalid_json")


def test_no_static_files_are_served(client, tmp_path, monkeypatch):
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "secret.txt").write_text("do not serve")
    monkeypatch.chdir(tmp_path)
    response = client.get("/static/secret.txt")
    assert response.status_code == 404 and b"do not serve" not in response.data
    assert response.is_json


def test_a_doubled_slash_is_a_json_404_not_a_redirect(client):
    response = client.post("/v1//predict", data=b"x", content_type="image/jpeg")
    assert response.status_code == 404 and response.is_json


def test_a_failed_load_shows_no_server_paths(tiny_artifact, onnx_cache_dir, tmp_path):
    broken = tmp_path / "secret-place" / "model"
    shutil.copytree(tiny_artifact, broken)
    (broken / "model.keras").write_bytes(b"not a keras file")
    (broken / "model.onnx").unlink(missing_ok=True)
    config = ServerConfig(model_dir=broken, cache_dir=tmp_path / "cache")
    service = PredictionService(config)
    service._load_logging_failure()
    client = create_app(config, service=service).test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["status"] == "failed"
    assert str(tmp_path) not in ready.get_data(as_text=True)
    predict = client.post("/v1/predict", data=jpeg_bytes(), content_type="image/jpeg")
    assert predict.status_code == 503 and str(tmp_path) not in predict.get_data(as_text=True)


def test_without_paths_keeps_the_file_name_only():
    from realcheck.server.errors import without_paths

    assert (
        without_paths("cannot read /home/ann/models/x/model.keras: bad") == "cannot read .../model.keras: bad"
    )
    assert without_paths("relative runs/x/model.keras stays") == "relative runs/x/model.keras stays"


# --- provenance -----------------------------------------------------------------------------------------


def test_a_signed_ai_image_is_ai_by_provenance_with_the_model_score_beside_it(client):
    data = provenancegen.signed("trainedAlgorithmicMedia")
    first = client.post("/v1/predict", data=data, content_type="image/jpeg").get_json()["predictions"][0]
    assert (first["verdict"], first["basis"]) == ("ai", "provenance")
    assert first["model_verdict"] in {"ai", "real", "uncertain"} and 0.0 <= first["score"] <= 1.0
    provenance = first["provenance"]
    assert provenance["declares_ai"] is True and provenance["signed_capture"] is False
    assert provenance["c2pa"]["state"] == "valid" and provenance["c2pa"]["signer"] == "Test Generator"
    assert provenance["summary"].startswith("AI · Content Credentials: Imaginary Diffusion 3")
    again = client.post("/v1/predict", data=data, content_type="image/jpeg").get_json()["predictions"][0]
    assert again["cached"] is True
    assert {key: again[key] for key in ("verdict", "basis", "provenance", "score")} == {
        key: first[key] for key in ("verdict", "basis", "provenance", "score")
    }


def test_without_metadata_the_model_decides_and_a_capture_is_only_shown(client):
    plain, capture = provenancegen.picture(), provenancegen.signed("digitalCapture", agent="Test Camera")
    body = client.post("/v1/predict", **multipart(plain, capture, names=["a.jpg", "b.jpg"])).get_json()
    for prediction in body["predictions"]:
        assert prediction["basis"] == "model" and prediction["verdict"] == prediction["model_verdict"]
    first, second = body["predictions"]
    assert first["provenance"]["evidence"] == [] and first["provenance"]["c2pa"] is None
    assert second["provenance"]["signed_capture"] is True
    assert second["provenance"]["evidence"][0]["says"] == "capture"


def test_predictions_match_the_openapi_schema(client):
    validator = schema_validator(client, "PredictResponse")
    images = [
        provenancegen.signed(),
        provenancegen.tampered(provenancegen.signed()),
        provenancegen.png_with_text(parameters=provenancegen.A1111_PARAMETERS),
        provenancegen.with_exif(make="Canon", model="EOS R5"),
        b"not an image",
    ]
    body = client.post("/v1/predict", **multipart(*images)).get_json()
    validator.validate(body)
    assert [p.get("basis") for p in body["predictions"]] == [
        "provenance",
        "model",
        "provenance",
        "model",
        None,
    ]
    broken = json.loads(json.dumps(body))
    broken["predictions"][0]["provenance"]["evidence"][0]["trust"] = "very"
    with pytest.raises(Exception, match="very"):
        validator.validate(broken)


def test_the_server_never_fetches_a_remote_manifest(client, listener):
    data = provenancegen.signed(remote_url=f"http://127.0.0.1:{listener.port}/m.c2pa")
    prediction = client.post("/v1/predict", data=data, content_type="image/jpeg").get_json()["predictions"][0]
    assert prediction["provenance"]["c2pa"]["state"] == "remote" and prediction["basis"] == "model"
    assert listener.connections == 0


def test_trust_anchors_flow_from_the_config_to_the_reader(tiny_artifact, tmp_path):
    anchors = tmp_path / "roots.pem"
    anchors.write_text(provenancegen.authority().root_pem)
    service = PredictionService(ServerConfig(model_dir=tiny_artifact, c2pa_trust_anchors=anchors))
    assert service.provenance.read(provenancegen.signed()).c2pa.state == "trusted"


def test_hostile_manifests_through_the_api_never_give_a_5xx(client):
    import random

    signed = provenancegen.signed()
    rng = random.Random(11)
    damaged = []
    for _ in range(40):
        copy = bytearray(signed)
        for _ in range(rng.randint(1, 5)):
            copy[rng.randrange(20, signed.find(b"\xff\xdb"))] = rng.randrange(256)
        damaged.append(bytes(copy))
    body = client.post("/v1/predict", **multipart(*damaged[:20]))
    assert body.status_code == 200
    for data in damaged[20:]:
        response = client.post("/v1/predict", data=data, content_type="image/jpeg")
        assert response.status_code in (200, 400), response.get_data(as_text=True)
        if response.status_code == 200:
            prediction = response.get_json()["predictions"][0]
            assert prediction["basis"] in {"model", "provenance"}


def test_a_browser_at_the_root_gets_a_status_page_and_api_clients_keep_json(client):
    browser = client.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert browser.status_code == 200 and browser.mimetype == "text/html"
    page = browser.get_data(as_text=True)
    assert "realcheck-tiny" in page and "0.0.1-test" in page and ">ready<" in page
    assert "Connect the browser extension" in page and "http://localhost" in page
    assert "was not measured; treat a verdict as a hint, not proof" in page  # from the metadata
    for accept in (None, "application/json", "*/*"):
        answer = client.get("/", headers={"Accept": accept} if accept else {})
        assert answer.mimetype == "application/json" and "/v1/predict" in answer.get_json()["endpoints"]


def test_a_rebinding_page_s_host_name_is_refused_on_every_path(make_client):
    client = make_client()
    for host in ("rebind.evil.example:8000", "127.0.0.1.nip.io", "localhost.evil.example", ""):
        for path in ("/v1/feedback", "/v1/models", "/", "/healthz"):
            response = client.get(path, headers={"Host": host})
            assert_error(response, 400, "host_not_allowed", "--allowed-host")
    # Loopback names and IP addresses (which cannot be rebound) are answered.
    for host in ("127.0.0.1:8000", "localhost:8000", "LocalHost", "[::1]:8000", "10.1.2.3:8000", "[fe80::1]"):
        assert client.get("/healthz", headers={"Host": host}).status_code == 200, host
    named = make_client(allowed_hosts=["realcheck.lan", ".corp.example"])
    for host in ("realcheck.lan:8000", "gpu.corp.example"):
        assert named.get("/healthz", headers={"Host": host}).status_code == 200, host
    assert named.get("/healthz", headers={"Host": "evil.example"}).status_code == 400
    assert (
        make_client(allowed_hosts=["*"]).get("/healthz", headers={"Host": "any.example"}).status_code == 200
    )


def test_a_json_body_of_millions_of_tiny_instances_is_refused_before_it_is_parsed():
    import subprocess
    import sys

    # In a child: its peak memory is what the refusal cost (a parse would build 5.5 M dicts, about 2 GB).
    child = """
import resource
from realcheck.server.errors import ApiError
from realcheck.server.uploads import _from_json
body = b'{"instances": [' + b'{"b64": ""},' * 5_500_000 + b'{"b64": ""}]}'
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    _from_json(body, 64)
except ApiError as error:
    print(error.status, error.code, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    status, code, grown_mb = done.stdout.split()
    assert (status, code) == ("413", "too_many_images") and int(grown_mb) < 50, done.stdout + done.stderr


def test_decodes_are_bounded_across_requests(tiny_artifact, onnx_cache_dir):
    from concurrent.futures import ThreadPoolExecutor

    from realcheck.server.service import Upload

    service = PredictionService(
        ServerConfig(model_dir=tiny_artifact, backend="onnx", cache_dir=onnx_cache_dir, max_decodes=2)
    ).start()
    prepare, lock, state = service.detector.prepare, threading.Lock(), {"now": 0, "most": 0}

    def counted(*args, **kwargs):  # the real decode, counted
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        try:
            time.sleep(0.05)  # long enough for the other requests to arrive meanwhile
            return prepare(*args, **kwargs)
        finally:
            with lock:
                state["now"] -= 1

    service.detector.prepare = counted
    try:
        images = varied_images(12, size=48)
        with ThreadPoolExecutor(max_workers=12) as pool:
            results = list(pool.map(lambda data: service.predict([Upload(data)]), images))
    finally:
        service.stop()
    assert all(result[0].prediction.ok for result in results)
    assert state["most"] == 2, state


def test_each_image_is_answered_with_the_rule_that_decided_it(condition_rules_artifact, onnx_cache_dir):
    config = ServerConfig(model_dir=condition_rules_artifact, backend="onnx", cache_dir=onnx_cache_dir)
    service = PredictionService(config).start()
    try:
        client = create_app(config, service=service).test_client()
        small, large = (imagegen.image_bytes("real", size) for size in (16, 64))  # small: 21 px or less
        jpegs = (jpeg_bytes("real", 64, quality=quality) for quality in (75, 30))  # heavily compressed: <= 50
        body = client.post("/v1/predict", **multipart(small, large, *jpegs)).get_json()
    finally:
        service.stop()
    assert body["decision"]["small_image_rule"] == {
        "threshold": 0.0, "uncertainty_band": [0.0, 0.0], "real_below": 0.0, "ai_above": 0.0,
        "applies_to": "images of 21 px or less on their shorter side",
    }  # fmt: skip
    assert body["decision"]["compressed_image_rule"]["applies_to"] == "JPEG files saved at quality 50 or less"
    fields = ("image_rule", "verdict", "threshold", "ai_above")
    assert [[entry[key] for key in fields] for entry in body["predictions"]] == [
        ["small_image", "ai", 0.0, 0.0],
        ["main", "real", 1.0, 1.0],
        ["main", "real", 1.0, 1.0],
        ["compressed_image", "uncertain", 0.0, 1.0],
    ]
