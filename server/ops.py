"""Operations blueprint: liveness, readiness, Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from realcheck.server.openapi import openapi_document

ops = Blueprint("ops", __name__)


def _service():
    return current_app.extensions["realcheck"]


@ops.get("/")
def index():
    """Where to go from here."""
    return jsonify(
        service="realcheck",
        endpoints=["/v1/predict", "/v1/models", "/healthz", "/readyz", "/metrics", "/openapi.json"],
    )


@ops.get("/healthz")
def healthz():
    """Liveness: the process answers, whatever the model's state."""
    return jsonify(status="ok")


@ops.get("/readyz")
def readyz():
    """Readiness: 200 once the model is loaded and warmed up, 503 before (or when loading failed)."""
    service = _service()
    body = {
        "status": service.state,
        "model": {"name": service.metadata.get("name"), "version": service.metadata.get("version")},
        "runtime": service.describe_runtime(),
    }
    if service.failure:
        body["message"] = service.failure
    return jsonify(body), 200 if service.ready else 503


@ops.get("/metrics")
def metrics():
    """Prometheus text exposition."""
    registry = _service().metrics
    return Response(registry.render(), content_type=registry.content_type)


@ops.get("/openapi.json")
def openapi():
    """The OpenAPI 3 document of this server."""
    return jsonify(openapi_document(current_app.config["REALCHECK"]))
