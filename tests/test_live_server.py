"""The real `realcheck serve` process (waitress) on a loopback port: readiness, concurrency, batching, limits."""

from __future__ import annotations

import json
import re
import socket
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from serving import jpeg_bytes, varied_images

from server.client import RealCheckClient


def metric_value(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.MULTILINE)
    assert match, f"{name} missing from /metrics"
    return float(match.group(1))


def test_ready_and_logs_device_and_runtime(live_server):
    status, body = live_server.get_json("/readyz")
    assert status == 200 and body["status"] == "ready"
    assert body["runtime"]["runtime"] == "onnxruntime"
    log = live_server.log()
    assert "ready on CPUExecutionProvider via onnxruntime" in log
    assert live_server.get_json("/healthz") == (200, {"status": "ok"})


def test_concurrent_requests_get_the_scores_of_single_requests(live_server):
    client = RealCheckClient(live_server.url)
    images = varied_images(24, size=60)
    before = live_server.get_text("/metrics")
    # One request with many images: those images reach the batcher together, so a batch > 1 is certain.
    together = [r["score"] for r in client.check(images[:8])]
    with ThreadPoolExecutor(max_workers=12) as pool:
        concurrent = list(pool.map(lambda data: client.check_one(data), images))
    assert [r["score"] for r in concurrent[:8]] == together  # cache hits, same scores
    fresh = RealCheckClient(live_server.url)
    alone = [fresh.check_base64([data])[0] for data in images[8:]]
    assert [r["score"] for r in concurrent[8:]] == [r["score"] for r in alone]
    after = live_server.get_text("/metrics")
    batches = metric_value(after, "realcheck_batch_size_count") - metric_value(
        before, "realcheck_batch_size_count"
    )
    images_scored = metric_value(after, "realcheck_batch_size_sum") - metric_value(
        before, "realcheck_batch_size_sum"
    )
    assert images_scored == 24 and batches < 24  # coalesced: fewer model calls than images
    assert metric_value(after, "realcheck_cache_hits_total") >= 8 + 16
    assert 'realcheck_http_requests_total{endpoint="/v1/predict",method="POST",status="200"}' in after


def test_slow_clients_do_not_hold_the_workers(live_server):
    # More stalled uploads than the server has worker threads (4): waitress buffers them, workers stay free.
    stalled = []
    for _ in range(8):
        connection = socket.create_connection(("127.0.0.1", live_server.port), timeout=10)
        connection.sendall(
            b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n"
            + b"\xff\xd8" * 10
        )
        stalled.append(connection)
    try:
        result = RealCheckClient(live_server.url, timeout=30).check_one(jpeg_bytes(seed=4242))
        assert result["verdict"] in {"ai", "real", "uncertain"}
    finally:
        for connection in stalled:
            connection.close()


def test_errors_over_the_wire_are_json(live_server):
    too_big = b"\xff\xd8" + b"\0" * (3 * 1024 * 1024)  # the server was started with --max-request-mb 2
    for data, content_type, status in (
        (too_big, "image/jpeg", 413),
        (b"GIF89a broken", "image/gif", 400),
        (b"hello", "text/plain", 415),
    ):
        request = urllib.request.Request(
            live_server.url + "/v1/predict", data=data, headers={"Content-Type": content_type}, method="POST"
        )
        try:
            urllib.request.urlopen(request, timeout=30)
            raise AssertionError("expected an error status")
        except urllib.error.HTTPError as error:
            assert error.code == status
            assert set(json.loads(error.read())["error"]) == {"code", "message"}
