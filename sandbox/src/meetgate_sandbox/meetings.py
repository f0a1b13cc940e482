"""Online meetings of one sandbox tenant: the domain behind ``/users/{id}/onlineMeetings``.

Pure logic, no HTTP: :class:`MeetingStore` validates request bodies the way Graph does, keeps the
meetings compactly (a 100,000-meeting tenant must fit in a few hundred MB) and renders each meeting
as Graph's ``onlineMeeting`` JSON on demand. Errors are :class:`MeetingError` with Graph's status,
code and message; the route layer (``meetings_api``) turns them into Graph's error envelope.

Shapes follow what the real service returns (see docs/sandbox.md, "The onlineMeeting resource"):

- ``id`` = base64 of ``1*{organizerOid}*0**19:meeting_{b64(guid)}@thread.v2``;
- ``joinWebUrl`` = ``https://teams.microsoft.com/l/meetup-join/19%3ameeting_{b64}%40thread.v2/0?context=%7b%22Tid%22%3a%22{tid}%22%2c%22Oid%22%3a%22{oid}%22%7d``,
  the deprecated ``joinUrl`` the same value;
- ``joinMeetingIdSettings.joinMeetingId`` a numeric string unique in the tenant, a generated passcode;
- ``audioConferencing`` with a toll number, conference id and dial-in URL;
- times in UTC with ``Z`` and seven fractional digits.

Here the body validation and the store; what a meeting is (enums, errors, times, ids, the stored
:class:`Meeting`) is in :mod:`meetgate_sandbox.meetings_model`, the JSON in
:mod:`meetgate_sandbox.meetings_render`. Every public name of both is importable from here too.
"""

from __future__ import annotations

import base64
import datetime as dt
import random
import string
import threading
import uuid
from collections.abc import Mapping
from typing import Any

from meetgate_sandbox.meetings_model import (
    ANONYMIZE_ROLES,
    BOOL_PROPERTIES,
    CHAT_HISTORY,
    CHAT_MODES,
    DEFAULTS,
    DIALIN_HOST,
    LIVE_SHARE,
    LOBBY_ADMITTERS,
    LOBBY_SCOPES,
    LOBBY_SCOPES_EVOLVED,
    PRESENTERS,
    ROLES,
    ROLES_EVOLVED,
    TOLL_NUMBER,
    UNKNOWN,
    Attendee,
    Meeting,
    MeetingError,
    Organizer,
    _meeting_from_row,
    _meeting_row,
    bad_request,
    format_datetime,
    join_web_url,
    meeting_id_of,
    not_found,
    parse_datetime,
    thread_id_of,
    thread_key_from_join_url,
    utcnow,
)
from meetgate_sandbox.meetings_render import attendance_report, render_meeting
from meetgate_sandbox.meetings_schema import (
    READ_ONLY,
    WRITABLE,
    check_language_tag,
    check_patch_properties,
    check_request_properties,
    check_sensitivity_label,
    check_template_id,
)

# ---- validation -------------------------------------------------------------------------------------


def _enum(name: str, value: object, allowed: tuple[str, ...], type_name: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise bad_request(
            f"Cannot convert the literal '{value}' to the expected type 'microsoft.graph.{type_name}' ({name}): "
            f"use one of {', '.join(allowed)}."
        )
    return value


def _bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise bad_request(
            f"Cannot convert the literal '{value}' to the expected type 'Edm.Boolean' ({name})."
        )
    return value


def _object(name: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise bad_request(f"{name} must be a JSON object.")
    return value


def _attendees(value: object, strict_upn: bool) -> list[Attendee]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad_request("participants.attendees must be a JSON array of meetingParticipantInfo.")
    result: list[Attendee] = []
    for index, item in enumerate(value):
        info = _object(f"participants.attendees[{index}]", item)
        upn = info.get("upn")
        identity = info.get("identity") or {}
        user = identity.get("user") if isinstance(identity, Mapping) else None
        user_id = user.get("id") if isinstance(user, Mapping) else None
        name = user.get("displayName") if isinstance(user, Mapping) else None
        if not isinstance(upn, str) or not upn.strip():
            if strict_upn:
                # what the real service does with an attendee without upn (docs/sandbox.md)
                raise MeetingError(500, "UnknownError", "An error has occurred.")
            upn = ""
        role = info.get("role")
        if role is not None:
            role = _enum(f"participants.attendees[{index}].role", role, ROLES, "onlineMeetingRole")
        if user_id is not None and not isinstance(user_id, str):
            raise bad_request(f"participants.attendees[{index}].identity.user.id must be a string.")
        result.append(
            Attendee(
                upn=upn.strip(),
                user_id=user_id.lower() if user_id else None,
                role=role,
                display_name=name if isinstance(name, str) else None,
            )
        )
    return result


def _options(body: Mapping[str, Any], current: dict[str, Any] | None) -> dict[str, Any] | None:
    """Validate the writable settings in ``body`` and merge them into ``current`` (sparse)."""
    options = dict(current or {})
    for name in BOOL_PROPERTIES:
        if name in body:
            options[name] = _bool(name, body[name])
    if "allowedPresenters" in body:
        options["allowedPresenters"] = _enum(
            "allowedPresenters", body["allowedPresenters"], PRESENTERS, "onlineMeetingPresenters"
        )
    if "allowMeetingChat" in body:
        options["allowMeetingChat"] = _enum(
            "allowMeetingChat", body["allowMeetingChat"], CHAT_MODES, "meetingChatMode"
        )
    if "allowLiveShare" in body:
        options["allowLiveShare"] = _enum(
            "allowLiveShare", body["allowLiveShare"], LIVE_SHARE, "meetingLiveShareOptions"
        )
    if "allowedLobbyAdmitters" in body:
        options["allowedLobbyAdmitters"] = _enum(
            "allowedLobbyAdmitters",
            body["allowedLobbyAdmitters"],
            LOBBY_ADMITTERS,
            "allowedLobbyAdmitterRoles",
        )
    if "shareMeetingChatHistoryDefault" in body:
        options["shareMeetingChatHistoryDefault"] = _enum(
            "shareMeetingChatHistoryDefault",
            body["shareMeetingChatHistoryDefault"],
            CHAT_HISTORY,
            "meetingChatHistoryDefaultMode",
        )
    if "lobbyBypassSettings" in body and body["lobbyBypassSettings"] is not None:
        lobby = _object("lobbyBypassSettings", body["lobbyBypassSettings"])
        merged = dict(
            options.get("lobbyBypassSettings") or {"scope": "organization", "isDialInBypassEnabled": False}
        )
        if "scope" in lobby:
            merged["scope"] = _enum(
                "lobbyBypassSettings.scope",
                lobby["scope"],
                LOBBY_SCOPES + LOBBY_SCOPES_EVOLVED,
                "lobbyBypassScope",
            )
        if "isDialInBypassEnabled" in lobby:
            merged["isDialInBypassEnabled"] = _bool(
                "lobbyBypassSettings.isDialInBypassEnabled", lobby["isDialInBypassEnabled"]
            )
        options["lobbyBypassSettings"] = merged
    if "watermarkProtection" in body:
        value = body["watermarkProtection"]
        if value is None:
            options.pop("watermarkProtection", None)
        else:
            mark = _object("watermarkProtection", value)
            options["watermarkProtection"] = {
                "isEnabledForContentSharing": _bool(
                    "watermarkProtection.isEnabledForContentSharing",
                    mark.get("isEnabledForContentSharing", False),
                ),
                "isEnabledForVideo": _bool(
                    "watermarkProtection.isEnabledForVideo", mark.get("isEnabledForVideo", False)
                ),
            }
    if "chatRestrictions" in body:
        value = body["chatRestrictions"]
        if value is None:
            options.pop("chatRestrictions", None)
        else:
            restrictions = _object("chatRestrictions", value)
            options["chatRestrictions"] = {
                "allowTextOnly": _bool(
                    "chatRestrictions.allowTextOnly", restrictions.get("allowTextOnly", False)
                )
            }
    if "anonymizeIdentityForRoles" in body:
        value = body["anonymizeIdentityForRoles"]
        roles: list[str] = []
        if value is not None:
            if not isinstance(value, list):
                raise bad_request("anonymizeIdentityForRoles must be a JSON array of onlineMeetingRole.")
            roles = [
                _enum("anonymizeIdentityForRoles", v, ANONYMIZE_ROLES, "onlineMeetingRole") for v in value
            ]
        before = list((current or {}).get("anonymizeIdentityForRoles") or [])
        missing = [r for r in before if r not in roles]
        if missing:
            raise bad_request(
                f"anonymizeIdentityForRoles cannot be removed once set (would remove {', '.join(missing)}); "
                "create a new meeting instead."
            )
        options["anonymizeIdentityForRoles"] = sorted(set(roles))
    _optional_strings(body, options)
    for name in [n for n, v in options.items() if DEFAULTS.get(n, object()) == v or v is None]:
        del options[name]
    return options or None


def _optional_strings(body: Mapping[str, Any], options: dict[str, Any]) -> None:
    """meetingSpokenLanguageTag, sensitivityLabelAssignment, meetingTemplateId (null clears)."""
    if "meetingSpokenLanguageTag" in body:
        options["meetingSpokenLanguageTag"] = check_language_tag(body["meetingSpokenLanguageTag"])
    if "sensitivityLabelAssignment" in body:
        options["sensitivityLabelAssignment"] = check_sensitivity_label(body["sensitivityLabelAssignment"])
    if "meetingTemplateId" in body:
        options["meetingTemplateId"] = check_template_id(body["meetingTemplateId"])


def _subject(body: Mapping[str, Any]) -> str | None:
    subject = body.get("subject")
    if subject is not None and not isinstance(subject, str):
        raise bad_request("subject must be a string.")
    return subject


def _organizer_in_body(body: Mapping[str, Any]) -> str | None:
    participants = body.get("participants")
    if not isinstance(participants, Mapping):
        return None
    organizer = participants.get("organizer")
    if not isinstance(organizer, Mapping):
        return None
    identity = organizer.get("identity")
    user = identity.get("user") if isinstance(identity, Mapping) else None
    user_id = user.get("id") if isinstance(user, Mapping) else None
    return user_id.lower() if isinstance(user_id, str) else None


def _participants(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    if "participants" not in body or body["participants"] is None:
        return None
    return _object("participants", body["participants"])


# ---- the store --------------------------------------------------------------------------------------


class MeetingStore:
    """The online meetings of one tenant. Thread-safe; all times injectable for tests."""

    def __init__(self, tenant_id: str, *, seed: int | None = None) -> None:
        self.tenant_id = tenant_id
        self._rng = random.Random(seed)  # noqa: S311 - synthetic ids, not secrets
        self._lock = threading.Lock()
        self._meetings: dict[str, Meeting] = {}
        self._by_external: dict[tuple[str, str], str] = {}
        self._by_join_id: dict[str, str] = {}
        self._by_thread: dict[str, str] = {}
        self._by_vtc: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._meetings)

    def snapshot(self) -> list[Meeting]:
        """Every meeting, in creation order (a copy: for reports and benchmarks)."""
        with self._lock:
            return list(self._meetings.values())

    # -- creation

    def _new_ids(self, organizer_id: str) -> tuple[str, str]:
        while True:
            guid = uuid.UUID(int=self._rng.getrandbits(128), version=4)
            thread_key = base64.b64encode(str(guid).encode()).decode()
            meeting_id = meeting_id_of(organizer_id, thread_key)
            if "/" not in meeting_id and "+" not in meeting_id and meeting_id not in self._meetings:
                return meeting_id, thread_key

    def _new_join_meeting_id(self) -> str:
        while True:
            value = str(self._rng.randrange(10**11, 10**12))
            if value not in self._by_join_id:
                return value

    def _new_vtc_id(self) -> str:
        while True:
            value = str(self._rng.randrange(10**9, 10**10))
            if value not in self._by_vtc:
                return value

    def _new_passcode(self) -> str:
        alphabet = string.ascii_letters + string.digits
        return "".join(self._rng.choice(alphabet) for _ in range(6))

    def _build(
        self,
        organizer: Organizer,
        body: Mapping[str, Any],
        now: dt.datetime,
        external_id: str | None,
        upn_required: bool,
    ) -> Meeting:
        check_request_properties(body)
        start_raw, end_raw = body.get("startDateTime"), body.get("endDateTime")
        start = parse_datetime("startDateTime", start_raw) if start_raw is not None else None
        end = parse_datetime("endDateTime", end_raw) if end_raw is not None else None
        if end is not None and start is None:
            raise bad_request(
                "endDateTime was given without startDateTime: give both, or startDateTime alone."
            )
        if start is None:
            start = now
        if end is None:
            end = start + dt.timedelta(hours=1)
        if end < start:
            raise bad_request("endDateTime must be later than startDateTime.")
        subject = _subject(body)
        participants = _participants(body)
        body_organizer = _organizer_in_body(body)
        if body_organizer is not None and body_organizer != organizer.id:
            raise bad_request(
                "participants.organizer must be the user in the request path: meetings are created on behalf of "
                "the organizer in /users/{userId}."
            )
        attendees = _attendees(participants.get("attendees") if participants else None, upn_required)
        options = _options(body, None)
        passcode_required = True
        if body.get("joinMeetingIdSettings") is not None:
            join_settings = _object("joinMeetingIdSettings", body["joinMeetingIdSettings"])
            if "isPasscodeRequired" in join_settings:
                passcode_required = _bool(
                    "joinMeetingIdSettings.isPasscodeRequired", join_settings["isPasscodeRequired"]
                )
        meeting_id, thread_key = self._new_ids(organizer.id)
        return Meeting(
            id=meeting_id,
            organizer_id=organizer.id,
            organizer_upn=organizer.user_principal_name,
            organizer_name=organizer.display_name,
            thread_key=thread_key,
            created=now,
            start=start,
            end=end,
            subject=subject,
            join_meeting_id=self._new_join_meeting_id(),
            passcode=self._new_passcode() if passcode_required else None,
            conference_id=str(self._rng.randrange(10**8, 10**9)),
            vtc_id=self._new_vtc_id(),
            external_id=external_id,
            attendees=attendees,
            options=options,
        )

    def _store(self, meeting: Meeting) -> None:
        self._meetings[meeting.id] = meeting
        self._by_join_id[meeting.join_meeting_id] = meeting.id
        self._by_thread[meeting.thread_key] = meeting.id
        self._by_vtc[meeting.vtc_id] = meeting.id
        if meeting.external_id is not None:
            self._by_external[(meeting.organizer_id, meeting.external_id)] = meeting.id

    def create(
        self,
        organizer: Organizer,
        body: Mapping[str, Any],
        *,
        now: dt.datetime | None = None,
        upn_required: bool = True,
    ) -> Meeting:
        """``POST /users/{id}/onlineMeetings`` → 201. ``upn_required``: an attendee without upn is a 500."""
        with self._lock:
            meeting = self._build(organizer, body, now or utcnow(), None, upn_required)
            self._store(meeting)
            return meeting

    def create_or_get(
        self,
        organizer: Organizer,
        body: Mapping[str, Any],
        *,
        now: dt.datetime | None = None,
        upn_required: bool = True,
    ) -> tuple[Meeting, bool]:
        """``POST .../createOrGet``: (meeting, created). Keyed by (tenant, organizer, externalId)."""
        external_id = body.get("externalId")
        if not isinstance(external_id, str) or not external_id.strip():
            raise bad_request("externalId is required for createOrGet: send a non-empty string.")
        with self._lock:
            existing = self._by_external.get((organizer.id, external_id))
            if existing is not None:
                return self._meetings[existing], False
            meeting = self._build(organizer, body, now or utcnow(), external_id, upn_required)
            self._store(meeting)
            return meeting, True

    # -- reads

    def get(self, organizer_id: str, meeting_id: str) -> Meeting:
        meeting = self._meetings.get(meeting_id)
        if meeting is None or meeting.organizer_id != organizer_id:
            raise not_found()
        return meeting

    def find_by_join_url(self, organizer_id: str, url: str) -> list[Meeting]:
        key = thread_key_from_join_url(url)
        meeting_id = self._by_thread.get(key) if key else None
        meeting = self._meetings.get(meeting_id) if meeting_id else None
        return [meeting] if meeting is not None and meeting.organizer_id == organizer_id else []

    def find_by_join_meeting_id(self, organizer_id: str, join_meeting_id: str) -> list[Meeting]:
        meeting_id = self._by_join_id.get(join_meeting_id.strip())
        meeting = self._meetings.get(meeting_id) if meeting_id else None
        return [meeting] if meeting is not None and meeting.organizer_id == organizer_id else []

    def find_in_tenant(self, *, vtc_id: str | None = None, join_url: str | None = None) -> list[Meeting]:
        """``/communications/onlineMeetings?$filter=...``: any organizer's meeting of the tenant."""
        meeting_id: str | None = None
        if vtc_id is not None:
            meeting_id = self._by_vtc.get(vtc_id.strip())
        elif join_url is not None:
            key = thread_key_from_join_url(join_url)
            meeting_id = self._by_thread.get(key) if key else None
        meeting = self._meetings.get(meeting_id) if meeting_id else None
        return [meeting] if meeting is not None else []

    # -- update and delete

    def update(
        self,
        organizer_id: str,
        meeting_id: str,
        body: Mapping[str, Any],
        *,
        upn_required: bool = True,
    ) -> Meeting:
        """``PATCH``: Graph's rules (docs/sandbox.md) enforced; nothing changes when one fails."""
        with self._lock:
            meeting = self.get(organizer_id, meeting_id)
            check_patch_properties(
                body,
                {"externalId": meeting.external_id, "meetingTemplateId": meeting.option("meetingTemplateId")},
            )
            has_start, has_end = body.get("startDateTime") is not None, body.get("endDateTime") is not None
            if has_start != has_end:
                raise bad_request(
                    "To change the meeting time, send both startDateTime and endDateTime "
                    f"(only {'startDateTime' if has_start else 'endDateTime'} was given)."
                )
            start, end = meeting.start, meeting.end
            if has_start:
                start = parse_datetime("startDateTime", body["startDateTime"])
                end = parse_datetime("endDateTime", body["endDateTime"])
                if end < start:
                    raise bad_request("endDateTime must be later than startDateTime.")
            body_organizer = _organizer_in_body(body)
            if body_organizer is not None and body_organizer != meeting.organizer_id:
                raise bad_request("The organizer of an online meeting cannot be changed.")
            if "joinMeetingIdSettings" in body and body["joinMeetingIdSettings"] is not None:
                wanted = _object("joinMeetingIdSettings", body["joinMeetingIdSettings"])
                current = {
                    "joinMeetingId": meeting.join_meeting_id,
                    "passcode": meeting.passcode,
                    "isPasscodeRequired": meeting.passcode is not None,
                }
                if any(current.get(k) != v for k, v in wanted.items() if not k.startswith("@odata.")):
                    raise bad_request(
                        "joinMeetingIdSettings cannot be changed once the meeting is created: "
                        "delete the meeting and create a new one."
                    )
            subject = _subject(body) if "subject" in body else meeting.subject
            participants = _participants(body)
            attendees = meeting.attendees
            if participants is not None and "attendees" in participants:
                attendees = _attendees(participants["attendees"], upn_required)
            options = _options(body, meeting.options)
            meeting.start, meeting.end = start, end
            meeting.subject = subject
            meeting.attendees = attendees
            meeting.options = options
            return meeting

    def delete(self, organizer_id: str, meeting_id: str) -> None:
        with self._lock:
            meeting = self.get(organizer_id, meeting_id)
            del self._meetings[meeting.id]
            self._by_join_id.pop(meeting.join_meeting_id, None)
            self._by_thread.pop(meeting.thread_key, None)
            self._by_vtc.pop(meeting.vtc_id, None)
            if meeting.external_id is not None:
                self._by_external.pop((meeting.organizer_id, meeting.external_id), None)

    # -- attendance

    def attendance_reports(
        self, organizer_id: str, meeting_id: str, *, now: dt.datetime | None = None
    ) -> list[dict[str, Any]]:
        """Synthetic reports: one once the meeting's start has passed, with a record per participant."""
        meeting = self.get(organizer_id, meeting_id)
        now = now or utcnow()
        if meeting.start > now:
            return []
        return [attendance_report(self.tenant_id, meeting, now)]

    def attendance_report(
        self, organizer_id: str, meeting_id: str, report_id: str, *, now: dt.datetime | None = None
    ) -> dict[str, Any]:
        for report in self.attendance_reports(organizer_id, meeting_id, now=now):
            if report["id"] == report_id:
                return report
        raise not_found("The specified attendance report was not found.")

    # -- persistence

    def to_dict(self) -> dict[str, Any]:
        """Compact rows (a list per meeting, times as epoch seconds): 100,000 meetings save in seconds."""
        with self._lock:
            return {"rows": [_meeting_row(m) for m in self._meetings.values()]}

    def load_dict(self, data: Mapping[str, Any]) -> None:
        with self._lock:
            self._meetings.clear()
            self._by_external.clear()
            self._by_join_id.clear()
            self._by_thread.clear()
            self._by_vtc.clear()
            for row in data.get("rows") or []:
                self._store(_meeting_from_row(row))


__all__ = [
    "ANONYMIZE_ROLES",
    "BOOL_PROPERTIES",
    "CHAT_HISTORY",
    "CHAT_MODES",
    "DEFAULTS",
    "DIALIN_HOST",
    "LIVE_SHARE",
    "LOBBY_ADMITTERS",
    "LOBBY_SCOPES",
    "LOBBY_SCOPES_EVOLVED",
    "PRESENTERS",
    "READ_ONLY",
    "ROLES",
    "ROLES_EVOLVED",
    "TOLL_NUMBER",
    "UNKNOWN",
    "WRITABLE",
    "Attendee",
    "Meeting",
    "MeetingError",
    "MeetingStore",
    "Organizer",
    "attendance_report",
    "bad_request",
    "format_datetime",
    "join_web_url",
    "meeting_id_of",
    "not_found",
    "parse_datetime",
    "render_meeting",
    "thread_id_of",
    "thread_key_from_join_url",
    "utcnow",
]
