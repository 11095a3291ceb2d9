"""The OpenAPI 3 description of the API, served at /openapi.json (validated in the tests)."""

from __future__ import annotations

from realcheck.model import __version__
from realcheck.model.metadata import PUBLIC_FIELDS, REQUIRED_FIELDS, openapi_properties
from realcheck.model.provenance import C2PA_STATES
from realcheck.server.config import ServerConfig
from realcheck.server.feedback_openapi import feedback_paths, feedback_schemas

OPENAPI_VERSION = "3.0.3"

# The three ranges every face shows beside a score, and the sentence of how far verdicts go: the same in
# predict answers (each prediction and the decision) and in /v1/models.
RANGES = {
    "real_below": {
        "type": "number",
        "description": "the model calls a score below this `real` (shown as no AI signs found)",
    },
    "ai_above": {
        "type": "number",
        "description": "the model calls a score above this `ai`; between the two, `uncertain`",
    },
}
ACCURACY_STATEMENT = {
    "type": "string",
    "description": "one plain sentence of how good the model is, from the verdict rates its metadata measured "
    "on held-out data (or that they were not measured)",
}


def _json(schema_ref: str, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": schema_ref}}}}


def _error(description: str) -> dict:
    return _json("#/components/schemas/Error", description)


def openapi_document(config: ServerConfig) -> dict:
    """The OpenAPI document for a server with this configuration (limits are filled in)."""
    secured = [{"ApiKey": []}] if config.api_key else []
    errors = {
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
    image_body = {"type": "string", "format": "binary"}
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
            **feedback_paths(errors, secured),
            "/healthz": {
                "get": {
                    "summary": "Liveness: the process answers",
                    "operationId": "health",
                    "security": [],
                    "responses": {"200": _json("#/components/schemas/Status", "Alive")},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness: the model is loaded and warmed up",
                    "operationId": "ready",
                    "security": [],
                    "responses": {
                        "200": _json("#/components/schemas/Status", "Ready to score"),
                        "503": _json("#/components/schemas/Status", "Loading, warming up or failed"),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "operationId": "metrics",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "Prometheus text exposition format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "operationId": "openapi",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3 document",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
            "schemas": {
                "ErrorDetail": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string", "example": "invalid_image"},
                        "message": {"type": "string"},
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"$ref": "#/components/schemas/ErrorDetail"}},
                },
                "PredictRequest": {
                    "type": "object",
                    "required": ["instances"],
                    "properties": {
                        "instances": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": config.max_images_per_request,
                            "items": {
                                "type": "object",
                                "required": ["b64"],
                                "properties": {
                                    "b64": {
                                        "type": "string",
                                        "format": "byte",
                                        "description": "base64 image bytes",
                                    },
                                    "name": {"type": "string", "description": "echoed back as filename"},
                                },
                            },
                        }
                    },
                },
                "Prediction": {
                    "type": "object",
                    "required": [
                        "score",
                        "verdict",
                        "basis",
                        "model_verdict",
                        "provenance",
                        "threshold",
                        "real_below",
                        "ai_above",
                        "sha256",
                        "cached",
                        "time_ms",
                    ],
                    "properties": {
                        "score": {
                            "type": "number",
                            "minimum": 0,
                            "maximum": 1,
                            "description": "P(AI) from the pixels (the model's, whatever the basis)",
                        },
                        "verdict": {
                            "type": "string",
                            "enum": ["ai", "real", "uncertain"],
                            "description": "the decision, resting on `basis`",
                        },
                        "basis": {
                            "type": "string",
                            "enum": ["model", "provenance"],
                            "description": "`provenance` when an intact C2PA manifest or an explicit metadata "
                            "declaration says the image is AI-generated; otherwise `model`",
                        },
                        "model_verdict": {"type": "string", "enum": ["ai", "real", "uncertain"]},
                        "provenance": {"$ref": "#/components/schemas/Provenance"},
                        "threshold": {"type": "number"},
                        **RANGES,
                        "sha256": {"type": "string", "description": "SHA-256 of the image bytes (hex)"},
                        "cached": {"type": "boolean"},
                        "time_ms": {"type": "number", "description": "decode, queue and model time"},
                        "filename": {"type": "string", "nullable": True},
                    },
                },
                **provenance_schemas(),
                "ImageError": {
                    "type": "object",
                    "description": "an image of a multi-image request that could not be decoded",
                    "required": ["error", "sha256"],
                    "properties": {
                        "error": {"$ref": "#/components/schemas/ErrorDetail"},
                        "sha256": {"type": "string", "description": "SHA-256 of the image bytes (hex)"},
                        "filename": {"type": "string", "nullable": True},
                    },
                },
                "ModelRef": {
                    "type": "object",
                    "required": ["name", "version"],
                    "properties": {"name": {"type": "string"}, "version": {"type": "string"}},
                },
                "PredictResponse": {
                    "type": "object",
                    "required": ["model", "predictions"],
                    "properties": {
                        "model": {"$ref": "#/components/schemas/ModelRef"},
                        "decision": {
                            "type": "object",
                            "properties": {
                                "threshold": {"type": "number"},
                                "uncertainty_band": {"type": "array", "items": {"type": "number"}},
                                **RANGES,
                                "accuracy_statement": ACCURACY_STATEMENT,
                            },
                        },
                        "predictions": {
                            "type": "array",
                            "description": "one entry per image, in request order; in a request of several "
                            "images, one that cannot be decoded gets an ImageError and the others are scored",
                            "items": {
                                "oneOf": [
                                    {"$ref": "#/components/schemas/Prediction"},
                                    {"$ref": "#/components/schemas/ImageError"},
                                ]
                            },
                        },
                        "time_ms": {"type": "number"},
                    },
                },
                "Model": {
                    "type": "object",
                    "required": [key for key in PUBLIC_FIELDS if key in REQUIRED_FIELDS]
                    + ["accuracy_statement"],
                    "properties": {
                        **openapi_properties(PUBLIC_FIELDS),
                        "state": {"type": "string"},
                        "runtime": {"type": "object"},
                        "accuracy_statement": ACCURACY_STATEMENT,
                    },
                },
                "ModelList": {
                    "type": "object",
                    "required": ["models", "limits"],
                    "properties": {
                        "models": {"type": "array", "items": {"$ref": "#/components/schemas/Model"}},
                        "limits": {"$ref": "#/components/schemas/UploadLimits"},
                    },
                },
                "UploadLimits": {
                    "type": "object",
                    "description": "what /v1/predict accepts (larger requests are refused with a 413)",
                    "required": ["max_image_bytes", "max_request_bytes", "max_images_per_request"],
                    "properties": {
                        "max_image_bytes": {"type": "integer", "minimum": 1, "description": "per image"},
                        "max_request_bytes": {
                            "type": "integer",
                            "minimum": 1,
                            "description": "per request body",
                        },
                        "max_images_per_request": {"type": "integer", "minimum": 1},
                    },
                },
                **feedback_schemas(config),
                "Status": {
                    "type": "object",
                    "required": ["status"],
                    "properties": {
                        "status": {"type": "string"},
                        "model": {"$ref": "#/components/schemas/ModelRef"},
                        "runtime": {"type": "object"},
                        "message": {"type": "string"},
                    },
                },
            },
        },
    }


def provenance_schemas() -> dict:
    """Provenance, Evidence and C2paManifest, with their enums taken from `realcheck.model.provenance`."""
    text = {"type": "string"}
    nullable = {"type": "string", "nullable": True}
    return {
        "Provenance": {
            "type": "object",
            "description": "what the image's own bytes declare about its origin (never fetched from elsewhere)",
            "required": ["declares_ai", "signed_capture", "summary", "explanation", "evidence", "c2pa"],
            "properties": {
                "declares_ai": {"type": "boolean", "description": "the evidence that decides `ai`"},
                "signed_capture": {
                    "type": "boolean",
                    "description": "an intact C2PA manifest says a camera captured it (shown, never decisive)",
                },
                "summary": {"type": "string", "description": "one line: the strongest finding and its trust"},
                "explanation": {
                    "type": "string",
                    "description": "what the file says about its origin and how far that goes, in plain sentences",
                },
                "evidence": {"type": "array", "items": {"$ref": "#/components/schemas/Evidence"}},
                "c2pa": {"$ref": "#/components/schemas/C2paManifest"},
            },
        },
        "Evidence": {
            "type": "object",
            "required": ["kind", "says", "trust", "source", "detail"],
            "properties": {
                "kind": {"type": "string", "enum": ["c2pa", "digital_source_type", "generator", "camera"]},
                "says": {"type": "string", "enum": ["ai", "capture", "edited", "unknown", "hint"]},
                "trust": {"type": "string", "enum": [*C2PA_STATES, "declared", "hint"]},
                "source": text,
                "detail": text,
            },
        },
        "C2paManifest": {
            "type": "object",
            "nullable": True,
            "description": "the active C2PA manifest; null when the file carries none",
            "required": ["state"],
            "properties": {
                "state": {"type": "string", "enum": list(C2PA_STATES)},
                "claim_generator": nullable,
                "signer": nullable,
                "issuer": nullable,
                "signed_at": nullable,
                "actions": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "action": text,
                            "digital_source_type": nullable,
                            "software_agent": nullable,
                        },
                    },
                },
                "ingredients": {"type": "array", "items": text},
                "ingredient_source_types": {
                    "type": "array",
                    "items": text,
                    "description": "digital source types the ingredients' own manifests declare",
                },
                "failures": {"type": "array", "items": text, "description": "C2PA validation failure codes"},
                "remote_url": {**nullable, "description": "a remote manifest's address, not fetched"},
                "message": nullable,
            },
        },
    }
