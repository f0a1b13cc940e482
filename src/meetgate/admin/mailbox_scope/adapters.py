"""The calendar plane's ports over meetgate's Graph client: the directory and the event probe."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, cast

from meetgate.admin.mailbox_scope.verify import ProbeOutcome
from meetgate.admin.policy.graph import DirectoryLike, GraphDirectory, _is_graph_error, _status, _user
from meetgate.admin.policy.model import DirectoryUser

PROBE_SUBJECT = "meetgate mailbox-scope verify (deleted at once)"


class UnitsLike(Protocol):
    def administrative_unit_members(self, unit_id: str) -> Iterable[Any]: ...


@dataclass
class GraphScopeDirectory(GraphDirectory):
    """:class:`~meetgate.admin.mailbox_scope.planner.ScopeDirectory` over Graph."""

    def direct_members(self, group_id: str) -> list[DirectoryUser] | None:
        try:
            return [_user(u) for u in self.directory.group_members(group_id, transitive=False)]
        except Exception as exc:
            if _is_graph_error(exc) and _status(exc) == 404:
                return None
            raise

    def unit_members(self, unit_id: str) -> list[DirectoryUser] | None:
        reader = cast(UnitsLike, self.directory)
        try:
            return [_user(u) for u in reader.administrative_unit_members(unit_id)]
        except Exception as exc:
            if _is_graph_error(exc) and _status(exc) == 404:
                return None
            raise

    def sample_users(self, limit: int) -> list[DirectoryUser]:
        users = (
            _user(u)
            for u in self.directory.list_users(select="id,userPrincipalName,displayName,accountEnabled")
        )
        return list(itertools.islice((u for u in users if u.enabled), limit))


def pick_outside(
    directory: GraphScopeDirectory | Any, approved: Iterable[str], named: Iterable[str], count: int = 2
) -> list[str]:
    """The outside samples: those named in the file or on the command line, else enabled users that
    are not approved (UPNs)."""
    chosen = [n for n in named if n]
    if chosen:
        return chosen
    excluded = {a.lower() for a in approved}
    sample = directory.sample_users(len(excluded) + count + 10)
    return [u.upn for u in sample if u.id.lower() not in excluded and u.upn.lower() not in excluded][:count]


class EventsLike(Protocol):
    def create(self, organizer: str, request: Any, *, external_id: str | None = None) -> Any: ...

    def delete(self, organizer: str, event_id: str) -> None: ...


@dataclass
class GraphEventProbe:
    """Creates a short calendar meeting tomorrow and deletes it at once; Exchange's refusal is ``denied``."""

    events: EventsLike
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)

    def try_create(self, organizer: str) -> tuple[ProbeOutcome, str]:
        from meetgate.errors import MeetgateError
        from meetgate.graph.errors import MailboxAccessDenied
        from meetgate.graph.models import MeetingRequest

        start = (self.now() + dt.timedelta(days=1)).replace(second=0, microsecond=0)
        request = MeetingRequest(
            placement="calendar", subject=PROBE_SUBJECT, start=start, end=start + dt.timedelta(minutes=15)
        )
        try:
            event = self.events.create(
                organizer, request, external_id=f"meetgate-scope-verify-{uuid.uuid4()}"
            )
        except MailboxAccessDenied as exc:
            return "denied", str(exc)
        except MeetgateError as exc:
            return "error", str(exc)
        try:
            self.events.delete(organizer, event.id)
        except MeetgateError as exc:
            return "created", f"created, but deleting the test event {event.id} failed: {exc}"
        return "created", f"event {event.id} created and deleted"


__all__ = ["DirectoryLike", "GraphEventProbe", "GraphScopeDirectory", "pick_outside"]
