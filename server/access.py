"""Who may call the API: the host names it answers for, CORS origins, an optional API key and an optional
per-client rate limit."""

from __future__ import annotations

import hmac
import ipaddress
import re
import threading
import time

from werkzeug.sansio.utils import host_is_trusted

from realcheck.server.config import ServerConfig
from realcheck.server.errors import ApiError

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


class RateLimiter:
    """A token bucket per client address: `per_minute` requests a minute, bursts up to the same number."""

    MAX_CLIENTS = 10_000

    def __init__(self, per_minute: int):
        self.capacity = float(per_minute)
        self.refill_per_s = per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, client: str) -> None:
        """Take one token for `client`, or raise 429 with the seconds until the next one."""
        now = time.monotonic()
        with self._lock:
            tokens, updated = self._buckets.get(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - updated) * self.refill_per_s)
            if tokens < 1.0:
                wait = (1.0 - tokens) / self.refill_per_s
                self._buckets[client] = (tokens, now)
                raise ApiError(
                    f"rate limit of {int(self.capacity)} requests a minute exceeded; retry in {wait:.1f} s",
                    status=429,
                    code="rate_limited",
                    headers={"Retry-After": str(max(1, round(wait + 0.5)))},
                )
            self._buckets[client] = (tokens - 1.0, now)
            if len(self._buckets) > self.MAX_CLIENTS:
                # Bounded memory: forget the clients that have been quiet longest (their buckets are full).
                for key in sorted(self._buckets, key=lambda k: self._buckets[k][1])[: self.MAX_CLIENTS // 2]:
                    del self._buckets[key]
