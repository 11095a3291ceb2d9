"""`realcheck serve`: the app on waitress, a production WSGI server (never Flask's development server).

Waitress reads every request completely on its I/O thread before a worker thread sees it, so slow clients
(slow uploads, idle keep-alive connections) tie up buffers, not the workers that run predictions; idle
connections are closed after `channel_timeout_s`, and a request that takes too long to arrive gets a 408
(`realcheck.server.transport`).
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import signal
import socket
import sys

from realcheck.model.errors import RealCheckError
from realcheck.server.config import ServerConfig

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
log = logging.getLogger("realcheck")


def check_port_free(host: str, port: int) -> None:
    """One clear line, before any model loads, when another program already listens on host:port."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return  # a name that does not resolve: the server's own bind says why
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # As the server does: a port left in TIME_WAIT by an earlier run is free, a live listener is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise RealCheckError(
                    f"port {port} on {host} is in use (another server?): stop it, or pass --port N"
                ) from None
            raise RealCheckError(f"cannot listen on {host}:{port}: {error.strerror}") from None


def make_server(config: ServerConfig):
    """A waitress server for the app; the model starts loading in the background, /readyz says when ready."""
    from waitress import create_server

    from realcheck.server.app import create_app
    from realcheck.server.transport import ArrivalDeadline, enforce_arrival_deadline

    check_port_free(config.host, config.port)
    config = dataclasses.replace(config, load_in_background=True)
    app = create_app(config)
    server = create_server(
        app,
        host=config.host,
        port=config.port,
        threads=config.threads,
        connection_limit=config.connection_limit,
        channel_timeout=config.channel_timeout_s,
        cleanup_interval=1,  # how often deadlines are checked (cheap: one pass over open connections)
        max_request_body_size=config.transport_body_limit,
        ident="realcheck",
        clear_untrusted_proxy_headers=True,
    )
    enforce_arrival_deadline(server, ArrivalDeadline(config.request_timeout_s))
    return app, server


def stop_on_sigterm() -> None:
    """SIGTERM stops the server as Ctrl+C does (a KeyboardInterrupt), whatever it is doing then."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def exit_without_finalising(reason: str) -> None:
    """Exit 0 now. A model loader thread may be inside ONNX Runtime or TensorFlow, whose native threads abort
    the process (SIGABRT, "terminate called without an active exception") if the interpreter finalises under
    them; an export child dies with this process."""
    log.info("%s", reason)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def run_server(config: ServerConfig) -> int:
    """Serve until interrupted (Ctrl-C or SIGTERM); returns the exit status."""
    app, server = make_server(config)
    service = app.extensions["realcheck"]
    host, port = server.effective_host, server.effective_port
    log.info(
        "serving %s %s on http://%s:%s with %d threads (model loading; GET /readyz reports when ready)",
        service.metadata["name"],
        service.metadata["version"],
        host,
        port,
        config.threads,
    )
    log.info(
        "feedback reports go to %s (created on the first report)",
        app.extensions["realcheck_feedback"].location,
    )
    if config.host not in LOOPBACK_HOSTS and not config.api_key:
        log.warning("listening beyond loopback without an API key: anyone who can reach this port can use it")
    if config.host not in LOOPBACK_HOSTS and not config.allowed_hosts:
        log.warning(
            "requests addressed by a host name other than localhost get a 400 (DNS-rebinding guard): "
            "name this server's own names with --allowed-host NAME; IP addresses always work"
        )

    stop_on_sigterm()  # `command_serve` did already; callers from Python too
    try:
        server.run()
    except KeyboardInterrupt:
        log.info("shutting down")
    finally:
        server.close()
        service.stop()
        app.extensions["realcheck_feedback"].close()
    if service.loading:
        exit_without_finalising("stopped while the model was still loading")
    return 0
