"""Profile → store: the database behind the gateway, validation runs, monitoring and consumers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from meetgate.config import Profile

if TYPE_CHECKING:
    from meetgate.store import Store
    from meetgate.store.runs import RunRepository


def open_store(profile: Profile) -> Store:
    """The store at the profile's ``store_url`` (migrated to the current schema)."""
    from meetgate.store import Store

    return Store.open(profile.store_url)


def open_runs(profile: Profile) -> RunRepository:
    """The repository of validation runs (``meetgate validate`` / ``golive``) in the profile's store."""
    from meetgate.store.runs import RunRepository

    return RunRepository(open_store(profile))
