"""The OpenAPI 3 description of the API, served at /openapi.json (validated in the tests)."""

from __future__ import annotations

from pydantic import TypeAdapter

from realcheck.model import __version__
from realcheck.model.artifacts.metadata import PUBLIC_FIELDS, REQUIRED_FIELDS, openapi_properties
from realcheck.server.config import ServerConfig
from realcheck.server.feedback.openapi import feedback_paths
from realcheck.server.schemas import AccuracyStatement, component_schemas

# 3.1: its schemas are JSON Schema 2020-12, what pydantic writes.
OPENAPI_VERSION = "3.1.0"


def _json(schema_ref: str, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": schema_ref}}}}


def _error(description: str) -> dict:
    return _json("#/components/schemas/Error", description)


def openapi_document(config: ServerConfig) -> dict:
    """The OpenAPI document for a server with this configuration (limits are filled in)."""
    secured = [{"ApiKey": []}] if config.api_key else []
    errors = _errors(config)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "RealCheck API",
            "version": __version__,
            "description": (
                "Scores images with P(AI), the probability that an image is AI-generated, and a verdict "
                "(ai, real or uncertain). Clients send image bytes; the server never fetches URLs."
            ),
            "license": {"name": "MIT"},
        },
        "servers": [{"url": f"http://{config.host}:{config.port}"}],
        "paths": {
            **_model_paths(errors, secured),
            **feedback_paths(errors, secured),
            **_operations_paths(),
        },
        "components": {
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
            "schemas": component_schemas_for(config),
        },
    }


def _errors(config: ServerConfig) -> dict:
    """The error answers a client's request may get, with this server's limits."""
    return {
        "400": _error(
            "Bad input: empty body, invalid JSON or base64; or, for a request of one image, not an image, "
            "truncated or corrupt image, unsupported format, too many pixels (decompression bomb)"
        ),
        "401": _error("Missing or wrong API key (only when the server requires one)"),
        "413": _error(
            f"Body over {config.max_request_bytes:,} bytes, an image over {config.max_image_bytes:,} bytes, "
            f"or more than {config.max_images_per_request} images"
        ),
        "415": _error("Content type other than multipart/form-data, application/json or image/*"),
        "429": _error("Rate limit exceeded (only when the server has one); see Retry-After"),
        "503": _error("Model not loaded yet, or the server is overloaded; see Retry-After"),
    }


def _model_paths(errors: dict, secured: list) -> dict:
    """Predict and the model's metadata (`/v1`)."""
    image_body = {"type": "string", "format": "binary"}
    return {
        "/v1/predict": {
            "post": {
                "summary": "Score one or more images",
                "operationId": "predict",
                "security": secured,
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "properties": {"image": {"type": "array", "items": image_body}},
                            },
                            "encoding": {"image": {"contentType": "image/*"}},
                        },
                        "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}},
                        "image/*": {"schema": image_body},
                    },
                },
                "responses": {
                    "200": _json(
                        "#/components/schemas/PredictResponse", "One prediction per image, in order"
                    ),
                    **errors,
                },
            }
        },
        "/v1/models": {
            "get": {
                "summary": "The served model",
                "operationId": "listModels",
                "security": secured,
                "responses": {
                    "200": _json("#/components/schemas/ModelList", "Models served"),
                    "401": errors["401"],
                },
            }
        },
        "/v1/models/{name}": {
            "get": {
                "summary": "Metadata of one model",
                "operationId": "getModel",
                "security": secured,
                "parameters": [
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": _json("#/components/schemas/Model", "The model's metadata"),
                    "401": errors["401"],
                    "404": _error("No model of that name"),
                },
            }
        },
    }


def _operations_paths() -> dict:
    """Health, readiness, metrics and this document: open to everyone, never rate limited."""

    def open_get(operation: str, summary: str, responses: dict) -> dict:
        return {"get": {"summary": summary, "operationId": operation, "security": [], "responses": responses}}

    return {
        "/healthz": open_get(
            "health", "Liveness: the process answers", {"200": _json("#/components/schemas/Status", "Alive")}
        ),
        "/readyz": open_get(
            "ready",
            "Readiness: the model is loaded and warmed up",
            {
                "200": _json("#/components/schemas/Status", "Ready to score"),
                "503": _json("#/components/schemas/Status", "Loading, warming up or failed"),
            },
        ),
        "/metrics": open_get(
            "metrics",
            "Prometheus metrics",
            {
                "200": {
                    "description": "Prometheus text exposition format",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        ),
        "/openapi.json": open_get(
            "openapi",
            "This document",
            {
                "200": {
                    "description": "OpenAPI 3 document",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        ),
    }


def component_schemas_for(config: ServerConfig) -> dict:
    """The declared shapes (server/schemas.py), the metadata table's `Model`, and this server's limits."""
    schemas = component_schemas()
    schemas["Model"] = {
        "type": "object",
        "required": [key for key in PUBLIC_FIELDS if key in REQUIRED_FIELDS] + ["accuracy_statement"],
        "properties": {
            **openapi_properties(PUBLIC_FIELDS),
            "state": {"type": "string"},
            "runtime": {"type": "object"},
            "accuracy_statement": TypeAdapter(AccuracyStatement).json_schema(),
        },
    }
    schemas["PredictRequest"]["properties"]["instances"]["maxItems"] = config.max_images_per_request
    return schemas
