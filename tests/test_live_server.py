"""The real `realcheck serve` process (waitress) on a loopback port: readiness, concurrency, batching, limits."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from serving import LiveServer, jpeg_bytes, varied_images

from realcheck.server.client import RealCheckClient


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
    assert "Warning" not in log and ".tmp.onnx" not in log, "start-up prints only RealCheck's own lines"
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


def test_sigterm_while_the_model_loads_exits_cleanly(tiny_artifact, onnx_cache_dir, tmp_path):
    # The TensorFlow backend loads for seconds (import, model file, warm-up): SIGTERM lands mid-load.
    for attempt in range(2):
        server = LiveServer(
            tiny_artifact, onnx_cache_dir, tmp_path / f"serve-{attempt}.log", "--backend", "tensorflow"
        )
        server.wait_healthy()
        status, body = server.get_json("/readyz")
        assert status == 503, "the model was already loaded: the test did not stop it mid-load"
        assert server.stop() == 0, server.log()
        assert (
            "terminate called" not in server.log()
            and "stopped while the model was still loading" in server.log()
        )


def test_a_request_that_trickles_in_gets_a_408_and_frees_its_connection(
    tiny_artifact, onnx_cache_dir, tmp_path
):
    server = LiveServer(
        tiny_artifact,
        onnx_cache_dir,
        tmp_path / "serve.log",
        "--request-timeout",
        "2",
        "--connection-limit",
        "30",
        "--threads",
        "2",
    )
    try:
        server.wait_ready()
        # More tricklers than the connection limit allows: each sends a byte now and then, never finishing.
        tricklers = [socket.create_connection(("127.0.0.1", server.port), timeout=20) for _ in range(40)]
        for connection in tricklers:
            connection.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\n")
        answers = []
        for _ in range(6):  # 6 s of trickling, three times the deadline
            for connection in tricklers:
                with contextlib.suppress(OSError):  # closed by the server: that is the point
                    connection.sendall(b"X")
            time.sleep(1)
        for connection in tricklers:
            try:
                answers.append(connection.recv(4096))
            except OSError:
                answers.append(b"")
            connection.close()
        refused = [answer for answer in answers if answer.startswith(b"HTTP/1.1 408")]
        assert len(refused) >= 30, answers[:3]
        body = json.loads(refused[0].split(b"\r\n\r\n", 1)[1])
        assert body["error"]["code"] == "request_timeout"
        # Normal clients are served again.
        assert RealCheckClient(server.url, timeout=30).check_one(jpeg_bytes(seed=77))["verdict"]
    finally:
        server.stop()


def test_sigterm_before_the_server_listens_exits_cleanly(tmp_path):
    import signal
    import subprocess
    import time

    from serving import free_port, realcheck_command

    process = subprocess.Popen(
        [*realcheck_command(), "serve", "--port", str(free_port()), "--cache-dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        # As soon as the command has taken SIGTERM over: it lands while the server is still being made (imports,
        # app, model loader), the path a supervisor's early stop takes.
        caught = 0
        deadline = time.monotonic() + 60
        while not caught >> (signal.SIGTERM - 1) & 1 and time.monotonic() < deadline:
            status = Path(f"/proc/{process.pid}/status").read_text().splitlines()
            caught = int(next(line for line in status if line.startswith("SigCgt:")).split()[1], 16)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, process.stderr.read()[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
