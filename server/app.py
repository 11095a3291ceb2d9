"""The Flask application factory: `create_app(config)` wires the service, blueprints, access rules and errors."""

from __future__ import annotations

import logging
import time
from concurrent.futures import TimeoutError as FutureTimeout

from flask import Flask, g, jsonify, request
from werkzeug.exceptions import HTTPException

from realcheck.server.access import (
    check_api_key,
    check_host,
    enable_cors,
    limit_requests,
    retry_after_s,
    trust_proxies,
)
from realcheck.server.config import ServerConfig
from realcheck.server.errors import ApiError
from realcheck.server.metrics import Metrics
from realcheck.server.service import PredictionService

log = logging.getLogger("realcheck")
# Paths open to everyone (orchestrators and scrapers do not carry API keys) and never rate limited.
OPEN_PATHS = frozenset({"/", "/healthz", "/readyz", "/metrics", "/openapi.json"})


def create_app(config: ServerConfig, service: PredictionService | None = None) -> Flask:
    """A Flask app serving `config.model_dir`; loads (or starts loading) the model before returning.

    Pass `service` to share one loaded model between apps (tests do, to load it once).
    """
    # No static folder: the server answers the API and nothing else (no files from its working directory).
    app = Flask("realcheck", static_folder=None)
    # `/v1//predict` is a 404 in JSON, not a 308 redirect with an HTML body.
    app.url_map.merge_slashes = False
    app.config.update(
        REALCHECK=config,
        MAX_CONTENT_LENGTH=config.max_request_bytes,
        # Multipart: every image is a part; a few more for form fields.
        MAX_FORM_PARTS=config.max_images_per_request + 16,
        # Text fields are ignored, and bounded by the body limit like a JSON body: Werkzeug's own 500 KB
        # cap would raise the same 413 as too many parts, and the client would be told the wrong reason.
        MAX_FORM_MEMORY_SIZE=config.max_request_bytes,
        JSON_SORT_KEYS=False,
    )
    from realcheck.server.feedback_store import FeedbackStore

    # Parsed before the model starts loading (a bad URL fails at once), opened on the first report.
    app.extensions["realcheck_feedback"] = FeedbackStore(config.feedback_db)
    if service is None:
        service = PredictionService(config, Metrics()).start()
    app.extensions["realcheck"] = service

    from realcheck.server.api import api
    from realcheck.server.feedback import FeedbackGate, feedback
    from realcheck.server.ops import ops

    # A quarter of the worker threads may wait on a stuck feedback database; predict keeps the rest.
    app.extensions["realcheck_feedback_gate"] = FeedbackGate(slots=max(1, config.threads // 4))

    app.register_blueprint(api)
    app.register_blueprint(feedback)
    app.register_blueprint(ops)
    enable_cors(app, config)
    trust_proxies(app, config)

    def open_request() -> bool:
        """Preflights and the open paths: no API key, no rate limit."""
        return request.method == "OPTIONS" or request.path in OPEN_PATHS

    @app.before_request
    def guard():
        g.started = time.perf_counter()
        check_host(request.headers.get("Host", ""), config)  # every path: no DNS-rebinding page reads any
        if not open_request():
            check_api_key(request.headers, config)
        return None

    # Registered after `guard`, so a request is counted only once its host and key passed.
    limit_requests(app, config, exempt=open_request)

    @app.after_request
    def finish(response):
        # The answer depends on the Origin header whether or not this one is allowed: caches must know.
        response.vary.add("Origin")
        endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
        service.metrics.requests.labels(endpoint, request.method, str(response.status_code)).inc()
        if "started" in g:
            service.metrics.latency.labels(endpoint).observe(time.perf_counter() - g.started)
        if response.status_code >= 400:
            service.metrics.errors.labels(str(response.status_code), g.get("error_code", "unknown")).inc()
        return response

    @app.errorhandler(ApiError)
    def api_error(error: ApiError):
        return _error_response(error.status, error.code, error.message, error.headers)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = (error.name or "error").lower().replace(" ", "_")
        headers = {}
        if error.code == 405 and error.valid_methods:
            headers["Allow"] = ", ".join(error.valid_methods)
        message = error.description or error.name
        if error.code == 404:
            message = f"no such endpoint: {request.path} (the API is described at /openapi.json)"
        elif error.code == 405:
            message = f"{request.method} is not allowed on {request.path}; use {headers.get('Allow', 'another method')}"
        elif error.code == 429:  # Flask-Limiter's RateLimitExceeded
            code = "rate_limited"
            wait = retry_after_s(app)
            headers["Retry-After"] = str(wait)
            message = (
                f"rate limit of {config.rate_limit_per_minute} requests a minute exceeded; retry in {wait} s"
            )
        elif error.code == 413:
            code = "request_too_large"
            message = f"request body is over the limit of {config.max_request_bytes:,} bytes"
            if (request.content_length or 0) <= config.max_request_bytes:
                # Werkzeug also raises 413 for a multipart body with more parts than MAX_FORM_PARTS.
                code = "too_many_images"
                message = f"too many multipart parts; send at most {config.max_images_per_request} images"
        return _error_response(error.code or 500, code, message, headers)

    @app.errorhandler(FutureTimeout)
    def timeout(error):
        return _error_response(
            503, "timeout", "the model did not answer in time; retry", {"Retry-After": "2"}
        )

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        # Logged with its traceback for the operator; the client gets JSON without internals.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _error_response(500, "internal_error", "internal server error", {})

    return app


def _error_response(status: int, code: str, message: str, headers: dict):
    g.error_code = code
    response = jsonify(error={"code": code, "message": message})
    response.status_code = status
    response.headers.update(headers)
    return response
