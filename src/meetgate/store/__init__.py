"""The gateway's store: SQLAlchemy 2 tables, Alembic migrations, repository functions.

SQLite file by default; PostgreSQL when ``store_url`` says so (several gateway replicas share it).
"""

from meetgate.store.repository import (
    AuditEntry,
    ConsumerExists,
    ConsumerNotFound,
    ConsumerRecord,
    MeetingRecord,
    RetiredKey,
    Store,
    StoreError,
)

__all__ = [
    "AuditEntry",
    "ConsumerExists",
    "ConsumerNotFound",
    "ConsumerRecord",
    "MeetingRecord",
    "RetiredKey",
    "Store",
    "StoreError",
]
