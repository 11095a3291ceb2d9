"""RealCheckClient against the real server process."""

from __future__ import annotations

import pytest
from serving import free_port, jpeg_bytes

from realcheck.server.client import ClientError, RealCheckClient


def test_check_paths_and_bytes(live_server, tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(jpeg_bytes("real", 80, seed=801))
    client = RealCheckClient(live_server.url)
    results = client.check([path, str(path), path.read_bytes()])
    assert len(results) == 3
    assert len({r["score"] for r in results}) == 1 and len({r["sha256"] for r in results}) == 1
    assert results[0]["filename"] == "photo.jpg"
    assert results[0]["model"] == "realcheck-tiny" and results[0]["version"] == "0.0.1-test"
    assert client.check_one(path)["cached"] is True
    assert client.check_base64([path.read_bytes()])[0]["score"] == results[0]["score"]
    assert client.check([]) == []


def test_metadata_health_and_readiness(live_server):
    client = RealCheckClient(live_server.url + "/")
    assert client.healthy() and client.ready()
    assert client.models()[0]["name"] == "realcheck-tiny"
    assert client.model("realcheck-tiny")["input_size"] == 32


def test_errors_carry_status_and_code(live_server, tmp_path):
    client = RealCheckClient(live_server.url)
    with pytest.raises(ClientError) as caught:
        client.check_one(b"not an image")
    assert caught.value.status == 400 and caught.value.code == "invalid_image"
    assert "not an image" in str(caught.value)
    with pytest.raises(ClientError) as caught:
        client.model("nope")
    assert caught.value.status == 404
    with pytest.raises(ClientError, match="cannot read"):
        client.check_one(tmp_path / "missing.jpg")


def test_unreachable_server_is_a_clear_error():
    client = RealCheckClient(f"http://127.0.0.1:{free_port()}", timeout=5)
    assert not client.healthy() and not client.ready()
    with pytest.raises(ClientError, match="cannot reach the RealCheck server at .*: Connection refused$"):
        client.check_one(b"x")
    with pytest.raises(ClientError, match="must start with http:// or https://"):
        RealCheckClient("ftp://127.0.0.1:8000")
    assert RealCheckClient("127.0.0.1:8000").url == "http://127.0.0.1:8000"  # what a browser would make of it


class FlakyProxy:
    """A proxy in front of the server that answers 502 to the first `failures` requests, counting them all."""

    def __init__(self, upstream: str, failures: int):
        import threading
        import urllib.request
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        outer, self.count = self, 0

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def relay(self):
                outer.count += 1
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if outer.count <= failures:
                    self.send_response(502)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                request = urllib.request.Request(upstream + self.path, data=body or None, method=self.command)
                with urllib.request.urlopen(request, timeout=30) as answer:
                    data = answer.read()
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = relay

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_gets_are_retried_through_a_flaky_proxy_and_posts_are_not(live_server):
    proxy = FlakyProxy(live_server.url, failures=2)
    try:
        client = RealCheckClient(proxy.url, retries=2)
        assert client.models()[0]["name"] == "realcheck-tiny" and proxy.count == 3  # two 502s, then through
        proxy.count = -10  # the next POST meets a 502: the caller's to repeat, never sent twice
        with pytest.raises(ClientError) as caught:
            client.check_one(jpeg_bytes("real", 40, seed=5))
        assert caught.value.status == 502 and proxy.count == -9
    finally:
        proxy.close()
