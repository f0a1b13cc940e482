"""Collection restarts where it left off: no record missed, none repeated."""

from __future__ import annotations

import datetime as dt

from meetgate.store import Store
from meetgate.store.monitoring import MonitorRepository


def _sandbox_sign_ins(world) -> int:
    return sum(
        1 for t in world.app.control.token_log(world.app.tenant_id) if t.get("appId") == world.app.client_id
    )


def test_restart_neither_misses_nor_repeats(deployment, world):
    world.sign_in(3)
    with world.client(world.admin) as admin:
        admin.http.post(f"/applications/{world.app.object_id}/addPassword", json={"passwordCredential": {}})
    first = deployment.monitor.collector.collect()
    assert (first.new_sign_ins, first.new_audits) == (3, 1)

    # the monitor stops; activity goes on; a new process opens the same store and collects again
    deployment.store.close()
    world.sign_in(2)
    with world.client(world.admin) as admin:
        admin.http.post(f"/applications/{world.app.object_id}/addPassword", json={"passwordCredential": {}})
    store = Store.open(f"sqlite:///{world.tmp_path}/meetgate.db")
    try:
        monitor = deployment.new_monitor(store)
        second = monitor.collector.collect()
        # the overlap re-reads the last records (late arrivals) but stores only the new ones
        assert (second.new_sign_ins, second.new_audits) == (2, 1)
        assert second.seen_sign_ins == 5 and second.seen_audits == 2
        again = monitor.collector.collect()
        assert (again.new_sign_ins, again.new_audits) == (0, 0)
        repo = MonitorRepository(store)
        scope = {"tenant_id": world.app.tenant_id, "app_id": world.app.client_id}
        stored = repo.records(source="signin", **scope)
        assert len(stored) == len({s["id"] for s in stored}) == _sandbox_sign_ins(world) == 5
        assert repo.count_records(source="directory_audit", **scope) == 2
        cursor = repo.cursor(source="signin", **scope)
        assert cursor == max(
            dt.datetime.fromisoformat(s["createdDateTime"].replace("Z", "+00:00")) for s in stored
        )
    finally:
        store.close()
