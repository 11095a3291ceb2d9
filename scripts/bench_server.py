#!/usr/bin/env python
"""Serving throughput and latency: the real `realcheck serve` on 127.0.0.1, driven by concurrent clients.

For batching on (`--max-batch-size`) and off (batch size 1), a server process is started on a free loopback
port and `--clients` threads post JPEGs (each request's bytes made unique, so nothing is a cache hit) for
`--seconds`. Reported: throughput, p50/p95/p99 latency, errors, the server's peak memory; batch-1 latency with
one client; a cached repeat's latency; and, measured in this process, the same runtime's batched throughput
(the model's batched limit) and a naive baseline (decode + one Keras `model.predict` per request, no
batching). Prints one JSON object. Loopback only; every loop is bounded by time and count.

    python scripts/bench_server.py --images ../shared/data/dhanush-dev --clients 16 --seconds 20
"""

from __future__ import annotations

import argparse
import http.client
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MAX_REQUESTS_PER_CLIENT = 100_000


def unique(data: bytes, counter: int) -> bytes:
    # Bytes after a JPEG's end-of-image marker are ignored by decoders but change the SHA-256: no cache hits.
    return data + b"RCBENCH" + counter.to_bytes(8, "big")


def post(connection: http.client.HTTPConnection, data: bytes) -> int:
    connection.request("POST", "/v1/predict", body=data, headers={"Content-Type": "image/jpeg"})
    response = connection.getresponse()
    response.read()
    return response.status


def drive(port: int, images: list[bytes], clients: int, seconds: float, salt: int) -> dict:
    """`clients` threads posting unique JPEGs for `seconds`; throughput, latency percentiles, errors."""
    import benchlib

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine, failed = [], []
        for request in range(MAX_REQUESTS_PER_CLIENT):
            if time.perf_counter() >= deadline:
                break
            data = unique(
                images[(index + request * clients) % len(images)],
                salt + index * MAX_REQUESTS_PER_CLIENT + request,
            )
            started = time.perf_counter()
            try:
                status = post(connection, data)
            except (OSError, http.client.HTTPException) as error:
                failed.append(type(error).__name__)
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                continue
            if status == 200:
                mine.append(time.perf_counter() - started)
            else:
                failed.append(str(status))
        connection.close()
        with lock:
            latencies.extend(mine)
            errors.extend(failed)

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {
        "clients": clients,
        "seconds": round(elapsed, 2),
        "requests_ok": len(latencies),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "images_per_s": round(len(latencies) / elapsed, 2),
        **benchlib.percentiles(latencies),
    }


def cached_repeat_ms(port: int, data: bytes, repeats: int = 50) -> dict:
    """Latency of sending an image the server has already scored (a content-hash cache hit)."""
    import benchlib

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    post(connection, data)
    latencies = []
    for _ in range(repeats):
        started = time.perf_counter()
        post(connection, data)
        latencies.append(time.perf_counter() - started)
    connection.close()
    return benchlib.percentiles(latencies)


def peak_memory_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(
    model_dir: Path, backend: str, threads: int, batch: int, wait_ms: float, cache_dir: str | None
):
    port = free_port()
    command = [
        sys.executable, "-m", "realcheck", "serve", "--model", str(model_dir), "--host", "127.0.0.1",
        "--port", str(port), "--backend", backend, "--threads", str(threads),
        "--max-batch-size", str(batch), "--max-wait-ms", str(wait_ms),
    ]  # fmt: skip
    if cache_dir:
        command += ["--cache-dir", cache_dir]
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_server_{port}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parent.parent
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}; see {log.name}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
                if response.status == 200:
                    return process, port
        except OSError:
            time.sleep(0.25)
    process.kill()
    raise SystemExit("server did not become ready in 600 s")


def in_process(
    model_dir: Path, backend: str, images: list[bytes], batch: int, seconds: float, naive: bool, cache_dir
):
    """The runtime's batched throughput on prepared inputs, and the naive one-predict-per-request rate."""
    import numpy as np

    from realcheck.model.artifacts.artifact import read_metadata
    from realcheck.model.scoring.inference import Detector
    from realcheck.server.backends import load_runtime
    from realcheck.server.config import ServerConfig

    metadata = read_metadata(model_dir)
    runtime = load_runtime(model_dir, metadata, backend, ServerConfig(cache_dir=cache_dir).resolved_cache_dir)
    detector = Detector(runtime, metadata)
    prepared = np.stack([detector.pixels(images[i % len(images)]) for i in range(batch)])
    runtime.scores(prepared)
    count, started = 0, time.perf_counter()
    while count < 10_000 and (count < 2 or time.perf_counter() - started < seconds):
        runtime.scores(prepared)
        count += 1
    result = {
        "runtime": runtime.name,
        "batch": batch,
        "batched_images_per_s": round(count * batch / (time.perf_counter() - started), 2),
    }
    decode_started = time.perf_counter()
    for data in images[:16]:
        detector.pixels(data)
    result["decode_ms_per_image"] = round((time.perf_counter() - decode_started) / 16 * 1000, 2)
    if naive:
        from realcheck.model.artifacts.artifact import load_artifact

        keras_model, _ = load_artifact(model_dir)
        keras_model.predict(prepared[:1].astype("float32"), verbose=0)
        count, started = 0, time.perf_counter()
        while count < 10_000 and (count < 2 or time.perf_counter() - started < seconds):
            array = detector.pixels(images[count % len(images)])[None].astype("float32")
            keras_model.predict(array, verbose=0)
            count += 1
        result["naive_predict_per_request_images_per_s"] = round(count / (time.perf_counter() - started), 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", default=None, help="artifact folder (default: an untrained 224-px ResNet-50)"
    )
    parser.add_argument(
        "--images", default=None, help="folder of JPEGs to send (default: synthetic 512-px JPEGs)"
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0, help="driving time per server configuration")
    parser.add_argument("--backend", default="onnx", choices=("onnx", "tensorflow"))
    parser.add_argument("--threads", type=int, default=16, help="server worker threads")
    parser.add_argument("--max-batch-size", type=int, default=16)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--cache-dir", default=None, help="ONNX export cache (default ~/.cache/realcheck)")
    parser.add_argument("--skip-naive", action="store_true", help="skip the Keras model.predict baseline")
    parser.add_argument("--skip-off", action="store_true", help="skip the batching-off run")
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args()

    import benchlib

    model_dir = Path(args.model) if args.model else benchlib.ensure_artifact()
    images = benchlib.jpeg_images(64, args.images)
    report = {
        "clients": args.clients,
        "seconds": args.seconds,
        "backend": args.backend,
        "images": args.images or "synthetic 512x512 JPEG q95",
        "mean_image_bytes": round(sum(map(len, images)) / len(images)),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
    }
    modes = [("batching_on", args.max_batch_size)] + ([] if args.skip_off else [("batching_off", 1)])
    for index, (mode, batch) in enumerate(modes):
        process, port = start_server(
            model_dir, args.backend, args.threads, batch, args.max_wait_ms, args.cache_dir
        )
        try:
            entry = {"max_batch_size": batch, "max_wait_ms": args.max_wait_ms, "threads": args.threads}
            if mode == "batching_on":
                one = drive(port, images, 1, min(args.seconds, 10.0), salt=10**12)
                entry["one_client"] = one
                entry["cached_repeat"] = cached_repeat_ms(port, images[0])
            entry["load"] = drive(port, images, args.clients, args.seconds, salt=(index + 1) * 10**13)
            entry["server_peak_memory_mb"] = peak_memory_mb(process.pid)
            report[mode] = entry
            print(f"{mode}: {entry['load']['images_per_s']} img/s at {args.clients} clients", file=sys.stderr)
        finally:
            process.terminate()
            process.wait(timeout=60)
    report["in_process"] = in_process(
        model_dir,
        args.backend,
        images,
        args.max_batch_size,
        min(args.seconds, 10.0),
        not args.skip_naive,
        args.cache_dir,
    )
    served = report["batching_on"]["load"]["images_per_s"]
    report["ratio_to_in_process_batched"] = round(served / report["in_process"]["batched_images_per_s"], 3)
    if "naive_predict_per_request_images_per_s" in report["in_process"]:
        report["ratio_to_naive"] = round(
            served / report["in_process"]["naive_predict_per_request_images_per_s"], 2
        )
    if "batching_off" in report:
        report["ratio_batching_on_to_off"] = round(
            served / max(report["batching_off"]["load"]["images_per_s"], 1e-9), 2
        )
    report["load_average_at_end"] = os.getloadavg()
    benchlib.write_report(report, args.out)


if __name__ == "__main__":
    main()
