"""Alembic migrations (run on start-up and by ``lowart migrate``)."""
