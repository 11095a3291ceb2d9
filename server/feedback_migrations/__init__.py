"""Alembic migrations of the feedback database (run by `server.feedback_store.migrate`)."""
