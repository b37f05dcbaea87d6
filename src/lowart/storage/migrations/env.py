"""Alembic environment: runs on the connection that ``storage.migrate`` hands it."""

from __future__ import annotations

from alembic import context

from lowart.storage.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `lowart migrate`, which provides the connection")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
