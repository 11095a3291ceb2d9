"""Prometheus metrics of one app, in its own registry (several apps in one process never collide)."""

from __future__ import annotations

import time

from flask import Flask, g, request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
BATCH_BUCKETS = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64)


class Metrics:
    """Requests, latency, batch sizes, cache hits and errors, exposed at /metrics."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "realcheck_http_requests",
            "HTTP requests by endpoint, method and status",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "realcheck_http_request_duration_seconds",
            "Time from request start to response, by endpoint",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "realcheck_http_errors",
            "Error responses by status and error code",
            ["status", "code"],
            registry=self.registry,
        )
        self.images = Counter(
            "realcheck_images", "Images scored (cache hits included)", registry=self.registry
        )
        self.cache_hits = Counter(
            "realcheck_cache_hits", "Images answered from the content-hash cache", registry=self.registry
        )
        self.cache_misses = Counter(
            "realcheck_cache_misses", "Images that needed the model", registry=self.registry
        )
        self.invalid_images = Counter(
            "realcheck_invalid_images",
            "Images of multi-image requests that could not be decoded",
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "realcheck_batch_size",
            "Images per model call",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.inference = Histogram(
            "realcheck_batch_inference_seconds",
            "Model time per batch",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.ready = Gauge(
            "realcheck_model_ready", "1 when the model is loaded and warmed up", registry=self.registry
        )

    def observe_batch(self, size: int, seconds: float) -> None:
        """Record one model call (the batcher's callback)."""
        self.batch_size.observe(size)
        self.inference.observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


def count_requests(app: Flask, metrics: Metrics) -> None:
    """Count every answer by endpoint, method and status, time it, and count errors by their code."""

    @app.before_request
    def start_clock():
        g.started = time.perf_counter()

    @app.after_request
    def count(response):
        endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
        metrics.requests.labels(endpoint, request.method, str(response.status_code)).inc()
        if "started" in g:
            metrics.latency.labels(endpoint).observe(time.perf_counter() - g.started)
        if response.status_code >= 400:
            metrics.errors.labels(str(response.status_code), g.get("error_code", "unknown")).inc()
        return response
