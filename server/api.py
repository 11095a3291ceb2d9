"""The `/v1` blueprint: predict and model metadata."""

from __future__ import annotations

import time

from flask import Blueprint, current_app, jsonify, request

from server.errors import ApiError
from server.uploads import upload_limits, uploads_from_request

api = Blueprint("api", __name__, url_prefix="/v1")

# Metadata fields a client may rely on; the rest of metadata.json (commands, library versions) stays local.
MODEL_FIELDS = (
    "name",
    "version",
    "backbone",
    "weights",
    "input_size",
    "input_mode",
    "threshold",
    "uncertainty_band",
    "labels",
    "score",
    "training_data",
    "metrics",
    "created_at",
)


def _service():
    return current_app.extensions["realcheck"]


def model_description(service) -> dict:
    """The public metadata of the served model, with its runtime and state."""
    described = {key: service.metadata[key] for key in MODEL_FIELDS if key in service.metadata}
    return described | {"state": service.state, "runtime": service.describe_runtime()}


@api.post("/predict")
def predict():
    """Score the request's images: multipart parts, JSON base64 instances or one raw image body."""
    started = time.perf_counter()
    service = _service()
    uploads = uploads_from_request(request, current_app.config["REALCHECK"])
    results = service.predict(uploads)
    threshold = service.detector.rule.threshold
    return jsonify(
        model={"name": service.metadata["name"], "version": service.metadata["version"]},
        decision={"threshold": threshold, "uncertainty_band": list(service.detector.rule.band)},
        predictions=[_prediction(upload, result, threshold) for upload, result in zip(uploads, results)],
        time_ms=round((time.perf_counter() - started) * 1000.0, 3),
    )


def _prediction(upload, result, threshold: float) -> dict:
    if not result.ok:
        # One bad image of several: its own error in its slot, the others are scored.
        return {
            "error": {"code": "invalid_image", "message": result.error},
            "sha256": result.sha256,
            "filename": upload.filename,
        }
    return {
        "score": result.score,
        "verdict": result.verdict,
        "basis": result.basis,
        "model_verdict": result.model_verdict,
        "provenance": result.provenance.to_dict(),
        "threshold": threshold,
        "sha256": result.sha256,
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
