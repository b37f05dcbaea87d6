"""Alembic revisions, one module per schema change, applied in the order of their numbers."""
