"""The Flask application factory: `create_app(config)` wires the service, blueprints, access rules and errors."""

from __future__ import annotations

from flask import Flask

from realcheck.server.access import protect
from realcheck.server.config import ServerConfig
from realcheck.server.errors import register_error_handlers
from realcheck.server.metrics import Metrics, count_requests
from realcheck.server.service import PredictionService


def create_app(config: ServerConfig, service: PredictionService | None = None) -> Flask:
    """A Flask app serving `config.model_dir`; loads (or starts loading) the model before returning.

    Pass `service` to share one loaded model between apps (tests do, to load it once).
    """
    from realcheck.server.api import api
    from realcheck.server.feedback.routes import FeedbackGate, feedback
    from realcheck.server.feedback.store import FeedbackStore
    from realcheck.server.ops import ops

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
    # Parsed before the model starts loading (a bad URL fails at once), opened on the first report.
    app.extensions["realcheck_feedback"] = FeedbackStore(config.feedback_db)
    # A quarter of the worker threads may wait on a stuck feedback database; predict keeps the rest.
    app.extensions["realcheck_feedback_gate"] = FeedbackGate(slots=max(1, config.threads // 4))
    if service is None:
        service = PredictionService(config, Metrics()).start()
    app.extensions["realcheck"] = service
    for blueprint in (api, feedback, ops):
        app.register_blueprint(blueprint)
    count_requests(app, service.metrics)  # first: the clock starts before any access rule runs
    protect(app, config)
    register_error_handlers(app)
    return app
