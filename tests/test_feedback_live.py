"""The feedback loop with real processes: `realcheck serve` on 127.0.0.1 writing to a real SQLite file or
PostgreSQL server, 16 clients at once, a SIGKILL in the middle of writes, and the whole way from reports
through `realcheck feedback export` to `realcheck finetune` on the export."""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import signal
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import imagegen
import pytest
from serving import LiveServer

from realcheck.cli import main as cli_main
from realcheck.server.feedback.store import FeedbackStore

CLIENTS = 16
REPORTS_PER_CLIENT = 10


def post_json(url: str, document: dict, timeout: float = 60) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(document).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def report_of(data: bytes, label: str, note: str, share: bool) -> dict:
    document = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "label": label,
        "model": {"name": "realcheck-tiny", "version": "0.0.1-test"},
        "score": 0.5,
        "note": note,
    }
    if share:
        document["image_b64"] = base64.b64encode(data).decode()
    return document


def serve(tiny_artifact, onnx_cache_dir, log: Path, database: str) -> LiveServer:
    server = LiveServer(
        tiny_artifact, onnx_cache_dir, log, "--threads", str(CLIENTS), "--feedback-db", database
    )
    server.wait_healthy()  # feedback needs no model: it is taken while the model still loads
    return server


def stored_ids(database: str) -> set[int]:
    store = FeedbackStore(database)
    try:
        return {report.id for report in store.iter_reports()}
    finally:
        store.close()


def test_sixteen_clients_at_once_and_a_sigkill_mid_write_lose_no_acknowledged_report(
    tiny_artifact, onnx_cache_dir, feedback_db, tmp_path
):
    images = [imagegen.image_bytes("ai", 40, seed=i) for i in range(8)]
    server = serve(tiny_artifact, onnx_cache_dir, tmp_path / "serve-1.log", feedback_db)
    try:
        # 16 clients, each sending its reports as fast as it can, all starting at the same moment.
        acknowledged: dict[int, str] = {}
        failures: list[str] = []
        lock = threading.Lock()
        start = threading.Barrier(CLIENTS)

        def client(number: int) -> None:
            start.wait()
            for index in range(REPORTS_PER_CLIENT):
                note = f"{number}-{index}"
                status, answer = post_json(
                    server.url + "/v1/feedback",
                    report_of(images[index % 8], "ai", note, share=index % 3 == 0),
                )
                with lock:
                    if status == 201:
                        acknowledged[answer["report"]["id"]] = note
                    else:
                        failures.append(f"{note}: {status} {answer}")

        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        assert failures == []
        assert len(acknowledged) == CLIENTS * REPORTS_PER_CLIENT
        status, listing = server.get_json("/v1/feedback?limit=1000")
        assert status == 200 and {r["id"]: r["note"] for r in listing["reports"]} == acknowledged
        print(f"\n{CLIENTS * REPORTS_PER_CLIENT} reports from {CLIENTS} clients at once: {elapsed:.2f} s")

        # Writers that never stop, then SIGKILL: no chance to flush or close anything.
        killed_acks: set[int] = set()
        stop = threading.Event()

        def writer(number: int) -> None:
            index = 0
            while not stop.is_set():
                index += 1
                try:
                    status, answer = post_json(
                        server.url + "/v1/feedback",
                        report_of(images[index % 8], "real", f"k{number}-{index}", share=index % 2 == 0),
                        timeout=10,
                    )
                except (
                    OSError
                ):  # the server died under this request: not acknowledged, may or may not be kept
                    return
                if status == 201:
                    with lock:
                        killed_acks.add(answer["report"]["id"])

        writers = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
        for thread in writers:
            thread.start()
        deadline = time.monotonic() + 60
        while len(killed_acks) < 40 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=30)
        stop.set()
        for thread in writers:
            thread.join(timeout=30)
        assert len(killed_acks) >= 40
    finally:
        server.stop()

    kept = stored_ids(feedback_db)
    assert set(acknowledged) | killed_acks <= kept, "an acknowledged report was lost"
    if "://" not in feedback_db:
        with sqlite3.connect(feedback_db) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    # A new server on the same database carries on: nothing is locked or half-written.
    again = serve(tiny_artifact, onnx_cache_dir, tmp_path / "serve-2.log", feedback_db)
    try:
        status, answer = post_json(
            again.url + "/v1/feedback", report_of(images[0], "ai", "after", share=True)
        )
        assert status == 201
        status, listing = again.get_json("/v1/feedback?limit=1000")
        # Counted again now: on PostgreSQL a COMMIT the killed server had already sent may land after `kept`
        # was read (acknowledged reports are all in `kept`; an unacknowledged one may still arrive).
        now = stored_ids(feedback_db)
        assert listing["total"] == len(now) and kept | {answer["report"]["id"]} <= now
    finally:
        again.stop()


def test_reports_through_the_api_export_and_a_tiny_finetune_on_the_export(
    tiny_artifact, onnx_cache_dir, tmp_path, capsys
):
    database = str(tmp_path / "feedback.sqlite3")
    images = [
        (imagegen.image_bytes(label, 48, seed=100 + i, fmt="PNG"), label)
        for i in range(10)
        for label in ("real", "ai")
    ]
    server = serve(tiny_artifact, onnx_cache_dir, tmp_path / "serve.log", database)
    try:
        server.wait_ready()
        # What the extension does: a prediction, then "Wrong? It's ..." with the model and score it showed.
        for data, label in images:
            request = urllib.request.Request(
                server.url + "/v1/predict", data=data, headers={"Content-Type": "image/png"}, method="POST"
            )
            with urllib.request.urlopen(request, timeout=60) as response:
                answer = json.loads(response.read())
            prediction = answer["predictions"][0]
            document = {
                "sha256": prediction["sha256"],
                "label": label,
                "model": answer["model"],
                "score": prediction["score"],
                "verdict": prediction["verdict"],
                "image_b64": base64.b64encode(data).decode(),
                "client": "test",
            }
            assert post_json(server.url + "/v1/feedback", document)[0] == 201
        # One more that shares no image: a CSV row, no file.
        assert (
            post_json(server.url + "/v1/feedback", report_of(b"not shared", "ai", "no image", share=False))[0]
            == 201
        )
    finally:
        server.stop()

    capsys.readouterr()
    assert cli_main(["-q", "feedback", "list", "--feedback-db", database]) == 0
    listed = capsys.readouterr()
    assert len(listed.out.splitlines()) == 21 and "21 of 21 reports" in listed.err
    assert cli_main(["-q", "feedback", "list", "--feedback-db", database, "--json", "--limit", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["note"] == "no image"

    export = tmp_path / "export"
    assert cli_main(["-q", "feedback", "export", "--feedback-db", database, "--out", str(export)]) == 0
    assert "10 in real/, 10 in fake/" in capsys.readouterr().out
    assert sorted(p.name for p in (export / "real").iterdir()) == sorted(
        f"{hashlib.sha256(d).hexdigest()}.png" for d, label in images if label == "real"
    )
    with (export / "manifest.csv").open(newline="", encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == 21

    tuned = tmp_path / "tuned"
    status = cli_main(
        ["-q", "finetune", "--model", str(tiny_artifact), "--data", str(export), "--out", str(tuned),
         "--finetune-epochs", "1", "--batch-size", "8", "--patience", "0"]
    )  # fmt: skip
    assert status == 0
    metadata = json.loads((tuned / "metadata.json").read_text())
    assert metadata["fine_tuned_from"]["name"] == "realcheck-tiny"
    assert metadata["training_data"]["real"] == 10 and metadata["training_data"]["ai"] == 10
    with (tuned / "split.csv").open(newline="", encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == 20


@pytest.mark.parametrize("bad", ["mysql://x@y/z", "sqlite://"])
def test_serve_refuses_a_bad_feedback_database_in_one_line(bad, capsys):
    assert cli_main(["-q", "serve", "--feedback-db", bad, "--port", "0"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("realcheck: error:") and "Traceback" not in error


def test_feedback_commands_refuse_a_database_that_does_not_exist(tmp_path, capsys):
    missing = tmp_path / "none.sqlite3"
    assert cli_main(["-q", "feedback", "list", "--feedback-db", str(missing)]) == 2
    assert (
        cli_main(["-q", "feedback", "export", "--feedback-db", str(missing), "--out", str(tmp_path / "x")])
        == 2
    )
    assert capsys.readouterr().err.count("no feedback database") == 2
    assert not missing.exists()


def test_a_locked_sqlite_file_does_not_starve_predict(tiny_artifact, onnx_cache_dir, tmp_path):
    database = str(tmp_path / "feedback.sqlite3")
    server = serve(tiny_artifact, onnx_cache_dir, tmp_path / "serve.log", database)
    image = imagegen.image_bytes("real", 48, seed=3, fmt="PNG")
    try:
        server.wait_ready()
        assert (
            post_json(server.url + "/v1/feedback", report_of(image, "real", "first", share=False))[0] == 201
        )
        # Another program holds the write lock (a backup, a sqlite3 shell), while 24 clients keep reporting.
        holder = sqlite3.connect(database, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        statuses: list[int] = []
        stop = threading.Event()

        def reporter(number: int) -> None:
            while not stop.is_set():
                try:
                    status, _ = post_json(
                        server.url + "/v1/feedback", report_of(image, "ai", f"r{number}", share=False), 30
                    )
                except OSError:
                    status = 0
                statuses.append(status)

        reporters = [threading.Thread(target=reporter, args=(n,)) for n in range(24)]
        for thread in reporters:
            thread.start()
        try:
            time.sleep(1.0)
            # Predict still gets worker threads: each answer comes (urllib raises on a timeout).
            for _ in range(10):
                request = urllib.request.Request(
                    server.url + "/v1/predict",
                    data=image,
                    headers={"Content-Type": "image/png"},
                    method="POST",
                )
                with urllib.request.urlopen(request, timeout=15) as response:
                    assert response.status == 200
        finally:
            stop.set()
            for thread in reporters:
                thread.join(timeout=60)
            holder.execute("ROLLBACK")
            holder.close()
        assert statuses and set(statuses) <= {503}, sorted(set(statuses))  # refused, never a 500 or a hang
        assert (
            post_json(server.url + "/v1/feedback", report_of(image, "real", "after", share=False))[0] == 201
        )
    finally:
        server.stop()


def test_damaged_files_beside_the_sqlite_database_do_not_kill_the_server(
    tiny_artifact, onnx_cache_dir, tmp_path
):
    # A WAL database maps its -shm file into memory: truncating it (a full disk, a careless cleanup) made the
    # next write a SIGBUS that killed the server. A rollback journal keeps nothing mapped.
    database = tmp_path / "feedback.sqlite3"
    server = serve(tiny_artifact, onnx_cache_dir, tmp_path / "serve.log", str(database))
    image = imagegen.image_bytes("real", 48, seed=4, fmt="PNG")
    try:
        url = server.url + "/v1/feedback"
        assert post_json(url, report_of(image, "real", "first", share=False))[0] == 201
        for sibling in tmp_path.glob("feedback.sqlite3-*"):
            sibling.write_bytes(b"")
        status, body = post_json(url, report_of(image, "ai", "second", share=False))
        assert status == 201, body
        assert server.process.poll() is None
        assert server.get_json("/v1/feedback")[1]["total"] == 2
    finally:
        server.stop()
