"""Alembic migrations of the feedback database (run by `realcheck.server.feedback.store.migrate`)."""
