"""Who may call the API: the host names it answers for, CORS origins, an optional API key and an optional
per-client rate limit."""

from __future__ import annotations

import hmac
import ipaddress
import math
import re
import time

from flask import Flask, request
from werkzeug.sansio.utils import host_is_trusted

from realcheck.server.config import ServerConfig
from realcheck.server.errors import ApiError

# Paths open to everyone (orchestrators and scrapers do not carry API keys) and never rate limited.
OPEN_PATHS = frozenset({"/", "/healthz", "/readyz", "/metrics", "/openapi.json"})
CORS_METHODS = ["GET", "POST", "OPTIONS"]
CORS_HEADERS = ["Content-Type", "X-API-Key", "Authorization"]
# A browser extension's origin: its scheme, then its id; nothing else (no path, no port).
EXTENSION_ORIGIN = re.compile(r"^(chrome|moz)-extension://[A-Za-z0-9-]+$")


def allowed_origins(config: ServerConfig) -> list[re.Pattern]:
    """The origins that may read answers: each configured one exactly, and the extension's when enabled."""
    origins = [re.compile("^" + re.escape(origin) + "$") for origin in config.cors_origins]
    if config.allow_extension_origins:
        origins.append(EXTENSION_ORIGIN)
    return origins


def protect(app: Flask, config: ServerConfig) -> None:
    """Every access rule: CORS, proxies, the host allow-list (every path: no DNS-rebinding page reads any),
    the API key and the rate limit (neither on preflights and the open paths)."""
    enable_cors(app, config)
    trust_proxies(app, config)

    @app.before_request
    def guard():
        check_host(request.headers.get("Host", ""), config)
        if not open_request():
            check_api_key(request.headers, config)

    # Registered after `guard`, so a request is counted only once its host and key passed.
    limit_requests(app, config, exempt=open_request)

    @app.after_request
    def vary_on_origin(response):
        # The answer depends on the Origin header whether or not this one is allowed: caches must know.
        response.vary.add("Origin")
        return response


def open_request() -> bool:
    """Preflights and the open paths: no API key, no rate limit."""
    return request.method == "OPTIONS" or request.path in OPEN_PATHS


def enable_cors(app, config: ServerConfig) -> None:
    """CORS through flask-cors for the allowed origins, Chrome's Private Network Access preflight included (a
    public page may call a loopback server only if the server says yes); nothing when none is allowed."""
    origins = allowed_origins(config)
    if not origins:
        return
    from flask_cors import CORS

    CORS(
        app,
        origins=origins,
        methods=CORS_METHODS,
        allow_headers=CORS_HEADERS,
        max_age=600,
        allow_private_network=True,
    )


def check_host(host: str, config: ServerConfig) -> None:
    """Refuse (400) a request addressed to a name the server does not answer for.

    A web page whose name an attacker re-resolves to 127.0.0.1 (DNS rebinding) is same-origin with a loopback
    server and could read it; its requests still carry the attacker's name in Host. IP addresses cannot be
    rebound, so they always pass; names must be loopback's or allowed with --allowed-host.
    """
    names = config.trusted_host_names
    if names is None:
        return
    # "name:port", "[v6]:port": the name without the port (IPv6 keeps its brackets).
    name = host.split("]", 1)[0] + "]" if host.startswith("[") else host.rsplit(":", 1)[0]
    try:
        ipaddress.ip_address(name.strip("[]"))
        return
    except ValueError:
        pass
    if name and host_is_trusted(name.lower(), names):
        return
    shown = name[:100] or "(none)"
    raise ApiError(
        f"this server does not answer requests addressed to {shown!r}; if that is its own name, start it "
        f"with --allowed-host {shown}",
        status=400,
        code="host_not_allowed",
    )


def check_api_key(headers, config: ServerConfig) -> None:
    """Raise 401 unless the request carries the configured key (X-API-Key or Authorization: Bearer)."""
    if not config.api_key:
        return
    supplied = headers.get("X-API-Key")
    if supplied is None:
        authorization = headers.get("Authorization", "")
        if authorization.lower().startswith("bearer "):
            supplied = authorization[7:].strip()
    # Constant-time comparison: response timing must not reveal how much of a guess was right.
    if supplied is None or not hmac.compare_digest(supplied.encode(), config.api_key.encode()):
        raise ApiError(
            "missing or wrong API key: send it in the X-API-Key header",
            status=401,
            code="unauthorized",
            headers={"WWW-Authenticate": 'ApiKey header="X-API-Key"'},
        )


def trust_proxies(app, config: ServerConfig) -> None:
    """Behind `trusted_proxies` proxies (a load balancer), the client is the one they name in
    X-Forwarded-For (Werkzeug's ProxyFix): rate limits and logs then count clients, not the balancer. The
    Host header is not taken from them: the host allow-list checks what the balancer passed on."""
    if config.trusted_proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=config.trusted_proxies, x_proto=config.trusted_proxies)


def limit_requests(app, config: ServerConfig, exempt) -> None:
    """Flask-Limiter: `rate_limit_per_minute` requests a minute per client address (a moving window), kept in
    `rate_limit_storage` (memory by default; Redis shares the count between replicas). `exempt()` names the
    requests never counted. Nothing when there is no limit."""
    if not config.rate_limit_per_minute:
        return
    from flask_limiter import Limiter
    from flask_limiter.util import get_remote_address

    limiter = Limiter(
        get_remote_address,
        app=app,
        # One count per client across every route (default_limits would count each route apart).
        application_limits=[f"{config.rate_limit_per_minute} per minute"],
        storage_uri=config.rate_limit_storage,
        strategy="moving-window",
    )
    limiter.request_filter(exempt)
    app.extensions["realcheck_limiter"] = limiter


def retry_after_s(app) -> int:
    """Seconds until the current client's window lets a request through again (for a 429's Retry-After)."""
    limiter = app.extensions.get("realcheck_limiter")
    window = limiter.current_limit if limiter is not None else None
    # At most the window itself (60 s): the library rounds its reset time up to a whole second.
    return min(60, max(1, math.ceil(window.reset_at - time.time()))) if window is not None else 60
