"""Carry out a plan through a backend: batched, journaled, resumable, failures reported not fatal.

The journal is a JSON-lines file per policy in the state directory: a header naming the plan id,
then one line per finished operation. Running ``apply`` again for the same plan skips what the
journal records as done, so an interrupted apply resumes; a different plan starts a new journal.
After a complete apply the journal is removed and ``last-apply.json`` records what was approved
(the growth warning compares with it) and when.

A saved plan (``apply --plan``) is checked against the tenant first (:func:`check_fresh`): every user
it touches must still hold what the plan saw, the policy definition must be unchanged, and no apply
of the policy may have finished since the plan was made. Otherwise the plan is stale and refused.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meetgate.admin.policy.model import PolicyDefinition, PolicyError, TenantPolicyState, policy_key
from meetgate.admin.policy.planner import ApplyRecord, Holding, PolicyPlan, holding_text
from meetgate.admin.policy.ports import OpResult, PolicyChangePort, UserOp


def _slug(identity: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in identity.lower())


class ApplyJournal:
    """Append-only record of the operations of one plan."""

    def __init__(self, state_dir: Path, identity: str) -> None:
        self.path = state_dir / f"journal-{_slug(identity)}.jsonl"
        self.record_path = state_dir / f"last-apply-{_slug(identity)}.json"
        self.lock_path = state_dir / f"apply-{_slug(identity)}.lock"
        self.state_dir = state_dir

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One apply per policy and state directory at a time; a lock left by a dead process is taken over."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            except FileExistsError:
                if _alive(self.lock_path):
                    raise PolicyError(
                        f"another apply of this policy is running ({self.lock_path})",
                        "wait for it to finish; if no apply is running, delete the lock file",
                    ) from None
                self.lock_path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(str(os.getpid()))
            break
        else:
            raise PolicyError(f"could not take the apply lock {self.lock_path}", "retry")
        try:
            yield
        finally:
            self.lock_path.unlink(missing_ok=True)

    def done(self, plan_id: str) -> dict[str, str]:
        """``"action:user_id"`` → ``"ok"`` for operations finished under this plan id."""
        if not self.path.exists():
            return {}
        done: dict[str, str] = {}
        with self.path.open(encoding="utf-8") as fh:
            header = fh.readline()
            try:
                if json.loads(header).get("planId") != plan_id:
                    return {}
            except (json.JSONDecodeError, AttributeError):
                return {}
            for line in fh:
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line torn by the interruption
                if not entry.get("ok"):
                    continue
                if entry.get("action") == "policy":
                    done["policy"] = "ok"
                else:
                    done[f"{entry['action']}:{entry['user']}"] = "ok"
        return done

    def resuming(self, plan_id: str) -> bool:
        """True when an apply of this plan was interrupted (its journal is still here)."""
        return self._header_matches(plan_id)

    def start(self, plan_id: str) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.done(plan_id) or self._header_matches(plan_id):
            return
        self.path.write_text(json.dumps({"planId": plan_id, "started": _now()}) + "\n", encoding="utf-8")

    def _header_matches(self, plan_id: str) -> bool:
        if not self.path.exists():
            return False
        with self.path.open(encoding="utf-8") as fh:
            try:
                return bool(json.loads(fh.readline()).get("planId") == plan_id)
            except (json.JSONDecodeError, AttributeError):
                return False

    def record(self, entries: Sequence[dict[str, Any]]) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            for entry in entries:
                fh.write(json.dumps(entry) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def finish(self, record: ApplyRecord) -> None:
        self.record_path.write_text(json.dumps(record.to_dict(), indent=2) + "\n", encoding="utf-8")
        self.path.unlink(missing_ok=True)

    def last_apply(self) -> ApplyRecord | None:
        if not self.record_path.exists():
            return None
        try:
            return ApplyRecord.from_dict(json.loads(self.record_path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, KeyError, ValueError):
            return None


@dataclass
class ApplyReport:
    plan_id: str
    backend: str
    policy_action: str
    policy_ok: bool = True
    policy_error: str | None = None
    succeeded: list[OpResult] = field(default_factory=list)
    failed: list[OpResult] = field(default_factory=list)
    skipped: int = 0  # already done according to the journal (resumed)

    @property
    def ok(self) -> bool:
        return self.policy_ok and not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "planId": self.plan_id,
            "backend": self.backend,
            "policy": {"action": self.policy_action, "ok": self.policy_ok, "error": self.policy_error},
            "granted": sum(1 for r in self.succeeded if r.action == "grant"),
            "revoked": sum(1 for r in self.succeeded if r.action == "revoke"),
            "resumedSkipped": self.skipped,
            "failed": [{"id": r.user_id, "action": r.action, "error": r.error} for r in self.failed],
            "ok": self.ok,
        }


def _alive(lock: Path) -> bool:
    try:
        pid = int(lock.read_text().strip() or "0")
    except (OSError, ValueError):
        return False
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _chunks(ops: Sequence[UserOp], size: int) -> Iterator[Sequence[UserOp]]:
    for start in range(0, len(ops), max(1, size)):
        yield ops[start : start + size]


STALE_REMEDY = "run `meetgate policy plan --out plan.json` again, review it, and apply the new plan"
EXAMPLES = 5  # changed users named in the refusal; the count says how many there are


def _same_definition(a: PolicyDefinition | None, b: PolicyDefinition | None) -> bool:
    if a is None or b is None:
        return a is b
    return {x.lower() for x in a.app_ids} == {x.lower() for x in b.app_ids} and a.description == b.description


def _same_holding(a: Holding, b: Holding) -> bool:
    return policy_key(a[0]) == policy_key(b[0]) and a[1] == b[1]


def _reached(plan: PolicyPlan, op: UserOp, state: TenantPolicyState) -> bool:
    """The operation's result is already there (carried out, journal line lost in the interruption)."""
    held = policy_key(state.direct.get(op.user_id))
    ours = policy_key(plan.policy.definition.identity)
    return held == ours if op.action == "grant" else held != ours


def check_fresh(plan: PolicyPlan, state: TenantPolicyState, journal: ApplyJournal) -> None:
    """Refuse (:class:`PolicyError`) a saved plan the tenant no longer matches.

    A new apply needs every touched user to hold exactly what the plan recorded, the policy as the
    plan saw it, and no apply of the policy finished after the plan was made. Resuming an interrupted
    apply of the same plan checks only what its journal does not record as done, and accepts an
    operation whose result is already in the tenant.
    """
    plan_id = plan.plan_id
    resuming = journal.resuming(plan_id)
    done = journal.done(plan_id) if resuming else {}
    made = f"plan {plan_id} (made {_shown(plan.created_at) if plan.created_at else 'at an unknown time'})"
    if not plan.created_at or any(op.user_id not in plan.before for op in plan.ops):
        raise PolicyError(
            f"the {made} does not record the tenant state it was made against (an older meetgate made it)",
            STALE_REMEDY,
        )
    last = journal.last_apply()
    if not resuming and last is not None and last.at and _parse(last.at) > _parse(plan.created_at):
        raise PolicyError(
            f"the {made} is stale: an apply of {last.policy} finished at {_shown(last.at)}, after the plan was "
            "made, so the tenant is no longer what the plan was computed against; nothing was changed",
            STALE_REMEDY,
        )
    summary: list[str] = []
    examples: list[str] = []
    if "policy" not in done:
        current = state.policy(plan.policy.definition.identity)
        wanted = plan.policy.definition if resuming and plan.policy.action != "none" else None
        if not (
            _same_definition(current, plan.policy.current)
            or (wanted is not None and _same_definition(current, wanted))
        ):
            then_ids = ", ".join(plan.policy.current.app_ids) if plan.policy.current else "absent"
            now_ids = ", ".join(current.app_ids) if current else "absent"
            summary.append(f"the policy {plan.policy.definition.identity} changed")
            examples.append(f"its app ids were {then_ids or 'none'} when planned, {now_ids or 'none'} now")
    changed = 0
    for op in plan.ops:
        if f"{op.action}:{op.user_id}" in done:
            continue
        was = plan.before[op.user_id]
        now = state.effective(op.user_id)
        if _same_holding(now, was) or (resuming and _reached(plan, op, state)):
            continue
        changed += 1
        if changed <= EXAMPLES:
            examples.append(f"{op.upn or op.user_id} held {holding_text(was)}, holds {holding_text(now)} now")
    if changed:
        summary.append(
            f"{changed} of the {len(plan.ops)} user(s) it grants or revokes hold something else now"
        )
    if summary:
        raise PolicyError(
            f"the {made} is stale: {' and '.join(summary)} ({'; '.join(examples)}); nothing was changed",
            STALE_REMEDY,
        )


def _parse(text: str) -> dt.datetime:
    when = dt.datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _shown(text: str) -> str:
    return f"{_parse(text).astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"


def apply_plan(
    plan: PolicyPlan,
    backend: PolicyChangePort,
    journal: ApplyJournal,
    *,
    progress: Callable[[int, int], None] | None = None,
    current_state: Callable[[], TenantPolicyState] | None = None,
) -> ApplyReport:
    """Carry out ``plan``; ``progress(done, total)`` after every batch. One apply per policy at a time.

    With ``current_state`` (a saved plan), the tenant is read under the lock and a stale plan is
    refused before anything changes (:func:`check_fresh`).
    """
    with journal.locked():
        if current_state is not None:
            check_fresh(plan, current_state(), journal)
        return _apply(plan, backend, journal, progress)


def _apply(
    plan: PolicyPlan,
    backend: PolicyChangePort,
    journal: ApplyJournal,
    progress: Callable[[int, int], None] | None,
) -> ApplyReport:
    plan_id = plan.plan_id
    journal.start(plan_id)
    done = journal.done(plan_id)
    report = ApplyReport(plan_id, backend.name, plan.policy.action)
    definition = plan.policy.definition
    if plan.policy.action != "none" and "policy" not in done:
        try:
            backend.ensure_policy(definition)
            journal.record([{"action": "policy", "ok": True, "at": _now()}])
        except PolicyError as exc:
            report.policy_ok = False
            report.policy_error = str(exc)
            if plan.grants:
                # granting a policy that does not exist cannot succeed: stop before touching users
                return report
    pending = [op for op in plan.ops if f"{op.action}:{op.user_id}" not in done]
    report.skipped = len(plan.ops) - len(pending)
    total = len(plan.ops)
    finished = report.skipped
    if progress:
        progress(finished, total)
    for batch in _chunks(pending, backend.batch_size):
        results = backend.apply_batch(definition.name, batch)
        journal.record(
            [{"action": r.action, "user": r.user_id, "ok": r.ok, "error": r.error} for r in results]
        )
        for result in results:
            (report.succeeded if result.ok else report.failed).append(result)
        finished += len(batch)
        if progress:
            progress(finished, total)
    if report.ok:
        at = dt.datetime.now(dt.UTC).isoformat()  # full precision: compared with a plan's creation time
        journal.finish(ApplyRecord(definition.identity, plan.approved, plan.group_counts, at))
    return report
