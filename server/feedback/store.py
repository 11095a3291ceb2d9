"""Where "this verdict is wrong" reports are kept: one schema on SQLite (the default) or PostgreSQL.

The schema is SQLAlchemy Core (`metadata` below) and it reaches a database only through the Alembic
migrations shipped in `server/feedback/migrations/`, run on first use. A report is committed (and, on SQLite,
fsynced: a rollback journal with synchronous=FULL) before `FeedbackStore.add` returns, so a report the API acknowledged
survives the server being killed.

What is stored: the image's SHA-256, the label the user gives, the model name, version, score and verdict
they saw, an optional note, an optional short client name ("extension", "app") and, only when the user
agreed to share them, the image bytes (once per image, however many reports name it). No page or image
URL, no cookies, no address, no user identity: the API refuses fields it does not know.

To add a migration: change `metadata`, then write the next file in `migrations/versions/`
(`alembic revision --autogenerate` works with a config whose script_location points there); the tests
check that the migrations build exactly `metadata`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa
from PIL import Image
from pydantic import ValidationError
from sqlalchemy.engine import URL, Engine, make_url

from realcheck.model.data.imaging import DEFAULT_MAX_PIXELS, check_aspect_ratio, open_rgb
from realcheck.model.errors import ImageDecodeError, RealCheckError
from realcheck.server.schemas import (
    MAX_MODEL_NAME_CHARS,
    MAX_MODEL_VERSION_CHARS,
    FeedbackFields,
    report_error,
)

log = logging.getLogger("realcheck")

FEEDBACK_DB_ENV = "REALCHECK_FEEDBACK_DB"
DEFAULT_MAX_IMAGE_BYTES = 25 * 1024 * 1024
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
MAX_REPORT_ID = 2**31 - 1  # the id column is INTEGER: 32 bits on PostgreSQL
SQLITE_BUSY_S = 2  # the longest a report waits for the SQLite file before it is a 503
# The file suffix an exported image gets, by the format its bytes decoded as.
SUFFIXES = {
    "JPEG": "jpg",
    "MPO": "jpg",
    "PNG": "png",
    "WEBP": "webp",
    "GIF": "gif",
    "BMP": "bmp",
    "TIFF": "tif",
}

metadata = sa.MetaData()

reports_table = sa.Table(
    "feedback_reports",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("label", sa.String(4), nullable=False),
    sa.Column("model_name", sa.String(MAX_MODEL_NAME_CHARS), nullable=False),
    sa.Column("model_version", sa.String(MAX_MODEL_VERSION_CHARS), nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("verdict", sa.String(9), nullable=True),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("client", sa.String(40), nullable=True),
    sa.Column("image_shared", sa.Boolean, nullable=False),
    sa.CheckConstraint("label IN ('ai', 'real')", name="ck_feedback_reports_label"),
)

images_table = sa.Table(
    "feedback_images",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("format", sa.String(8), nullable=False),
    sa.Column("width", sa.Integer, nullable=False),
    sa.Column("height", sa.Integer, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)


class InvalidFeedback(RealCheckError):
    """A report that cannot be stored as given; `status` and `code` are what the API answers."""

    def __init__(self, message: str, code: str = "invalid_feedback", status: int = 400):
        super().__init__(message)
        self.code = code
        self.status = status


class FeedbackUnavailable(RealCheckError):
    """The database cannot be reached or written right now (nothing was stored)."""


@dataclass(frozen=True)
class FeedbackReport:
    """What a user says about one image: the right label, what the model said, maybe the image itself."""

    sha256: str
    label: str
    model_name: str
    model_version: str
    score: float
    verdict: str | None = None
    note: str | None = None
    client: str | None = None
    image: bytes | None = None

    def checked(
        self, max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS
    ) -> CheckedReport:
        """This report validated (raises InvalidFeedback): its fields by their declaration
        (`realcheck.server.schemas.FeedbackFields`, the one the API documents), then what a declaration cannot
        say: text either database can store, and shared image bytes that pass the decode checks of predict
        (model/data/imaging.py) and hash to `sha256`."""
        try:
            fields = FeedbackFields.model_validate(
                {
                    "sha256": self.sha256,
                    "label": self.label,
                    "model": {"name": self.model_name, "version": self.model_version},
                    "score": self.score,
                    "verdict": self.verdict,
                    "note": self.note,
                    "client": self.client,
                }
            )
        except ValidationError as error:
            raise InvalidFeedback(*report_error(error)) from None
        sha256 = fields.sha256.lower()
        name, version = fields.model.name, fields.model.version
        _storable(name, "model name", "invalid_model")
        _storable(version, "model version", "invalid_model")
        note = fields.note or None
        if note is not None:
            _storable(note, "note", "invalid_note")
        image = None
        if self.image is not None:
            image = _checked_image(self.image, sha256, max_image_bytes, max_pixels)
        return CheckedReport(
            sha256=sha256,
            label=fields.label,
            model_name=name,
            model_version=version,
            score=fields.score,
            verdict=fields.verdict,
            note=note,
            client=fields.client,
            image=image,
        )


@dataclass(frozen=True)
class SharedImage:
    """Image bytes a user agreed to share, decoded once to prove they are an image."""

    data: bytes
    format: str
    width: int
    height: int


@dataclass(frozen=True)
class CheckedReport:
    """A validated report, ready to store (made by `FeedbackReport.checked`)."""

    sha256: str
    label: str
    model_name: str
    model_version: str
    score: float
    verdict: str | None
    note: str | None
    client: str | None
    image: SharedImage | None


@dataclass(frozen=True)
class StoredReport:
    """A report as kept: its id and time, and whether its image bytes are stored."""

    id: int
    created_at: datetime
    sha256: str
    label: str
    model_name: str
    model_version: str
    score: float
    verdict: str | None
    note: str | None
    client: str | None
    image_shared: bool

    def to_dict(self) -> dict:
        """The JSON form the API answers with."""
        return {
            "id": self.id,
            "created_at": self.created_at.isoformat().replace("+00:00", "Z"),
            "sha256": self.sha256,
            "label": self.label,
            "model": {"name": self.model_name, "version": self.model_version},
            "score": self.score,
            "verdict": self.verdict,
            "note": self.note,
            "client": self.client,
            "image_shared": self.image_shared,
        }


def _storable(text: str, what: str, code: str) -> None:
    """Refuse what one of the databases cannot store, so both answer alike: a NUL character (PostgreSQL's text
    refuses it) and a lone surrogate (not UTF-8 at all)."""
    if "\x00" in text:
        raise InvalidFeedback(f"{what} contains a NUL character", code)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidFeedback(f"{what} is not valid Unicode text (a lone surrogate)", code) from None


def _checked_image(data: bytes, sha256: str, max_bytes: int, max_pixels: int) -> SharedImage:
    if len(data) > max_bytes:
        raise InvalidFeedback(
            f"image is {len(data):,} bytes, over the per-image limit of {max_bytes:,}", "image_too_large", 413
        )
    if hashlib.sha256(data).hexdigest() != sha256:
        raise InvalidFeedback("the image bytes do not hash to the given sha256", "sha256_mismatch")
    try:
        image = open_rgb(data, max_pixels)
        check_aspect_ratio(image)
    except ImageDecodeError as error:
        raise InvalidFeedback(f"image: {error}", "invalid_image") from None
    # open_rgb's RGB copy has no `format`: read it from the header again (cheap, no decoding).
    with Image.open(io.BytesIO(data)) as header:
        fmt = header.format
    return SharedImage(data=bytes(data), format=fmt, width=image.width, height=image.height)


# ------------------------------------------------------------------------------------------- where it lives


def default_feedback_path() -> Path:
    """The SQLite file used when none is named: $XDG_DATA_HOME/realcheck (else ~/.local/share/realcheck)."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "realcheck" / "feedback.sqlite3"


def database_url(location: str | Path | None = None) -> URL:
    """The SQLAlchemy URL for `location`: a file path (SQLite), `sqlite:///FILE` or `postgresql://...`.

    None means $REALCHECK_FEEDBACK_DB, else the default SQLite file. PostgreSQL always goes through psycopg 3.
    """
    if location is None or not str(location).strip():
        location = os.environ.get(FEEDBACK_DB_ENV, "").strip() or default_feedback_path()
    text = str(location).strip()
    if "://" not in text:
        return URL.create("sqlite", database=str(Path(text).expanduser().resolve()))
    try:
        url = make_url(text)
    except sa.exc.ArgumentError:
        raise RealCheckError(f"not a database URL: {_hide_password(text)}") from None
    backend = url.drivername.split("+", 1)[0]
    if backend in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            raise RealCheckError("the feedback database must be a file (sqlite:///path/to/feedback.sqlite3)")
        return url.set(drivername="sqlite")
    raise RealCheckError(
        f"unsupported feedback database {_hide_password(text)}: use a file path, sqlite:///FILE or postgresql://..."
    )


def _hide_password(text: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", text)


def describe_location(url: URL) -> str:
    """The database for logs and messages, without its password."""
    return url.render_as_string(hide_password=True)


# ----------------------------------------------------------------------------------------------- the store


class FeedbackStore:
    """Reports in one database. Nothing happens until first use: then the database (and for SQLite its
    folder and file) is created and migrated to the newest schema. Safe to share between threads."""

    def __init__(self, location: str | Path | None = None):
        self.url = database_url(location)
        self._engine: Engine | None = None
        self._lock = threading.Lock()
        # SQLite with a rollback journal: a reader blocks a writer's commit and SQLite's busy handler sleeps
        # in coarse steps, so this process's threads take turns here instead (16 clients at once queue, they
        # do not fail). PostgreSQL has row locks and needs none.
        self._turns = threading.Lock() if self.url.get_backend_name() == "sqlite" else None

    @property
    def location(self) -> str:
        return describe_location(self.url)

    def engine(self) -> Engine:
        """The database's engine, created and migrated on the first call."""
        with self._lock:
            if self._engine is None:
                self._engine = self._open()
            return self._engine

    def _open(self) -> Engine:
        if self.url.get_backend_name() == "sqlite":
            try:
                Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise FeedbackUnavailable(
                    f"cannot create the folder of the feedback database {self.location}: {error}"
                ) from None
            # A writer waits up to SQLITE_BUSY_S for another process (a backup, a sqlite3 shell); held longer,
            # the lock is a 503 to retry, and holds no worker thread for long.
            engine = sa.create_engine(self.url, connect_args={"timeout": SQLITE_BUSY_S})
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = sa.create_engine(self.url, pool_pre_ping=True)
        try:
            migrate(engine)
        except sa.exc.DBAPIError as error:  # down, refused, or a file that is not a database
            engine.dispose()
            raise FeedbackUnavailable(
                f"cannot open the feedback database {self.location}: {error.orig}"
            ) from None
        log.info("feedback database: %s", self.location)
        return engine

    def close(self) -> None:
        """Close the database connections (a later call opens them again)."""
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    def add(self, report: CheckedReport) -> StoredReport:
        """Store one report (and its image, if shared and not stored yet); committed when this returns."""
        created = datetime.now(timezone.utc)
        values = {
            "created_at": created,
            "sha256": report.sha256,
            "label": report.label,
            "model_name": report.model_name,
            "model_version": report.model_version,
            "score": report.score,
            "verdict": report.verdict,
            "note": report.note,
            "client": report.client,
            "image_shared": report.image is not None,
        }
        with self._connection(write=True) as connection:
            if report.image is not None:
                image = report.image
                connection.execute(
                    _insert_new(connection, images_table).values(
                        sha256=report.sha256,
                        created_at=created,
                        format=image.format,
                        width=image.width,
                        height=image.height,
                        data=image.data,
                    )
                )
            row_id = connection.execute(reports_table.insert().values(**values)).inserted_primary_key[0]
        return StoredReport(id=int(row_id), **values)

    def reports(self, after: int = 0, limit: int | None = None) -> list[StoredReport]:
        """Reports with an id above `after`, oldest first, at most `limit` of them."""
        if after >= MAX_REPORT_ID:
            return []  # no id is that large, on either database (PostgreSQL's INTEGER ends there)
        query = sa.select(reports_table).where(reports_table.c.id > after).order_by(reports_table.c.id)
        if limit is not None:
            query = query.limit(limit)
        with self._connection(write=False) as connection:
            return [_stored(row) for row in connection.execute(query)]

    def count(self) -> int:
        """How many reports are stored."""
        with self._connection(write=False) as connection:
            return connection.execute(sa.select(sa.func.count()).select_from(reports_table)).scalar_one()

    def image(self, sha256: str) -> SharedImage | None:
        """The shared image with this SHA-256, or None."""
        query = sa.select(images_table).where(images_table.c.sha256 == sha256)
        with self._connection(write=False) as connection:
            row = connection.execute(query).first()
        if row is None:
            return None
        return SharedImage(data=bytes(row.data), format=row.format, width=row.width, height=row.height)

    def shared_hashes(self) -> set[str]:
        """SHA-256 of every stored image."""
        with self._connection(write=False) as connection:
            return set(connection.execute(sa.select(images_table.c.sha256)).scalars())

    def iter_reports(self, batch: int = 1000) -> Iterator[StoredReport]:
        """Every report, oldest first, read in batches."""
        after = 0
        while True:
            chunk = self.reports(after=after, limit=batch)
            yield from chunk
            if len(chunk) < batch:
                return
            after = chunk[-1].id

    @contextlib.contextmanager
    def _connection(self, write: bool) -> Iterator[sa.Connection]:
        """A connection (in a transaction committed on exit when `write`); a database that is down or
        refuses becomes FeedbackUnavailable."""
        engine = self.engine()
        if self._turns is not None and not self._turns.acquire(timeout=SQLITE_BUSY_S):
            raise FeedbackUnavailable("feedback database unavailable: busy for too long")
        try:
            with engine.begin() if write else engine.connect() as connection:
                yield connection
        except sa.exc.DatabaseError as error:  # down, refused, locked too long, or not a database
            raise FeedbackUnavailable(f"feedback database unavailable: {error.orig}") from None
        finally:
            if self._turns is not None:
                self._turns.release()


def _stored(row) -> StoredReport:
    created = row.created_at
    # SQLite keeps no zone (every time stored is UTC); PostgreSQL answers in the session's zone.
    created = (
        created.replace(tzinfo=timezone.utc) if created.tzinfo is None else created.astimezone(timezone.utc)
    )
    return StoredReport(
        id=row.id,
        created_at=created,
        sha256=row.sha256,
        label=row.label,
        model_name=row.model_name,
        model_version=row.model_version,
        score=row.score,
        verdict=row.verdict,
        note=row.note,
        client=row.client,
        image_shared=bool(row.image_shared),
    )


def _insert_new(connection, table: sa.Table):
    """INSERT that leaves an existing row alone (two users sharing the same image at the same moment)."""
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).on_conflict_do_nothing(index_elements=[table.c.sha256])


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # A rollback journal, not WAL: WAL maps its -shm file into memory, and a damaged or truncated -shm
    # (a full disk, a careless cleanup) turns the next write into a SIGBUS that kills the server. Readers
    # here are short, so they rarely hold a writer up. synchronous=FULL: a commit is on disk before it returns.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=DELETE")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def alembic_config(connection=None):
    """An Alembic configuration for the shipped migrations (with `connection`, the one they run on)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the database's schema to `revision` through the shipped Alembic migrations."""
    from alembic import command

    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)
