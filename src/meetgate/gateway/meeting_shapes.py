"""A stored meeting as the gateway's API shows it, and the keys that make a creation exactly once.

Pure functions: :func:`external_id_for` (the Graph externalId of a consumer's Idempotency-Key),
:func:`request_hash` (what a creation asks for, so a replay with another body is refused),
:func:`snapshot_of` (what is kept of Graph's answer) and :func:`meeting_out` (the record as
``MeetingOut``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from meetgate.gateway.schemas import AttendeeOut, MeetingCreate, MeetingOut
from meetgate.graph.models import OnlineMeeting
from meetgate.store import MeetingRecord

__all__ = ["external_id_for", "meeting_out", "request_hash", "snapshot_of"]


def external_id_for(consumer_id: str, idempotency_key: str) -> str:
    """The Graph createOrGet externalId: the same for every retry, replica and restart."""
    digest = hashlib.sha256(f"{consumer_id}\x00{idempotency_key}".encode()).hexdigest()
    return f"meetgate-{digest[:48]}"


#: fields added to creations later: left out of the hash while unset, so earlier requests' hashes hold
_LATER_FIELDS = ("placement", "time_zone", "recurrence", "body", "location")


def request_hash(body: MeetingCreate) -> str:
    """What the request asks for (``allowPast`` is a permission, not part of the meeting: a replay with
    or without it is the same request, and hashes of requests made before it existed stay valid; so
    do those made before calendar meetings: their fields count only when given)."""
    content = body.model_dump(mode="json", exclude={"allow_past"})
    for name in _LATER_FIELDS:
        if content.get(name) is None:
            content.pop(name, None)
    for attendee in content.get("attendees") or []:
        if not attendee.get("optional"):
            attendee.pop("optional", None)
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def snapshot_of(meeting: OnlineMeeting) -> dict[str, Any]:
    return {
        "subject": meeting.subject,
        "organizer_upn": meeting.organizer_upn,  # the invitation's ORGANIZER when given by object id
        "start": meeting.start.isoformat() if meeting.start else None,
        "end": meeting.end.isoformat() if meeting.end else None,
        "join_meeting_id": meeting.join_meeting_id,
        "passcode": meeting.passcode,
        "attendees": [{"upn": a.upn, "role": a.role} for a in meeting.attendees],
        "lobby_bypass_scope": meeting.lobby_bypass_scope,
        "allowed_presenters": meeting.allowed_presenters,
        "allow_meeting_chat": meeting.allow_meeting_chat,
    }


def meeting_out(record: MeetingRecord) -> MeetingOut:
    snap = record.snapshot or {}
    return MeetingOut(
        id=record.id,
        state="pending" if record.state == "failed" else record.state,
        placement="calendar" if record.placement == "calendar" else "standalone",
        organizer=record.organizer,
        subject=snap.get("subject"),
        start=snap.get("start"),
        end=snap.get("end"),
        join_url=record.join_url,
        join_meeting_id=snap.get("join_meeting_id"),
        passcode=snap.get("passcode"),
        attendees=[AttendeeOut(**a) for a in snap.get("attendees", [])],
        lobby_bypass_scope=snap.get("lobby_bypass_scope"),
        allowed_presenters=snap.get("allowed_presenters"),
        allow_meeting_chat=snap.get("allow_meeting_chat"),
        graph_meeting_id=record.graph_meeting_id,
        graph_event_id=record.graph_event_id,
        kind=snap.get("kind"),
        recurrence=snap.get("recurrence"),
        time_zone=snap.get("time_zone"),
        location=snap.get("location"),
        web_link=snap.get("web_link"),
        ical_uid=snap.get("ical_uid"),
        external_id=record.external_id,
        created_at=record.created_at,
    )
