"""server/feedback/store.py and server/feedback/export.py on real databases: a SQLite file and PostgreSQL."""

from __future__ import annotations

import csv
import hashlib
import sqlite3
import threading
from pathlib import Path

import imagegen
import pytest
import sqlalchemy as sa

from realcheck.model.data.datasets import discover_folders
from realcheck.model.errors import RealCheckError
from realcheck.server.feedback.export import export_feedback
from realcheck.server.feedback.store import (
    FeedbackReport,
    FeedbackStore,
    FeedbackUnavailable,
    InvalidFeedback,
    database_url,
    default_feedback_path,
    metadata,
)


def report(data: bytes | None = None, label: str = "real", seed: int = 0, **changes) -> FeedbackReport:
    """A valid report about `data` (or about an image never shared, named by `seed`)."""
    sha256 = hashlib.sha256(data if data is not None else f"image {seed}".encode()).hexdigest()
    values = dict(sha256=sha256, label=label, model_name="realcheck-tiny", model_version="1", score=0.8)
    values |= {"verdict": "ai", "image": data} | changes
    return FeedbackReport(**values)


@pytest.fixture
def store(feedback_db):
    opened = FeedbackStore(feedback_db)
    yield opened
    opened.close()


def test_reports_round_trip_and_each_shared_image_is_kept_once(store):
    png = imagegen.image_bytes("ai", 40, seed=1)
    first = store.add(report(png, "ai", note="  the hands are wrong  ", client="extension").checked())
    second = store.add(report(png, "ai").checked())
    third = store.add(report(None, "real", seed=7, verdict=None, score=0).checked())
    assert [first.id, second.id, third.id] == sorted({first.id, second.id, third.id})
    listed = store.reports()
    assert [r.to_dict() for r in listed] == [first.to_dict(), second.to_dict(), third.to_dict()]
    assert listed[0].note == "the hands are wrong" and listed[0].client == "extension"
    assert listed[0].image_shared and not listed[2].image_shared and listed[2].verdict is None
    assert listed[0].to_dict()["created_at"].endswith("Z")
    assert store.count() == 3 and store.reports(after=first.id, limit=1) == [listed[1]]
    image = store.image(first.sha256)
    assert (image.data, image.format, image.width, image.height) == (png, "PNG", 40, 40)
    assert store.shared_hashes() == {first.sha256}
    assert store.image(third.sha256) is None


def test_sixteen_writers_at_once_all_land(store):
    images = [imagegen.image_bytes("real", 32, seed=i) for i in range(4)]
    errors = []
    start = threading.Barrier(16)

    def write(worker: int) -> None:
        try:
            start.wait()
            for round_ in range(5):
                # Four images shared by everyone: concurrent inserts of the same image must not collide.
                store.add(report(images[(worker + round_) % 4], note=f"{worker}-{round_}").checked())
        except Exception as error:  # collected: the assertion below names it
            errors.append(repr(error))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(r.note for r in store.reports()) == sorted(f"{w}-{r}" for w in range(16) for r in range(5))
    assert len(store.shared_hashes()) == 4


def test_the_migrations_build_exactly_the_schema(store):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with store.engine().connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
        assert MigrationContext.configure(connection).get_current_revision() == "0001"
    # Opening again (a restarted server) keeps what is there.
    store.add(report().checked())
    store.close()
    assert FeedbackStore(store.url.render_as_string(hide_password=False)).count() == 1


def test_the_database_refuses_a_label_outside_the_contract(store):
    with store.engine().begin() as connection, pytest.raises(sa.exc.IntegrityError):
        connection.execute(
            sa.text(
                "INSERT INTO feedback_reports (created_at, sha256, label, model_name, model_version, score, "
                "image_shared) VALUES (CURRENT_TIMESTAMP, :sha, 'fake', 'm', 'v', 0.5, false)"
            ),
            {"sha": "0" * 64},
        )


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"sha256": "abc"}, "invalid_sha256"),
        ({"label": "fake"}, "invalid_label"),
        ({"label": "uncertain"}, "invalid_label"),
        ({"model_name": ""}, "invalid_model"),
        ({"model_version": "v" * 101}, "invalid_model"),
        ({"score": 1.5}, "invalid_score"),
        ({"score": float("nan")}, "invalid_score"),
        ({"score": True}, "invalid_score"),
        ({"score": "0.5"}, "invalid_score"),
        ({"verdict": "maybe"}, "invalid_verdict"),
        ({"note": "x" * 1001}, "note_too_long"),
        ({"note": 5}, "invalid_note"),
        ({"client": "me@example.org"}, "invalid_client"),
    ],
)
def test_bad_fields_are_refused_with_a_reason(changes, code):
    with pytest.raises(InvalidFeedback) as caught:
        report(**changes).checked()
    assert caught.value.code == code and caught.value.status == 400


def test_shared_bytes_must_be_the_image_named_and_pass_the_decode_checks():
    png = imagegen.image_bytes("ai", 40, seed=3)
    mismatched = report(png, sha256=hashlib.sha256(b"other").hexdigest())
    with pytest.raises(InvalidFeedback, match="do not hash"):
        mismatched.checked()
    not_an_image = b"GIF89a not really"
    with pytest.raises(InvalidFeedback) as caught:
        report(not_an_image).checked()
    assert caught.value.code == "invalid_image"
    with pytest.raises(InvalidFeedback) as caught:
        report(png).checked(max_image_bytes=len(png) - 1)
    assert (caught.value.code, caught.value.status) == ("image_too_large", 413)


def test_database_locations(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("REALCHECK_FEEDBACK_DB", raising=False)
    assert default_feedback_path() == tmp_path / "data" / "realcheck" / "feedback.sqlite3"
    assert database_url().database == str(default_feedback_path())
    monkeypatch.setenv("REALCHECK_FEEDBACK_DB", str(tmp_path / "env.sqlite3"))
    assert database_url().database == str(tmp_path / "env.sqlite3")
    assert database_url("postgresql://u:secret@db.example/fb").drivername == "postgresql+psycopg"
    assert database_url("postgres://u@db/fb").drivername == "postgresql+psycopg"
    assert (
        FeedbackStore("postgresql://u:secret@db.example/fb").location
        == "postgresql+psycopg://u:***@db.example/fb"
    )
    for bad in ("mysql://u:secret@db/fb", "sqlite://", "sqlite:///:memory:"):
        with pytest.raises(RealCheckError) as caught:
            database_url(bad)
        assert "secret" not in str(caught.value)
    # Nothing is created until the first use; then the folder and the file are.
    store = FeedbackStore(tmp_path / "new" / "deeper" / "fb.sqlite3")
    assert not (tmp_path / "new").exists()
    assert store.count() == 0 and (tmp_path / "new" / "deeper" / "fb.sqlite3").is_file()
    store.close()


def test_an_unreachable_database_is_reported_not_raised_raw(tmp_path):
    from serving import free_port

    store = FeedbackStore(f"postgresql://nobody@127.0.0.1:{free_port()}/none?connect_timeout=2")
    with pytest.raises(FeedbackUnavailable, match="cannot open"):
        store.add(report().checked())


def test_export_is_a_training_layout_with_every_report_in_its_csv(store, tmp_path):
    real = imagegen.image_bytes("real", 40, seed=10)
    fake = imagegen.image_bytes("ai", 40, seed=11, fmt="JPEG")
    disputed = imagegen.image_bytes("ai", 40, seed=12)
    store.add(report(real, "real").checked())
    store.add(report(None, "real", sha256=hashlib.sha256(real).hexdigest()).checked())
    store.add(report(fake, "ai", note='says "AI", with, commas').checked())
    store.add(report(fake, "real").checked())
    store.add(report(None, "ai", sha256=hashlib.sha256(fake).hexdigest()).checked())  # 2 ai : 1 real
    store.add(report(disputed, "ai").checked())
    store.add(report(disputed, "real").checked())
    store.add(report(None, "real", seed=99).checked())  # never shared: a CSV row only
    out = tmp_path / "export"
    summary = export_feedback(store, out)
    assert (summary.reports, summary.real_images, summary.fake_images, summary.disputed_images) == (
        8,
        1,
        1,
        1,
    )
    real_sha, fake_sha = hashlib.sha256(real).hexdigest(), hashlib.sha256(fake).hexdigest()
    assert (out / "real" / f"{real_sha}.png").read_bytes() == real
    assert (out / "fake" / f"{fake_sha}.jpg").read_bytes() == fake
    assert sorted(p.name for p in (out / "real").iterdir()) == [f"{real_sha}.png"]
    with (out / "manifest.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 8 and rows[2]["note"] == 'says "AI", with, commas'
    assert {row["relpath"] for row in rows} == {f"real/{real_sha}.png", f"fake/{fake_sha}.jpg", ""}
    # `realcheck train --data` reads it as is: the right classes, source "feedback" from the manifest.
    found = discover_folders(out)
    assert sorted((Path(s.path).parent.name, s.label, s.source) for s in found.samples) == [
        ("fake", 1, "feedback"),
        ("real", 0, "feedback"),
    ]
    with pytest.raises(RealCheckError, match="not empty"):
        export_feedback(store, out)


def test_a_sqlite_file_keeps_a_rollback_journal_with_full_sync_even_when_it_was_wal(tmp_path):
    path = tmp_path / "fb.sqlite3"
    with sqlite3.connect(path) as connection:  # as an earlier RealCheck left it
        connection.execute("PRAGMA journal_mode=WAL")
    store = FeedbackStore(path)
    store.add(report().checked())
    with store.engine().connect() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    store.close()
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert not path.with_name("fb.sqlite3-shm").exists()
