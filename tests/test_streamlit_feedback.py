"""streamlit_app/feedback.py: the report buttons under each uploaded image, in AppTest, writing to a real
SQLite file."""

from __future__ import annotations

import hashlib

import imagegen
import pytest
from streamlit.testing.v1 import AppTest

from realcheck.model.scoring.inference import load_detector
from realcheck.server.feedback.store import FEEDBACK_DB_ENV, FeedbackStore
from realcheck.streamlit_app import analysis
from realcheck.streamlit_app.feedback import report_choices
from realcheck.streamlit_app.launch import APP_PATH, streamlit_command


@pytest.fixture
def database(tmp_path, monkeypatch) -> str:
    path = str(tmp_path / "app-feedback.sqlite3")
    monkeypatch.setenv(FEEDBACK_DB_ENV, path)
    return path


def test_each_image_can_be_reported_and_the_image_goes_only_when_ticked(tiny_artifact, database, monkeypatch):
    monkeypatch.setenv(analysis.MODEL_ENV, str(tiny_artifact))
    app = AppTest.from_file(str(APP_PATH), default_timeout=300)
    app.run()
    app.toggle[0].set_value(False)  # no Grad-CAM: not what this test is about
    shared, kept = (
        imagegen.image_bytes("real", 48, seed=1),
        imagegen.image_bytes("ai", 48, seed=2, fmt="JPEG"),
    )
    app.file_uploader[0].set_value([("mine.png", shared, "image/png"), ("other.jpg", kept, "image/jpeg")])
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    first, second = (f"feedback-{hashlib.sha256(data).hexdigest()}" for data in (shared, kept))
    assert app.checkbox(key=f"{first}-share").value is False, "sharing is off until the user ticks it"

    # Each image offers what would correct its verdict; the first offered label is reported.
    verdicts = [p.verdict for p in load_detector(tiny_artifact).predict([shared, kept])]
    labels = [next(iter(report_choices(verdict))) for verdict in verdicts]
    for key, verdict in zip((first, second), verdicts):
        offered = {button.key for button in app.button if button.key and button.key.startswith(key)}
        assert offered == {f"{key}-{label}" for label in report_choices(verdict)}

    app.checkbox(key=f"{first}-share").check()
    app.button(key=f"{first}-{labels[0]}").click()
    app.run()
    app.text_input(key=f"{second}-note").input("looks wrong to me")
    app.button(key=f"{second}-{labels[1]}").click()
    app.run()
    assert not app.exception, [e.value for e in app.exception]

    reports = FeedbackStore(database).reports()
    assert [(r.label, r.image_shared, r.client, r.note) for r in reports] == [
        (labels[0], True, "app", None),
        (labels[1], False, "app", "looks wrong to me"),
    ]
    assert reports[0].model_name == "realcheck-tiny" and reports[0].verdict in ("ai", "real", "uncertain")
    assert FeedbackStore(database).image(reports[0].sha256).data == shared
    assert FeedbackStore(database).image(reports[1].sha256) is None
    # The user's answers stand on the page, marked as theirs.
    text = " ".join(element.value for element in app.caption)
    words = {"real": "a real photograph", "ai": "AI-generated"}
    assert all(f"You said this image is {words[label]}" in text for label in labels)


def test_only_the_opposite_of_a_firm_verdict_is_offered():
    assert list(report_choices("ai")) == ["real"] and list(report_choices("real")) == ["ai"]
    assert set(report_choices("uncertain")) == {"real", "ai"}


def test_realcheck_app_passes_the_feedback_database_on():
    command = streamlit_command(None, feedback_db="postgresql://u@db/fb")
    assert command[-3:] == ["--", "--feedback-db", "postgresql://u@db/fb"]
    assert analysis.parse_app_args(["--feedback-db", "x.sqlite3"]).feedback_db == "x.sqlite3"
