"""RealCheck serving: a Flask API over an artifact, its runtimes, the micro-batcher, and a Python client.

Importing this package does no work: the app, the runtimes and the client load on use.

    from realcheck.server import create_app, ServerConfig
    app = create_app(ServerConfig(model_dir="runs/my-model"))

    from realcheck.server.client import RealCheckClient
    RealCheckClient("http://127.0.0.1:8000").check(["photo.jpg"])
"""

from __future__ import annotations

__all__ = ["RealCheckClient", "ServerConfig", "create_app"]


def __getattr__(name: str):
    # Lazy so that `import realcheck.server.client` stays light (no Flask, no NumPy) for programs that only query.
    if name == "create_app":
        from realcheck.server.app import create_app

        return create_app
    if name == "ServerConfig":
        from realcheck.server.config import ServerConfig

        return ServerConfig
    if name == "RealCheckClient":
        from realcheck.server.client import RealCheckClient

        return RealCheckClient
    raise AttributeError(f"module 'realcheck.server' has no attribute {name!r}")
