"""The Streamlit upload app: model resolution, the upload flow in AppTest (good, bad, too large files; the
CSV), `realcheck app`, and one run of the real page in Chromium."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import imagegen
import numpy as np
import processes
import provenancegen
import pytest
import streamlit
from PIL import Image
from serving import jpeg_bytes
from streamlit.testing.v1 import AppTest

from realcheck.cli import main as cli_main
from realcheck.model.scoring.inference import Prediction, load_detector
from realcheck.streamlit_app import analysis, launch
from realcheck.streamlit_app.app import VERDICTS
from realcheck.streamlit_app.launch import APP_PATH, streamlit_command

ROOT = Path(__file__).resolve().parents[1]
ARTEFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
RUN_TIMEOUT = 300  # an upper bound for a slow shared machine, not a performance assertion


def encoded(label: str, fmt: str, size: int = 48, seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(imagegen.make_array(label, size, seed)).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def app(tiny_artifact, monkeypatch) -> AppTest:
    monkeypatch.setenv(analysis.MODEL_ENV, str(tiny_artifact))
    monkeypatch.delenv(analysis.MAX_UPLOAD_ENV, raising=False)
    return AppTest.from_file(str(APP_PATH), default_timeout=RUN_TIMEOUT)


@pytest.fixture
def captured_downloads(monkeypatch) -> list[dict]:
    """What the app hands to st.download_button (AppTest does not keep download payloads)."""
    calls: list[dict] = []
    original = streamlit.download_button

    def spy(label, data, *args, **kwargs):
        calls.append({"label": label, "data": data, **kwargs})
        return original(label, data, *args, **kwargs)

    monkeypatch.setattr(streamlit, "download_button", spy)
    return calls


def run_with(app: AppTest, files: list[tuple[str, bytes, str]]) -> AppTest:
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    app.file_uploader[0].set_value(files)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def image_captions(app: AppTest) -> list[str]:
    return [img.caption for element in app.get("image") for img in element.proto.imgs]


def test_model_path_comes_from_the_option_then_the_environment_then_the_default(monkeypatch, tmp_path):
    env = {analysis.MODEL_ENV: "/from/env"}
    assert analysis.resolve_model_path(["--model", str(tmp_path)], env) == tmp_path
    assert analysis.resolve_model_path(["-x", "tests", "--model=/a"], env) == Path("/a")
    assert analysis.resolve_model_path(["tests/test_x.py", "-k", "model"], env) == Path("/from/env")
    bundled = analysis.resolve_model_path([], {})
    assert bundled is not None and (bundled / "metadata.json").is_file(), "the bundled model is the default"
    monkeypatch.setattr(analysis, "default_model_path", lambda: tmp_path / "bundled")
    assert analysis.resolve_model_path([], {}) == tmp_path / "bundled"


def test_upload_limit_from_the_environment():
    assert analysis.max_upload_bytes({}) == 50_000_000
    assert analysis.max_upload_bytes({analysis.MAX_UPLOAD_ENV: "0.5"}) == 500_000
    assert analysis.max_upload_bytes({analysis.MAX_UPLOAD_ENV: "lots"}) == 50_000_000


def test_csv_has_a_fixed_header_and_defuses_spreadsheet_formulas():
    metadata = {"name": "m", "version": "1", "threshold": 0.5, "uncertainty_band": [0.4, 0.6]}
    uploads = [analysis.Upload("=HYPERLINK(1).png", b"0123456789"), analysis.Upload("x.jpg", b"abc")]
    results = [Prediction("ab", score=0.75, verdict="ai"), Prediction("cd", error="not an image")]
    text = analysis.results_csv(analysis.result_rows(uploads, results, metadata))
    lines = text.splitlines()
    assert lines[0] == ",".join(analysis.CSV_COLUMNS)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["file"] == "'=HYPERLINK(1).png" and rows[0]["score"] == "0.75"
    assert rows[1] | {"sha256": ""} == {
        "file": "x.jpg",
        "verdict": "error",
        "score": "",
        "real_below": "",  # not scored: no rule applied
        "ai_above": "",
        "image_rule": "",
        "model": "m",
        "version": "1",
        "bytes": "3",
        "sha256": "",
        "basis": "",
        "model_verdict": "",
        "provenance": "",
        "c2pa_state": "",
        "error": "not an image",
    }


def test_without_a_model_named_the_page_uses_the_bundled_one(monkeypatch):
    from realcheck.model.artifacts.artifact import bundled_model_dir, read_metadata

    monkeypatch.delenv(analysis.MODEL_ENV, raising=False)
    app = AppTest.from_file(str(APP_PATH), default_timeout=RUN_TIMEOUT).run()
    assert not app.exception and not app.warning
    sidebar = " ".join(element.value for element in app.sidebar.markdown)
    assert read_metadata(bundled_model_dir())["version"] in sidebar
    assert app.file_uploader


def test_without_any_model_the_page_says_how_to_give_one(monkeypatch, tmp_path):
    from realcheck.model.artifacts import artifact

    monkeypatch.delenv(analysis.MODEL_ENV, raising=False)
    monkeypatch.setattr(artifact, "bundled_models_root", lambda: tmp_path / "no-bundled-model")
    app = AppTest.from_file(str(APP_PATH), default_timeout=RUN_TIMEOUT).run()
    assert not app.exception
    message = app.warning[0].value
    assert (
        "No model loaded" in message and "realcheck app --model" in message and analysis.MODEL_ENV in message
    )
    assert not app.file_uploader


def test_a_folder_that_is_not_a_model_gets_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv(analysis.MODEL_ENV, str(tmp_path))
    app = AppTest.from_file(str(APP_PATH), default_timeout=RUN_TIMEOUT).run()
    assert not app.exception
    assert "Cannot load the model" in app.error[0].value and "metadata.json" in app.error[0].value


def test_upload_shows_verdict_score_threshold_heatmap_and_the_model(app, tiny_artifact):
    data = encoded("ai", "PNG")
    run_with(app, [("picture.png", data, "image/png")])
    expected = load_detector(tiny_artifact).predict([data])[0]

    table = app.dataframe[0].value
    assert list(table["file"]) == ["picture.png"]
    # The same inference path as the server and evaluation: the same score for the same bytes.
    assert table["score"][0] == pytest.approx(expected.score, abs=1e-6)
    assert table["verdict"][0] == expected.verdict
    texts = [m.value for m in app.markdown]
    assert f"Verdict: **{VERDICTS[expected.verdict][0]}**" in texts
    assert "Real photograph" not in " ".join(texts)  # pixels alone never assert a photo real
    ranges = "AI above 0.550, unsure 0.450-0.550, no AI signs below 0.450"  # the tiny model's rule
    assert any(f"P(AI) = **{expected.score:.3f}** · {ranges}" in t for t in texts)
    assert any('class="realcheck-score"' in t for t in texts)  # the score bar
    assert any(c.startswith("Grad-CAM: where the model saw signs of") for c in image_captions(app))
    assert [e.value for e in app.expander[0].markdown][0].startswith("**What the heatmap shows.**")

    sidebar = " ".join(m.value for m in app.sidebar.markdown)
    assert "realcheck\\-tiny" in sidebar and "0.0.1-test" in sidebar
    assert "accuracy on images from sources it never saw was not measured" in app.info[0].value

    app.toggle[0].set_value(False).run()
    assert not any(c.startswith("Grad-CAM") for c in image_captions(app))
    assert image_captions(app) == ["uploaded image"]


@pytest.mark.parametrize(
    "upload, ranges, verdict, caption, rule",
    [
        (("thumb.png", encoded("real", "PNG", size=16), "image/png"), "· AI from 0.000, no AI signs below",
         "AI-generated", "A small image (images of 21 px or less", "small_image"),
        (("web.jpg", jpeg_bytes("real", 64, quality=30), "image/jpeg"), "· AI above 1.000, unsure 0.000-1.000",
         "Uncertain", "A heavily compressed JPEG (JPEG files saved at quality 50 or less)", "compressed_image"),
    ],
)  # fmt: skip
def test_an_image_shows_the_ranges_of_the_rule_for_its_condition(
    condition_rules_artifact, monkeypatch, upload, ranges, verdict, caption, rule
):
    monkeypatch.setenv(analysis.MODEL_ENV, str(condition_rules_artifact))
    app = AppTest.from_file(str(APP_PATH), default_timeout=RUN_TIMEOUT)
    run_with(app, [upload])
    texts = [m.value for m in app.markdown]
    assert any(ranges in t for t in texts)  # the ranges of the rule that decided it
    assert f"Verdict: **{verdict}**" in texts
    assert app.caption and any(caption in c.value for c in app.caption)
    assert app.dataframe[0].value["image_rule"][0] == rule
    sidebar = " ".join(m.value for m in app.sidebar.markdown)
    assert "images of 21 px or less on their shorter side" in sidebar and "quality 50 or less" in sidebar


def test_the_page_states_the_accuracy_its_metadata_measured(tmp_path, monkeypatch, tiny_artifact):
    import shutil

    from realcheck.model.artifacts.artifact import read_metadata, write_metadata

    model = shutil.copytree(tiny_artifact, tmp_path / "measured")
    rates = {"ai_caught": 0.42, "real_called_ai": 0.013, "uncertain": 0.3}
    measured = {"protocol": "cross-collection (test)", "clean": rates}
    write_metadata(
        model, read_metadata(model) | {"operating_point": {"rule": "per-source", "measured": measured}}
    )
    monkeypatch.setenv(analysis.MODEL_ENV, str(model))
    app = AppTest.from_file(str(APP_PATH), default_timeout=RUN_TIMEOUT).run()
    assert not app.exception
    text = app.info[0].value
    assert "collections it never saw" in text and "42% of AI images" in text and "1.3% of real photos" in text


def test_bad_files_get_a_message_and_the_rest_of_the_batch_still_works(
    app, tiny_artifact, monkeypatch, captured_downloads
):
    monkeypatch.setenv(analysis.MAX_UPLOAD_ENV, "0.1")  # 100 kB
    rng = np.random.default_rng(0)
    too_large = Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8))
    large_bytes = io.BytesIO()
    too_large.save(large_bytes, format="PNG")
    assert len(large_bytes.getvalue()) > 100_000
    good = {
        "a.jpg": encoded("ai", "JPEG", seed=1),
        "b.png": encoded("real", "PNG", seed=2),
        "c.webp": encoded("ai", "WEBP", seed=3),
        "d.gif": encoded("real", "GIF", seed=4),
        "e.bmp": encoded("ai", "BMP", seed=5),
        "f.tiff": encoded("real", "TIFF", seed=6),
    }
    bad = {
        "notes.jpg": b"these are my notes, not a picture",
        "broken.jpg": encoded("ai", "JPEG", size=64)[:300],
        "huge.png": large_bytes.getvalue(),
    }
    names = ["a.jpg", "notes.jpg", "b.png", "c.webp", "broken.jpg", "d.gif", "e.bmp", "huge.png", "f.tiff"]
    files = {**good, **bad}
    run_with(app, [(name, files[name], "application/octet-stream") for name in names])

    errors = [e.value for e in app.error]
    assert len(errors) == 3
    assert "not an image" in errors[0]
    assert "truncated" in errors[1]
    assert "too large" in errors[2] and "over the limit of 0.1 MB" in errors[2]
    assert [m.value for m in app.metric][-1] == "3"  # "Could not check"
    verdicts = [m.value for m in app.markdown if m.value.startswith("Verdict: ")]
    assert len(verdicts) == len(good)

    detector = load_detector(tiny_artifact)
    expected = detector.predict(list(good.values()))
    rows = list(csv.DictReader(io.StringIO(captured_downloads[-1]["data"])))
    assert captured_downloads[-1]["file_name"] == "realcheck-results.csv"
    assert [row["file"] for row in rows] == names
    scored = {row["file"]: row for row in rows if not row["error"]}
    assert sorted(scored) == sorted(good)
    for name, prediction in zip(good, expected):
        assert float(scored[name]["score"]) == pytest.approx(prediction.score, abs=1e-6)
        assert scored[name]["verdict"] == prediction.verdict
        assert (
            scored[name]["version"] == "0.0.1-test"
            and float(scored[name]["ai_above"]) == detector.rule.ranges()[1]
        )
    for row in rows:
        if row["file"] in bad:
            assert row["verdict"] == "error" and row["score"] == "" and row["error"]


def test_each_image_shows_its_provenance_and_what_decided(app, tiny_artifact, captured_downloads):
    signed = provenancegen.signed("trainedAlgorithmicMedia", agent="Imaginary *Diffusion* 3")
    capture = provenancegen.signed("digitalCapture", agent="Test Camera")
    plain = provenancegen.picture()
    names = ["signed.jpg", "capture.jpg", "plain.jpg"]
    run_with(app, [(name, data, "image/jpeg") for name, data in zip(names, (signed, capture, plain))])
    model = load_detector(tiny_artifact).predict([signed, capture, plain])
    texts = [m.value for m in app.markdown]
    assert "Verdict: **AI-generated**, decided by the file's provenance" in texts
    assert f"The model alone says **{VERDICTS[model[0].verdict][0]}**:" in texts
    # Plain sentences first; the generator's name comes from the file: shown as text, its Markdown escaped.
    assert (
        "The file says it was made by an AI tool \\(Imaginary \\*Diffusion\\* 3\\)\\. The signature is intact, "
        "but the signer is not on your trust list\\." in texts
    )
    assert any("The file says a camera took it \\(Test Camera\\)" in t for t in texts)
    # The codes under technical details.
    assert any("- AI · Content Credentials: Imaginary \\*Diffusion\\* 3" in t for t in texts)
    assert any("C2PA action c2pa\\.created: trainedAlgorithmicMedia" in t for t in texts)
    assert "Technical details" in [e.label for e in app.expander]
    assert sum("Signed capture" in t for t in texts) == 1  # the badge, for the capture only
    assert any(c.value.startswith("The file says nothing about where it came from") for c in app.caption)

    rows = {row["file"]: row for row in csv.DictReader(io.StringIO(captured_downloads[-1]["data"]))}
    assert (rows["signed.jpg"]["verdict"], rows["signed.jpg"]["basis"]) == ("ai", "provenance")
    assert (
        rows["signed.jpg"]["model_verdict"] == model[0].verdict
        and rows["signed.jpg"]["c2pa_state"] == "valid"
    )
    assert rows["capture.jpg"]["basis"] == "model" and rows["capture.jpg"]["verdict"] == model[1].verdict
    assert rows["plain.jpg"]["provenance"] == "no provenance metadata"


def test_crop_models_and_a_full_model_card_show_in_the_page(tiny_artifact, tmp_path, monkeypatch):
    # A copy of the tiny artifact that crops at native resolution and carries training data and metrics.
    folder = tmp_path / "crop-model"
    folder.mkdir()
    (folder / "model.keras").symlink_to(tiny_artifact / "model.keras")
    metadata = json.loads((tiny_artifact / "metadata.json").read_text())
    metadata |= {
        "input_mode": "crop",
        "training_data": {
            "layout": "folders",
            "n": 100,
            "real": 50,
            "ai": 50,
            "splits": {"test": {"n": 20, "real": 10, "ai": 10}},
            "by_generator": {"sd": {"real": 50, "ai": 50}},
        },
        "metrics": {
            "test": {"accuracy": 0.9, "balanced_accuracy": 0.9, "f1": 0.88, "roc_auc": 0.95, "n": 20}
        },
    }
    (folder / "metadata.json").write_text(json.dumps(metadata))
    (folder / "README.md").write_text("# card\n\n![roc](plots/roc.png)\nModel card text\n")
    monkeypatch.setenv(analysis.MODEL_ENV, str(folder))
    app = run_with(
        AppTest.from_file(str(APP_PATH), default_timeout=RUN_TIMEOUT),
        [("wide.png", encoded("real", "PNG", size=80), "image/png")],
    )
    sidebar = " ".join(m.value for m in app.sidebar.markdown)
    assert "100 images: 50 real, 50 ai" in sidebar and "source `sd`" in sidebar
    assert "| accuracy | 0.900 |" in sidebar and "| images | 20 |" in sidebar
    assert "Model card text" in sidebar and "plots/roc.png" not in sidebar
    assert any("centre crop" in caption for caption in image_captions(app))


def test_realcheck_app_runs_streamlit_on_the_app(tiny_artifact, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(launch, "run_streamlit", lambda command, open_url=None: calls.append(command) or 0)
    assert cli_main(["-q", "app", "--model", str(tiny_artifact), "--port", "8765", "--no-browser"]) == 0
    command = calls[0]
    assert command[:5] == [sys.executable, "-m", "streamlit", "run", str(APP_PATH)]
    assert command[command.index("--server.port") + 1] == "8765"
    assert command[command.index("--server.address") + 1] == "127.0.0.1"
    assert command[command.index("--server.headless") + 1] == "true"
    assert command[command.index("--browser.gatherUsageStats") + 1] == "false"
    assert command[command.index("--client.toolbarMode") + 1] == "minimal"
    assert command[command.index("--server.maxUploadSize") + 1] == "50"  # the app's limit, not 200 MB
    assert command[-3:] == ["--", "--model", str(tiny_artifact.resolve())]

    assert cli_main(["app", "--model", str(tiny_artifact.parent / "missing")]) == 2
    assert "model folder not found" in capsys.readouterr().err
    assert len(calls) == 1


def test_run_streamlit_returns_the_server_status_and_passes_sigterm_on(tmp_path):
    assert launch.run_streamlit([sys.executable, "-c", "raise SystemExit(3)"]) == 3
    pid_file = tmp_path / "server.pid"
    server = f"import os, pathlib, time; pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid())); time.sleep(300)"
    launcher = f"import sys; from realcheck.streamlit_app.launch import run_streamlit; sys.exit(run_streamlit([sys.executable, '-c', {server!r}]))"
    parent = subprocess.Popen([sys.executable, "-c", launcher])
    try:
        while not pid_file.exists() and parent.poll() is None:
            time.sleep(0.1)
        parent.terminate()
        status = parent.wait(timeout=120)  # a bound for a slow machine; without the fix it waits 300 s
    finally:
        if parent.poll() is None:
            parent.kill()
    assert status == 128 + 15
    with pytest.raises(ProcessLookupError):  # the server went with it: no orphan holding the port
        os.kill(int(pid_file.read_text()), 0)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(url: str, process: subprocess.Popen, log: Path, limit_s: float = 180) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"streamlit exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"streamlit did not become healthy:\n{log.read_text(errors='replace')}")


@pytest.fixture(scope="module")
def browser_artifact(tmp_path_factory) -> Path:
    """Like tiny_artifact but at 128 px, so the heatmap has a 4x4 grid worth looking at."""
    from realcheck.model.artifacts.artifact import save_untrained_artifact

    out = tmp_path_factory.mktemp("browser") / "lite0-128"
    return save_untrained_artifact(out, "efficientnet_lite0", 128, "realcheck-browser-test", "0.0.2-test")


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium missing: install it with `apt-get install -y chromium`"
)
def test_the_page_in_chromium_shows_verdict_and_heatmap(browser_artifact, browser, tmp_path):
    picture = tmp_path / "upload.jpg"
    Image.fromarray(imagegen.make_array("ai", 256, seed=7)).save(picture, quality=92)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "streamlit.log"
    command = streamlit_command(browser_artifact, port, "127.0.0.1")
    env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "2", "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none"}
    with open(log, "wb") as output:
        process = processes.spawn(command, cwd=tmp_path, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_until_healthy(url, process, log)
        page = browser.new_page(viewport={"width": 1400, "height": 1400}, accept_downloads=True)
        try:
            page.set_default_timeout(RUN_TIMEOUT * 1000)
            page.goto(url)
            page.locator('input[type="file"]').set_input_files(str(picture))
            page.get_by_text("Verdict:").wait_for()
            verdict = page.get_by_text("Verdict:").inner_text()
            assert verdict.split(":")[1].strip() in {label for label, _ in VERDICTS.values()}
            page.get_by_text("Grad-CAM: where the model saw signs of").wait_for()
            # Both pictures (upload and heatmap) actually loaded in the page, not just announced.
            page.wait_for_function(
                """() => [...document.querySelectorAll('[data-testid="stImage"] img')]
                         .filter(img => img.complete && img.naturalWidth > 0).length >= 2"""
            )
            assert page.get_by_text("realcheck-browser-test").count() >= 1
            ARTEFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTEFACTS / "streamlit_app.png"), full_page=True)
            with page.expect_download() as download:
                page.get_by_text("Download results as CSV").click()
            rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
            assert [row["file"] for row in rows] == ["upload.jpg"]
            assert VERDICTS[rows[0]["verdict"]][0] in verdict and 0.0 <= float(rows[0]["score"]) <= 1.0
        finally:
            page.close()
    finally:
        processes.stop(process)


def test_the_heatmap_grid_is_described_even_for_a_model_of_any_input_size():
    from realcheck.streamlit_app.app import grid_words

    assert grid_words(256) == "8x8 cells for a 256 px input"
    assert grid_words(224) == "7x7 cells for a 224 px input"
