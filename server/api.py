"""The `/v1` blueprint: predict and model metadata."""

from __future__ import annotations

import time

from flask import Blueprint, current_app, jsonify, request

from realcheck.model.artifacts.metadata import PUBLIC_FIELDS, rule_key
from realcheck.model.scoring.decision import measured_accuracy
from realcheck.server.errors import ApiError
from realcheck.server.uploads import upload_limits, uploads_from_request

api = Blueprint("api", __name__, url_prefix="/v1")


def _service():
    return current_app.extensions["realcheck"]


def model_description(service) -> dict:
    """The public metadata of the served model, with its runtime and state."""
    described = {key: service.metadata[key] for key in PUBLIC_FIELDS if key in service.metadata}
    return described | {
        "state": service.state,
        "runtime": service.describe_runtime(),
        # The words every client shows for how good the model is, from the rates its metadata measured.
        "accuracy_statement": measured_accuracy(service.metadata),
    }


@api.post("/predict")
def predict():
    """Score the request's images: multipart parts, JSON base64 instances or one raw image body."""
    started = time.perf_counter()
    service = _service()
    uploads = uploads_from_request(request, current_app.config["REALCHECK"])
    results = service.predict(uploads)
    return jsonify(
        model={"name": service.metadata["name"], "version": service.metadata["version"]},
        decision=_decision(service),
        predictions=[_prediction(upload, result) for upload, result in zip(uploads, results)],
        time_ms=round((time.perf_counter() - started) * 1000.0, 3),
    )


def _decision(service) -> dict:
    """How scores become verdicts (each rule's threshold and ranges), and how far they were measured to go."""
    rules = service.detector.rules
    decision = rules.main.to_dict() | rules.main.range_fields()
    for condition, rule in rules.by_condition.items():
        decision[rule_key(condition)] = (
            rule.to_dict() | rule.range_fields() | {"applies_to": rules.applies_to[condition]}
        )
    return decision | {"accuracy_statement": measured_accuracy(service.metadata)}


def _prediction(upload, result) -> dict:
    prediction = result.prediction
    if not prediction.ok:
        # One bad image of several: its own error in its slot, the others are scored.
        return {
            "error": {"code": "invalid_image", "message": prediction.error},
            "sha256": prediction.sha256,
            "filename": upload.filename,
        }
    return prediction.record() | {
        "provenance": prediction.provenance.to_dict(),
        "threshold": prediction.rule.threshold,
        "cached": result.cached,
        "time_ms": result.time_ms,
        "filename": upload.filename,
    }


@api.get("/models")
def list_models():
    """The served model (one per server), and the upload limits its predict endpoint enforces."""
    return jsonify(
        models=[model_description(_service())], limits=upload_limits(current_app.config["REALCHECK"])
    )


@api.get("/models/<name>")
def get_model(name: str):
    """Metadata of the model called `name`."""
    service = _service()
    if name != service.metadata["name"]:
        raise ApiError(
            f"no model named {name!r}; this server serves {service.metadata['name']!r}",
            status=404,
            code="model_not_found",
        )
    return jsonify(model_description(service))
