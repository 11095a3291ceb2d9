"""Alembic's entry point: runs the migrations on the connection `realcheck.server.feedback.store.migrate` passes in."""

from __future__ import annotations

from alembic import context

from realcheck.server.feedback.store import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the feedback migrations through server.feedback.store.migrate(engine)")
# Batch mode: SQLite alters tables by copying them, and later migrations then work on both databases.
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
