"""`realcheck check` and `realcheck scan`, against the real server and in-process; `serve` needs a model."""

from __future__ import annotations

import csv
import json
import os
import signal

import imagegen
import provenancegen
import pytest
from serving import jpeg_bytes

from realcheck.cli import main
from realcheck.server.queries import ROW_FIELDS


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    status = main(["-q", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    (folder / "nested").mkdir(parents=True)
    (folder / "a.jpg").write_bytes(jpeg_bytes("real", 70, seed=1))
    (folder / "nested" / "b.png").write_bytes(imagegen.image_bytes("ai", 70, seed=2))
    (folder / "notes.txt").write_text("not an image, and not scanned")
    return folder


def test_check_through_the_server(capsys, live_server, photos):
    status, out, _ = run_cli(capsys, "check", str(photos / "a.jpg"), "--server", live_server.url)
    assert status == 0 and "a.jpg: " in out and "P(AI)" in out
    # How far the verdict can be trusted, from the served model's metadata (which measured nothing).
    assert out.splitlines()[-1].startswith(
        "This model's accuracy on images from sources it never saw was not"
    )
    status, out, _ = run_cli(
        capsys,
        "check",
        str(photos / "a.jpg"),
        str(photos / "notes.txt"),
        "--server",
        live_server.url,
        "--json",
    )
    rows = json.loads(out)
    assert status == 1, "a file that could not be checked makes the exit status non-zero"
    assert rows[0]["verdict"] in {"ai", "real", "uncertain"} and rows[0]["error"] is None
    assert "not an image" in rows[1]["error"]


def test_a_server_address_without_scheme_and_scan_without_out(
    capsys, live_server, photos, tmp_path, monkeypatch
):
    address = live_server.url.removeprefix("http://")
    status, out, err = run_cli(capsys, "check", str(photos / "a.jpg"), "--server", address)
    assert status == 0 and "a.jpg: " in out, err
    monkeypatch.chdir(tmp_path)
    status, out, err = run_cli(capsys, "scan", str(photos), "--server", address)
    assert status == 0 and "scanned 2 of 2" in out, err
    rows = list(csv.DictReader((tmp_path / "photos-realcheck.csv").open()))
    assert sorted(r["path"] for r in rows) == ["a.jpg", "nested/b.png"]
    status, out, _ = run_cli(capsys, "scan", str(photos), "--server", address)  # the same command resumes
    assert status == 0 and "scanned 0 of 2" in out


def test_serve_on_a_busy_port_says_so_in_one_line(capsys):
    import socket

    with socket.create_server(("127.0.0.1", 0)) as busy:  # another program listening there
        port = busy.getsockname()[1]
        status, out, err = run_cli(capsys, "serve", "--port", str(port))
    assert status == 2
    assert (
        err.strip()
        == f"realcheck: error: port {port} on 127.0.0.1 is in use (another server?): stop it, or pass --port N"
    )
    assert "Traceback" not in out + err


def test_scan_through_the_server_is_resumable(capsys, live_server, photos, tmp_path):
    out_file = tmp_path / "results.csv"
    status, out, _ = run_cli(capsys, "scan", str(photos), "--server", live_server.url, "--out", str(out_file))
    assert status == 0 and "scanned 2 of 2" in out
    rows = list(csv.DictReader(out_file.open()))
    assert sorted(r["path"] for r in rows) == ["a.jpg", "nested/b.png"]
    assert all(r["verdict"] and r["sha256"] and not r["error"] for r in rows)

    (photos / "c.jpg").write_bytes(jpeg_bytes("ai", 70, seed=3))
    (photos / "broken.jpg").write_bytes(jpeg_bytes("ai", 70, seed=4)[:150])
    status, out, _ = run_cli(capsys, "scan", str(photos), "--server", live_server.url, "--out", str(out_file))
    assert status == 1 and "scanned 2 of 4" in out and "2 skipped" in out and "1 failed" in out
    rows = list(csv.DictReader(out_file.open()))
    assert len(rows) == 4 and [r for r in rows if r["path"] == "broken.jpg"][0]["error"]

    # The failed file is tried again (and fails again); scored ones are not re-checked or duplicated.
    status, out, _ = run_cli(capsys, "scan", str(photos), "--server", live_server.url, "--out", str(out_file))
    assert status == 1 and "scanned 1 of 4" in out
    assert len(list(csv.DictReader(out_file.open()))) == 4


def test_check_and_scan_in_process(capsys, tiny_artifact, live_server, photos, tmp_path):
    status, out, _ = run_cli(capsys, "check", str(photos / "a.jpg"), "--model", str(tiny_artifact), "--json")
    assert status == 0
    local = json.loads(out)[0]
    remote = json.loads(
        run_cli(capsys, "check", str(photos / "a.jpg"), "--server", live_server.url, "--json")[1]
    )[0]
    assert abs(local["score"] - remote["score"]) < 1e-4 and local["sha256"] == remote["sha256"]

    out_file = tmp_path / "results.jsonl"
    status, out, _ = run_cli(
        capsys, "scan", str(photos), "--model", str(tiny_artifact), "--out", str(out_file)
    )
    assert status == 0 and "scanned 2 of 2" in out
    rows = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert {r["path"] for r in rows} == {"a.jpg", "nested/b.png"} and all(
        r["score"] is not None for r in rows
    )


def test_check_states_the_accuracy_the_artifact_measured(capsys, tiny_artifact, photos, tmp_path):
    import shutil

    from realcheck.model.artifacts.artifact import read_metadata, write_metadata

    model = shutil.copytree(tiny_artifact, tmp_path / "measured")
    rates = {"ai_caught": 0.61, "real_called_ai": 0.024, "uncertain": 0.2}
    measured = {"protocol": "cross-collection (test)", "clean": rates}
    write_metadata(
        model, read_metadata(model) | {"operating_point": {"rule": "per-source", "measured": measured}}
    )
    status, out, _ = run_cli(capsys, "check", str(photos / "a.jpg"), "--model", str(model))
    assert status == 0
    assert out.splitlines()[-1] == (
        "In tests on image collections it never saw, it called 61% of AI images AI and 2.4% of real photos "
        "AI, and was unsure about 20%; treat a verdict as a hint, not proof."
    )
    status, out, _ = run_cli(capsys, "check", str(photos / "a.jpg"), "--model", str(model), "--json")
    assert json.loads(out)[0]["score"] is not None  # --json stays one JSON document


def test_check_scores_with_the_shipped_onnx_export_and_never_imports_tensorflow(photos):
    import subprocess
    import sys

    code = (
        "import sys; from realcheck.cli import main; status = main(['-q', 'check', sys.argv[1]]); "
        "heavy = sorted(m for m in ('tensorflow', 'keras') if m in sys.modules); "
        "print('imported:', heavy); sys.exit(status)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(photos / "a.jpg")], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "a.jpg: " in done.stdout and "imported: []" in done.stdout, done.stdout


def test_check_uses_the_bundled_model_by_default(capsys, photos):
    from realcheck.model.artifacts.artifact import bundled_model_dir, read_metadata

    status, out, err = run_cli(
        capsys, "check", str(photos / "a.jpg"), str(photos / "nested" / "b.png"), "--json"
    )
    assert status == 0, err
    results = json.loads(out)
    bundled = read_metadata(bundled_model_dir())
    assert [r["model"] for r in results] == [bundled["name"]] * 2
    assert all(r["version"] == bundled["version"] and 0 <= r["score"] <= 1 for r in results)


def test_clear_errors(capsys, tmp_path, live_server, monkeypatch):
    from realcheck.model.artifacts import artifact

    monkeypatch.setattr(artifact, "bundled_models_root", lambda: tmp_path / "no-bundled-model")
    photo = tmp_path / "x.jpg"
    photo.write_bytes(jpeg_bytes("real", 40))
    status, _, err = run_cli(capsys, "serve")
    assert status == 2 and "pass --model DIR" in err
    status, _, err = run_cli(capsys, "check", str(photo))
    assert status == 2 and "pass --model DIR" in err
    status, _, err = run_cli(capsys, "scan", str(tmp_path), "--server", live_server.url, "--out", "x.txt")
    assert status == 2 and ".csv or .jsonl" in err
    status, _, err = run_cli(capsys, "check", str(photo), "--server", "http://127.0.0.1:9", "--model", "m")
    assert status == 2 and "not both" in err
    status, _, err = run_cli(capsys, "serve", "--model", str(tmp_path), "--backend", "onnx")
    assert status == 2 and "not a RealCheck artifact" in err


def test_check_reports_missing_files_and_folders_without_loading_a_model(capsys, tmp_path, monkeypatch):
    from realcheck.server import queries

    monkeypatch.setattr(queries, "make_checker", lambda *a, **k: pytest.fail("a model was loaded"))
    status, out, _ = run_cli(capsys, "check", str(tmp_path / "nope.jpg"), str(tmp_path))
    assert status == 1
    assert f"{tmp_path / 'nope.jpg'}: error: no such file" in out
    assert f"{tmp_path}: error: is a folder" in out


@pytest.mark.parametrize("case", ["missing folder", "bad suffix"])
def test_scan_argument_errors_come_before_loading_a_model(capsys, tmp_path, monkeypatch, case):
    from realcheck.server import queries

    monkeypatch.setattr(queries, "make_checker", lambda *a, **k: pytest.fail("a model was loaded"))
    folder = tmp_path / ("nope" if case == "missing folder" else "")
    out = tmp_path / ("r.csv" if case == "missing folder" else "r.txt")
    status, _, err = run_cli(capsys, "scan", str(folder), "--out", str(out))
    assert status == 2
    assert ("not a folder" if case == "missing folder" else "must end in .csv or .jsonl") in err


def test_ctrl_c_during_a_scan_finishes_the_batch_in_flight_then_resumes(
    capsys, tiny_artifact, tmp_path, monkeypatch
):
    from realcheck.server.queries import LocalChecker, scan_folder

    folder = tmp_path / "many"
    folder.mkdir()
    for index in range(12):
        (folder / f"{index:02d}.jpg").write_bytes(jpeg_bytes("real" if index % 2 else "ai", 48, seed=index))
    checker = LocalChecker(tiny_artifact, batch_size=4)
    score = checker.detector.scores
    batches = []

    def scores_with_ctrl_c(batch):
        batches.append(len(batch))
        if len(batches) == 2:  # Ctrl-C while the second batch is being scored
            os.kill(os.getpid(), signal.SIGINT)
        return score(batch)

    monkeypatch.setattr(checker.detector, "scores", scores_with_ctrl_c)
    handler_before = signal.getsignal(signal.SIGINT)
    out = tmp_path / "scan.csv"
    summary, status = scan_folder(folder, out, checker, progress=False)
    assert status == 130 and summary.interrupted and summary.checked == 8
    assert "finishing the images in flight" in capsys.readouterr().err
    with open(out, newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 8, "both batches started were written"
    assert signal.getsignal(signal.SIGINT) == handler_before, "Ctrl-C is itself again"
    summary, status = scan_folder(folder, out, checker, progress=False)
    assert status == 0 and summary.checked == 4 and summary.skipped == 8


@pytest.fixture
def evidence_photos(tmp_path):
    folder = tmp_path / "evidence"
    folder.mkdir()
    (folder / "signed.jpg").write_bytes(provenancegen.signed("trainedAlgorithmicMedia"))
    (folder / "a1111.png").write_bytes(provenancegen.png_with_text(parameters=provenancegen.A1111_PARAMETERS))
    (folder / "camera.jpg").write_bytes(provenancegen.with_exif(make="Canon", model="EOS R5"))
    (folder / "plain.jpg").write_bytes(provenancegen.picture())
    return folder


def test_scan_rows_carry_provenance_the_same_in_process_and_through_the_server(
    capsys, tiny_artifact, live_server, evidence_photos, tmp_path
):
    tables = {}
    for where, flag in (
        ("local", ["--model", str(tiny_artifact)]),
        ("remote", ["--server", live_server.url]),
    ):
        out_file = tmp_path / f"{where}.csv"
        status, _, err = run_cli(capsys, "scan", str(evidence_photos), *flag, "--out", str(out_file))
        assert status == 0, err
        with out_file.open(newline="") as handle:
            reader = csv.DictReader(handle)
            assert tuple(reader.fieldnames) == ROW_FIELDS
            tables[where] = {row["path"]: row for row in reader}
    local, remote = tables["local"], tables["remote"]
    for path, row in local.items():
        assert {k: v for k, v in row.items() if k != "score"} == {
            k: v for k, v in remote[path].items() if k != "score"
        }
    signed = local["signed.jpg"]
    assert (signed["verdict"], signed["basis"], signed["c2pa_state"], signed["declares_ai"]) == (
        "ai",
        "provenance",
        "valid",
        "True",
    )
    assert signed["c2pa_signer"] == "Test Generator" and signed["provenance"].startswith("AI · Content")
    assert local["a1111.png"]["basis"] == "provenance"
    for path in ("camera.jpg", "plain.jpg"):
        assert local[path]["basis"] == "model" and local[path]["verdict"] == local[path]["model_verdict"]
    assert local["camera.jpg"]["provenance"].startswith("Camera named in EXIF: Canon EOS R5")
    assert (
        local["plain.jpg"]["provenance"] == "no provenance metadata" and not local["plain.jpg"]["c2pa_state"]
    )


def test_check_says_when_provenance_decided(capsys, tiny_artifact, evidence_photos):
    status, out, _ = run_cli(
        capsys, "check", str(evidence_photos / "signed.jpg"), str(evidence_photos / "plain.jpg"),
        "--model", str(tiny_artifact),
    )  # fmt: skip
    signed, plain, ranges, statement = out.splitlines()
    assert ranges == "Scores: AI above 0.550, unsure 0.450-0.550, no AI signs below 0.450."
    assert statement.endswith("treat a verdict as a hint, not proof.")
    assert status == 0
    assert " ai by provenance: AI · Content Credentials: Imaginary Diffusion 3" in signed
    assert "(the model: " in signed and "P(AI)" in signed
    assert "by provenance" not in plain and "provenance" not in plain


def test_a_scan_resumed_on_an_older_csv_rewrites_it_under_todays_columns(
    capsys, tiny_artifact, photos, tmp_path
):
    out_file = tmp_path / "old.csv"
    old_fields = ["path", "score", "verdict", "threshold", "sha256", "model", "version", "error"]
    with out_file.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=old_fields)
        writer.writeheader()
        writer.writerow({"path": "a.jpg", "score": "0.25", "verdict": "real", "threshold": "0.5"})
    status, out, _ = run_cli(
        capsys, "scan", str(photos), "--model", str(tiny_artifact), "--out", str(out_file)
    )
    assert status == 0 and "scanned 1 of 2" in out
    with out_file.open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == ROW_FIELDS
        rows = {row["path"]: row for row in reader}
    assert rows["a.jpg"]["score"] == "0.25" and rows["a.jpg"]["verdict"] == "real"
    assert rows["nested/b.png"]["basis"] == "model"


def test_trust_anchor_mistakes_are_one_line_before_any_model_loads(capsys, photos, tmp_path, monkeypatch):
    from realcheck.model.scoring import inference

    monkeypatch.setattr(inference, "load_detector", lambda *a, **k: pytest.fail("model loaded"))
    image = str(photos / "a.jpg")
    status, _, err = run_cli(capsys, "check", image, "--c2pa-trust-anchors", str(tmp_path / "none.pem"))
    assert status == 2 and "cannot read C2PA trust anchors" in err
    status, _, err = run_cli(
        capsys,
        "check",
        image,
        "--server",
        "http://127.0.0.1:9",
        "--c2pa-trust-anchors",
        str(tmp_path / "x.pem"),
    )
    assert status == 2 and "start the server with it" in err


def test_the_three_ranges_are_the_same_in_check_scan_api_and_app(capsys, tiny_artifact, photos, tmp_path):
    import csv as csv_module
    import io
    import shutil

    from realcheck.model.artifacts.artifact import read_metadata, write_metadata
    from realcheck.server.app import create_app
    from realcheck.server.config import ServerConfig
    from realcheck.server.service import PredictionService
    from realcheck.streamlit_app import analysis

    model = shutil.copytree(tiny_artifact, tmp_path / "ranged")
    write_metadata(model, read_metadata(model) | {"threshold": 0.5, "uncertainty_band": [0.2, 0.8]})
    expected = {"real_below": 0.2, "ai_above": 0.8}
    image = photos / "a.jpg"

    status, out, _ = run_cli(capsys, "check", str(image), "--model", str(model))
    assert status == 0 and "Scores: AI above 0.800, unsure 0.200-0.800, no AI signs below 0.200." in out
    assert "threshold" not in out  # no threshold beside a verdict it may contradict
    status, out, _ = run_cli(capsys, "check", str(image), "--model", str(model), "--json")
    assert {key: json.loads(out)[0][key] for key in expected} == expected

    table = tmp_path / "scan.csv"
    run_cli(capsys, "scan", str(photos), "--model", str(model), "--out", str(table))
    for row in csv_module.DictReader(io.StringIO(table.read_text())):
        assert (float(row["real_below"]), float(row["ai_above"])) == (0.2, 0.8)

    service = PredictionService(ServerConfig(model_dir=model, backend="tensorflow")).start()
    try:
        client = create_app(
            ServerConfig(model_dir=model, backend="tensorflow"), service=service
        ).test_client()
        body = client.post("/v1/predict", data=image.read_bytes(), content_type="image/jpeg").get_json()
        upload = analysis.Upload("a.jpg", image.read_bytes())
        detector = service.detector  # the app's table rows, from the same scoring core
        rows = analysis.result_rows([upload], detector.predict([upload.data]), detector.metadata)
    finally:
        service.stop()
    assert {key: body["predictions"][0][key] for key in expected} == expected
    assert {key: body["decision"][key] for key in expected} == expected
    assert {key: rows[0][key] for key in expected} == expected


def test_check_errors_name_no_library_index_or_http_status(capsys, live_server, photos, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a picture")
    for where in (["--server", live_server.url], []):
        status, out, _ = run_cli(capsys, "check", str(bad), *where)
        line = out.splitlines()[0]
        assert status == 1 and line.startswith(
            f"{bad}: error: not an image, or a format RealCheck cannot read"
        )
        for jargon in ("Pillow", "HTTP", "image 0", "image 1", "400"):
            assert jargon not in line, line


def test_check_says_when_an_image_was_decided_by_the_ranges_of_its_condition(
    capsys, condition_rules_artifact, tmp_path
):
    small, large, compressed = tmp_path / "small.png", tmp_path / "large.png", tmp_path / "compressed.jpg"
    small.write_bytes(imagegen.image_bytes("real", 16))  # small: 21 px or less
    large.write_bytes(imagegen.image_bytes("real", 64))
    compressed.write_bytes(jpeg_bytes("real", 64, quality=30))  # heavily compressed: quality 50 or less
    paths = [str(small), str(large), str(compressed)]
    status, out, _ = run_cli(capsys, "check", *paths, "--model", str(condition_rules_artifact))
    assert status == 0
    lines = out.splitlines()
    assert "small.png: ai (P(AI) " in lines[0] and lines[0].endswith(", small image: its own ranges)")
    assert "large.png: no AI signs found" in lines[1] and "its own ranges" not in lines[1]
    assert "compressed.jpg: uncertain (P(AI) " in lines[2]
    assert lines[2].endswith(", heavily compressed JPEG: its own ranges)")
    assert "images of 21 px or less on their shorter side: AI from 0.000, no AI signs below" in out
    assert "JPEG files saved at quality 50 or less: AI above 1.000, unsure 0.000-1.000" in out
    rows = json.loads(run_cli(capsys, "check", *paths, "--model", str(condition_rules_artifact), "--json")[1])
    assert [(row["image_rule"], row["ai_above"]) for row in rows] == [
        ("small_image", 0.0),
        ("main", 1.0),
        ("compressed_image", 1.0),
    ]
