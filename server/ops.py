"""Operations blueprint: liveness, readiness, Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, render_template_string, request

from realcheck.model.scoring.decision import describe_rules, measured_accuracy
from realcheck.server.openapi import openapi_document

ops = Blueprint("ops", __name__)


def _service():
    return current_app.extensions["realcheck"]


ENDPOINTS = ["/v1/predict", "/v1/models", "/healthz", "/readyz", "/metrics", "/openapi.json"]

# A person who opens the server in a browser gets this page; API clients keep the JSON answer.
STATUS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>RealCheck server</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;color:#222}
code{background:#f2f2f2;padding:0 .25rem;border-radius:3px}.state{font-weight:600}
.ready{color:#1b5e20}.loading{color:#8a5a00}.failed{color:#b3261e}</style></head>
<body><h1>RealCheck server</h1>
<p>Model: <b>{{ name }}</b> version <code>{{ version }}</code>:
<span class="state {{ state }}">{{ state }}</span>{% if failure %} ({{ failure }}){% endif %}</p>
{% if ranges %}<p>Scores: {{ ranges }}.</p>{% endif %}
<p>{{ accuracy }}</p>
<h2>Connect the browser extension</h2>
<p>Load <code>extension/</code> in Chrome or Firefox. Its default server is <code>http://127.0.0.1:8000</code>;
if this page is at another address, set <code>{{ url }}</code> as the <i>Server URL</i> in RealCheck's options
and press <i>Test connection</i>.</p>
<h2>For programs</h2>
<p>{% for path in endpoints %}<a href="{{ path }}"><code>{{ path }}</code></a> {% endfor %}</p>
</body></html>"""


@ops.get("/")
def index():
    """Where to go from here: a status page for a browser, the endpoint list for API clients."""
    if request.accept_mimetypes.best_match(["application/json", "text/html"]) != "text/html":
        return jsonify(service="realcheck", endpoints=ENDPOINTS)
    service = _service()
    metadata = service.metadata
    return render_template_string(
        STATUS_PAGE,
        name=metadata.get("name", "(loading)"),
        version=metadata.get("version", "?"),
        state=service.state,
        failure=service.failure,
        ranges=describe_rules(metadata) if "threshold" in metadata else "",
        accuracy=measured_accuracy(metadata) if metadata else "",
        url=request.host_url.rstrip("/"),
        endpoints=ENDPOINTS,
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
