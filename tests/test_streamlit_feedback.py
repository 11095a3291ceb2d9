"""streamlit_app/feedback.py: "Wrong? It's real" / "Wrong? It's AI" under each uploaded image, in AppTest,
writing to a real SQLite file."""

from __future__ import annotations

import hashlib

import imagegen
import pytest
from streamlit.testing.v1 import AppTest

from realcheck.server.feedback_store import FEEDBACK_DB_ENV, FeedbackStore
from realcheck.streamlit_app import analysis
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

    app.checkbox(key=f"{first}-share").check()
    app.button(key=f"{first}-real").click()
    app.run()
    app.text_input(key=f"{second}-note").input("looks generated to me")
    app.button(key=f"{second}-ai").click()
    app.run()
    assert not app.exception, [e.value for e in app.exception]

    reports = FeedbackStore(database).reports()
    assert [(r.label, r.image_shared, r.client, r.note) for r in reports] == [
        ("real", True, "app", None),
        ("ai", False, "app", "looks generated to me"),
    ]
    assert reports[0].model_name == "realcheck-tiny" and reports[0].verdict in ("ai", "real", "uncertain")
    assert FeedbackStore(database).image(reports[0].sha256).data == shared
    assert FeedbackStore(database).image(reports[1].sha256) is None
    # The user's answers stand on the page, marked as theirs.
    text = " ".join(element.value for element in app.caption)
    assert (
        "You said this image is a real photograph" in text and "You said this image is AI-generated" in text
    )


def test_realcheck_app_passes_the_feedback_database_on():
    command = streamlit_command(None, feedback_db="postgresql://u@db/fb")
    assert command[-3:] == ["--", "--feedback-db", "postgresql://u@db/fb"]
    assert analysis.parse_app_args(["--feedback-db", "x.sqlite3"]).feedback_db == "x.sqlite3"
