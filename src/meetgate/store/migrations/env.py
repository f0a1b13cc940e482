"""Alembic environment: run by :meth:`meetgate.store.Store.migrate` with a live connection."""

from __future__ import annotations

from alembic import context

from meetgate.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only the programmatic path is supported
    raise RuntimeError("run migrations through meetgate.store.Store.migrate()")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
