"""Graph's calendar routes over the sandbox's Exchange calendars (:mod:`~meetgate_sandbox.calendar_store`).

Mounted under ``/v1.0`` and ``/beta``, for ``/users/{id|upn}/events`` and ``/users/{id}/calendar/events``:

- ``POST`` (create: 201; invitations delivered to attendees of the tenant; ``isOnlineMeeting`` with
  ``teamsForBusiness`` makes a Teams meeting — a real sandbox onlineMeeting with the same join URL),
  ``GET`` (list, 10 a page by default, ``$top``/``$skip`` and ``@odata.nextLink``; ``$filter`` on
  ``singleValueExtendedProperties/Any(ep: ep/id eq '…' and ep/value eq '…')``);
- ``GET`` / ``PATCH`` / ``DELETE`` of an event, a copy or an occurrence; ``POST …/cancel`` (organizer only,
  202); ``GET …/instances`` and ``/calendarView`` (``startDateTime`` and ``endDateTime`` required).

Order of checks, as Exchange answers: permission (an Entra ``Calendars.*`` application permission, or
an Exchange RBAC for Applications role assignment whose scope holds the mailbox — the two add up,
see :mod:`~meetgate_sandbox.exchange_rbac`) → mailbox → item → body.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from meetgate_sandbox.calendar_recurrence import RecurrenceInvalid
from meetgate_sandbox.calendar_render import render_event
from meetgate_sandbox.calendar_store import CalendarStore, EventView, Mailbox
from meetgate_sandbox.calendar_time import TimeInvalid, parse_date_time_zone, preferred_zone
from meetgate_sandbox.exchange_rbac import mailbox_permitted
from meetgate_sandbox.http import Caller, GraphErrorResponse, json_object_body
from meetgate_sandbox.meetings import MeetingStore
from meetgate_sandbox.meetings_model import Organizer, join_web_url, utcnow
from meetgate_sandbox.notification_bus import Change
from meetgate_sandbox.runtime import caller_tenant, runtime_of
from meetgate_sandbox.state import Tenant

__all__ = ["CALENDAR_EXTENSION", "READ_PERMISSIONS", "WRITE_PERMISSION", "calendar_extension", "routes"]

CALENDAR_EXTENSION = "calendars"
WRITE_PERMISSION = "Calendars.ReadWrite"
READ_PERMISSIONS = ("Calendars.Read", WRITE_PERMISSION)
PAGE_SIZE = 10
MAX_PAGE_SIZE = 1000
TOLL_NUMBER = "+1 425 555 0123"
PROVIDERS = ("unknown", "teamsForBusiness", "skypeForBusiness", "skypeForConsumer")

#: properties a client may send (create and PATCH); transactionId on create only
WRITABLE = frozenset(
    {
        "subject",
        "body",
        "start",
        "end",
        "location",
        "locations",
        "attendees",
        "categories",
        "importance",
        "sensitivity",
        "showAs",
        "isReminderOn",
        "reminderMinutesBeforeStart",
        "allowNewTimeProposals",
        "responseRequested",
        "hideAttendees",
        "isAllDay",
        "recurrence",
        "singleValueExtendedProperties",
        "isOnlineMeeting",
        "onlineMeetingProvider",
        "transactionId",
    }
)
#: read-only properties Exchange ignores when a client sends them back
IGNORED = frozenset(
    {
        "@odata.type",
        "@odata.etag",
        "@odata.context",
        "id",
        "iCalUId",
        "changeKey",
        "createdDateTime",
        "lastModifiedDateTime",
        "type",
        "seriesMasterId",
        "webLink",
        "onlineMeeting",
        "organizer",
        "isOrganizer",
        "responseStatus",
        "isCancelled",
        "hasAttachments",
        "bodyPreview",
        "onlineMeetingUrl",
        "originalStart",
        "originalStartTimeZone",
        "originalEndTimeZone",
        "isDraft",
    }
)
_ENUMS: dict[str, tuple[str, ...]] = {
    "importance": ("low", "normal", "high"),
    "sensitivity": ("normal", "personal", "private", "confidential"),
    "showAs": ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown"),
}
_BOOLS = ("isReminderOn", "allowNewTimeProposals", "responseRequested", "hideAttendees", "isAllDay")
_ATTENDEE_TYPES = ("required", "optional", "resource")
_EXTENDED_ID = re.compile(
    r"^(String|Integer|Boolean|SystemTime|Double|Binary|Long|Guid|Currency|Short|Float)\s+"
    r"(\{[0-9a-fA-F-]{36}\}\s+(Name\s+\S.*|Id\s+0x[0-9a-fA-F]+)|0x[0-9a-fA-F]{4})$",
    re.IGNORECASE,
)
_EXTENDED_FILTER = re.compile(
    r"^\s*singleValueExtendedProperties/any\(\s*(\w+)\s*:\s*\1/id\s+eq\s+'((?:[^']|'')*)'\s+and\s+"
    r"\1/value\s+eq\s+'((?:[^']|'')*)'\s*\)\s*$",
    re.IGNORECASE,
)
_EXTENDED_EXPAND = re.compile(
    r"^\s*singleValueExtendedProperties\(\s*\$filter\s*=\s*id\s+eq\s+'((?:[^']|'')*)'\s*\)\s*$",
    re.IGNORECASE,
)


def calendar_extension(tenant: Tenant, saved: dict[str, Any] | None) -> CalendarStore:
    """The tenant's calendars (a tenant extension, persisted with it)."""
    store = CalendarStore(tenant.id)
    if saved:
        store.load_dict(saved)
    return store


# ---- helpers ----------------------------------------------------------------------------------------


def _json(body: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")), status_code=status, media_type="application/json"
    )


def _bad(message: str, code: str = "ErrorInvalidRequest") -> GraphErrorResponse:
    return GraphErrorResponse(400, code, message)


def _version(request: Request) -> str:
    return str(request.scope["path"]).split("/")[1]


def _base(request: Request) -> str:
    host = request.headers.get("host") or "127.0.0.1"
    return f"{request.scope.get('scheme', 'https')}://{host}/{_version(request)}"


def _store(tenant: Tenant) -> CalendarStore:
    store = tenant.extensions[CALENDAR_EXTENSION]
    assert isinstance(store, CalendarStore)
    return store


def _mailbox(tenant: Tenant, key: str) -> Mailbox:
    user = tenant.find_user(key)
    if user is None:
        raise GraphErrorResponse(404, "ErrorInvalidUser", f"The requested user '{key}' is invalid.")
    if user.id in _store(tenant).without_mailbox:
        raise GraphErrorResponse(
            404,
            "MailboxNotEnabledForRESTAPI",
            "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
        )
    return Mailbox(user.id, user.user_principal_name, user.display_name)


def _authorize(request: Request, caller: Caller, tenant: Tenant, key: str, *, write: bool) -> Mailbox:
    """The mailbox in the path, when the caller may read (or write) it; else Exchange's 403."""
    if not caller.is_app_only:
        user = tenant.find_user(key)
        scopes = {WRITE_PERMISSION} if write else set(READ_PERMISSIONS)
        if user is None or user.id != caller.delegated_user_id or not scopes & caller.scopes:
            raise GraphErrorResponse(
                403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
            )
        return _mailbox(tenant, key)
    wanted = (WRITE_PERMISSION,) if write else READ_PERMISSIONS
    # Entra grants and Exchange RBAC add up: either lets the app in
    entra = any(permission in caller.roles for permission in wanted)
    user = tenant.find_user(key)
    exchange = user is not None and any(
        mailbox_permitted(tenant, caller.app_id, permission, user.id, utcnow()) for permission in wanted
    )
    if not entra and not exchange:
        raise GraphErrorResponse(
            403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
        )
    return _mailbox(tenant, key)


def _attendee_mailboxes(tenant: Tenant) -> dict[str, Mailbox]:
    return {
        user.user_principal_name.lower(): Mailbox(user.id, user.user_principal_name, user.display_name)
        for user in tenant.users.values()
    }


def _check_value(name: str, value: Any) -> None:
    if name == "subject" and not isinstance(value, str):
        raise _bad("subject must be a string.")
    if name == "body":
        if not isinstance(value, dict) or str(value.get("contentType", "text")).lower() not in (
            "text",
            "html",
        ):
            raise _bad("body must be an object with contentType text or html and content.")
        if not isinstance(value.get("content", ""), str):
            raise _bad("body.content must be a string.")
    if name in _ENUMS and value not in _ENUMS[name]:
        raise _bad(f"{name} must be one of {', '.join(_ENUMS[name])}.")
    if name in _BOOLS and not isinstance(value, bool):
        raise _bad(f"{name} must be true or false.")
    if name == "categories" and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
        raise _bad("categories must be a list of strings.")
    if name == "reminderMinutesBeforeStart" and (isinstance(value, bool) or not isinstance(value, int)):
        raise _bad("reminderMinutesBeforeStart must be a whole number.")
    if name in ("location",) and not isinstance(value, dict):
        raise _bad('location must be an object such as {"displayName": "Room 1"}.')
    if name == "locations" and (not isinstance(value, list) or not all(isinstance(v, dict) for v in value)):
        raise _bad("locations must be a list of location objects.")
    if name == "attendees":
        if not isinstance(value, list):
            raise _bad("attendees must be a list.")
        for attendee in value:
            address = (
                (attendee.get("emailAddress") or {}).get("address") if isinstance(attendee, dict) else None
            )
            if not isinstance(address, str) or "@" not in address:
                raise _bad("Each attendee needs emailAddress.address, an email address.")
            if attendee.get("type", "required") not in _ATTENDEE_TYPES:
                raise _bad(f"attendee type must be one of {', '.join(_ATTENDEE_TYPES)}.")


def _extended(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, list):
        raise _bad("singleValueExtendedProperties must be a list of {id, value}.")
    result: dict[str, str] = {}
    for item in value:
        prop_id = item.get("id") if isinstance(item, dict) else None
        prop_value = item.get("value") if isinstance(item, dict) else None
        if not isinstance(prop_id, str) or not _EXTENDED_ID.match(prop_id.strip()):
            raise _bad(
                f"The extended property id '{prop_id}' is not valid: use 'String {{guid}} Name name'.",
                "ErrorInvalidProperty",
            )
        if not isinstance(prop_value, str):
            raise _bad("An extended property value must be a string.", "ErrorInvalidProperty")
        result[prop_id.strip()] = prop_value
    return result


def _read_body(body: Mapping[str, Any], *, create: bool) -> dict[str, Any]:
    """The writable properties of a request body, checked; unknown properties are Graph's 400."""
    changes: dict[str, Any] = {}
    for name, value in body.items():
        if name in IGNORED:
            continue
        if name not in WRITABLE:
            raise _bad(
                f"The property '{name}' does not exist on type 'microsoft.graph.event'. Make sure to only use "
                "property names that are defined by the type or mark the type as open type.",
                "RequestBodyRead",
            )
        if name == "transactionId" and not create:
            raise _bad("The transactionId of an event cannot be changed.")
        if value is not None:
            _check_value(name, value)
        changes[name] = value
    return changes


def _times(changes: dict[str, Any]) -> tuple[tuple[dt.datetime, str] | None, tuple[dt.datetime, str] | None]:
    try:
        start = parse_date_time_zone("start", changes.pop("start")) if "start" in changes else None
        end = parse_date_time_zone("end", changes.pop("end")) if "end" in changes else None
    except TimeInvalid as error:
        raise _bad(str(error), error.code) from None
    return start, end


def _view_or_404(store: CalendarStore, mailbox: Mailbox, event_id: str) -> EventView:
    view = store.find(mailbox.id, event_id)
    if view is None:
        raise GraphErrorResponse(404, "ErrorItemNotFound", "The specified object was not found in the store.")
    return view


def _render(request: Request, view: EventView) -> dict[str, Any]:
    try:
        zone = preferred_zone(request.headers.get("prefer"))
    except TimeInvalid as error:
        raise _bad(str(error), error.code) from None
    expand = request.query_params.get("$expand")
    wanted: set[str] | None = None
    if expand:
        match = _EXTENDED_EXPAND.match(expand)
        if match is None:
            raise _bad(
                f"Parsing OData Select and Expand failed: unsupported $expand '{expand}'.", "BadRequest"
            )
        wanted = {match.group(1).replace("''", "'").strip().lower()}
    return render_event(view, base_url=_base(request), zone=zone, expand_extended=wanted)


def _publish(
    request: Request, tenant: Tenant, mailbox: Mailbox, change_type: str, item: dict[str, Any]
) -> None:
    """Tell change notifications of a change to an event of ``mailbox`` (topic ``users/{id}/events``)."""
    _publish_to(request, tenant, mailbox.id, change_type, item)


def _publish_to(
    request: Request, tenant: Tenant, mailbox_id: str, change_type: str, item: dict[str, Any]
) -> None:
    path = f"Users/{mailbox_id}/Events/{item['id']}"
    data = {k: v for k, v in item.items() if k != "@odata.context"}
    runtime_of(request).notifications.publish(
        Change(
            tenant_id=tenant.id,
            change_type=change_type,
            resource=path,
            odata_type="#Microsoft.Graph.Event",
            resource_data={"@odata.type": "#microsoft.graph.event", "@odata.id": path, **data},
            topics=(f"users/{mailbox_id}/events",),
        )
    )


def _publish_copies(request: Request, tenant: Tenant, view: EventView, change_type: str) -> None:
    """The attendees' copies changed with the organizer's event (an invitation, an update, a
    cancellation): each attendee's calendar tells its own subscribers."""
    store = _store(tenant)
    for mailbox_id, copy_id in view.event.invited.items():
        copy = store.find(mailbox_id, copy_id)
        if copy is not None:
            _publish_to(request, tenant, mailbox_id, change_type, _render(request, copy))


def _window(request: Request) -> tuple[dt.datetime, dt.datetime]:
    params = {key.lower(): value for key, value in request.query_params.items()}
    raw_start, raw_end = params.get("startdatetime"), params.get("enddatetime")
    if not raw_start or not raw_end:
        raise _bad(
            "This request requires a time window specified by the query string parameters StartDateTime and "
            "EndDateTime.",
            "ErrorInvalidParameter",
        )
    try:
        start, end = (
            dt.datetime.fromisoformat(value.replace("Z", "+00:00")) for value in (raw_start, raw_end)
        )
    except ValueError:
        raise _bad("startDateTime and endDateTime must be ISO 8601 times.", "ErrorInvalidParameter") from None
    start = start if start.tzinfo else start.replace(tzinfo=dt.UTC)
    end = end if end.tzinfo else end.replace(tzinfo=dt.UTC)
    return start, end


def _page(request: Request, items: list[dict[str, Any]], context: str) -> Response:
    try:
        top = int(request.query_params.get("$top", PAGE_SIZE))
        skip = int(request.query_params.get("$skip", 0))
    except ValueError:
        raise _bad("$top and $skip must be whole numbers.", "BadRequest") from None
    if not 1 <= top <= MAX_PAGE_SIZE or skip < 0:
        raise _bad(f"$top must be from 1 to {MAX_PAGE_SIZE}, $skip not negative.", "BadRequest")
    page: dict[str, Any] = {"@odata.context": context, "value": items[skip : skip + top]}
    if skip + top < len(items):
        query = {key: value for key, value in request.query_params.items() if key != "$skip"}
        query["$skip"] = str(skip + top)
        path = str(request.scope["path"])[len(_version(request)) + 1 :]
        page["@odata.nextLink"] = f"{_base(request)}{path}?{urllib.parse.urlencode(query)}"
    return _json(page)


def _online_meeting(tenant: Tenant, event_view: EventView, mailbox: Mailbox) -> None:
    """Exchange makes the Teams meeting of an online event: a sandbox onlineMeeting with its join URL."""
    event = event_view.event
    meetings = tenant.extensions.get("meetings")
    if not isinstance(meetings, MeetingStore):
        return
    meeting = meetings.create(
        Organizer(mailbox.id, mailbox.address, mailbox.name),
        {
            "subject": event.props.get("subject"),
            "startDateTime": event.start.isoformat().replace("+00:00", "Z"),
            "endDateTime": event.end.isoformat().replace("+00:00", "Z"),
        },
    )
    url = join_web_url(tenant.id, meeting.organizer_id, meeting.thread_key)
    _store(tenant).set_online_meeting(
        event, {"joinUrl": url, "conferenceId": meeting.conference_id, "tollNumber": TOLL_NUMBER}, meeting.id
    )
    body = dict(event.props.get("body") or {"contentType": "html", "content": ""})
    block = f"Microsoft Teams meeting. Join on your computer, mobile app or room device: {url}"
    if str(body.get("contentType", "text")).lower() == "html":
        block = f'<div><a href="{url}">Join the meeting now</a></div>'
    body["content"] = f"{body.get('content') or ''}{block}"
    event.props["body"] = body


# ---- handlers ----------------------------------------------------------------------------------------


async def create_event(request: Request) -> Response:
    caller, tenant = caller_tenant(request)
    mailbox = _authorize(request, caller, tenant, request.path_params["user"], write=True)
    changes = _read_body(await json_object_body(request), create=True)
    start, end = _times(changes)
    if start is None or end is None:
        raise _bad("An event needs a start and an end.")
    if end[0] < start[0]:
        raise _bad("The end time of the event must not be before its start time.")
    provider = changes.pop("onlineMeetingProvider", None) or "unknown"
    if provider not in PROVIDERS:
        raise _bad(f"onlineMeetingProvider must be one of {', '.join(PROVIDERS)}.")
    online = bool(changes.pop("isOnlineMeeting", False))
    if online and provider == "unknown":
        provider = "teamsForBusiness"
    store = _store(tenant)
    settings = runtime_of(request).state.settings.meetings
    try:
        event, created = store.create(
            mailbox,
            start=start,
            end=end,
            props={
                k: v
                for k, v in changes.items()
                if k not in ("recurrence", "singleValueExtendedProperties", "transactionId")
            },
            recurrence=changes.get("recurrence"),
            transaction_id=changes.get("transactionId"),
            extended=_extended(changes.get("singleValueExtendedProperties")),
            online=(online, provider if online else "unknown"),
            now=utcnow(),
            dedupe_transactions=settings.transaction_id_duplicate == "returnExisting",
            attendee_mailboxes=_attendee_mailboxes(tenant),
        )
    except RecurrenceInvalid as error:
        raise _bad(str(error)) from None
    view = EventView(event, mailbox.id, event.id, True)
    if created and online and provider == "teamsForBusiness":
        _online_meeting(tenant, view, mailbox)
    runtime_of(request).state.changed()
    rendered = _render(request, view)
    if created:
        _publish(request, tenant, mailbox, "created", rendered)
        _publish_copies(request, tenant, view, "created")
    return _json(rendered, 201)


async def list_events(request: Request) -> Response:
    caller, tenant = caller_tenant(request)
    mailbox = _authorize(request, caller, tenant, request.path_params["user"], write=False)
    store = _store(tenant)
    query = request.query_params.get("$filter")
    if query:
        match = _EXTENDED_FILTER.match(query)
        if match is None:
            raise _bad(
                f"Invalid filter clause: the sandbox filters events on singleValueExtendedProperties only ({query}).",
                "BadRequest",
            )
        views = store.find_by_extended(
            mailbox.id, match.group(2).replace("''", "'"), match.group(3).replace("''", "'")
        )
    else:
        views = store.events(mailbox.id)
    items = [_render(request, view) for view in views]
    for item in items:
        item.pop("@odata.context", None)
    return _page(request, items, f"{_base(request)}/$metadata#users('{mailbox.id}')/events")


async def get_event(request: Request) -> Response:
    caller, tenant = caller_tenant(request)
    mailbox = _authorize(request, caller, tenant, request.path_params["user"], write=False)
    return _json(_render(request, _view_or_404(_store(tenant), mailbox, request.path_params["event"])))


async def update_event(request: Request) -> Response:
    caller, tenant = caller_tenant(request)
    mailbox = _authorize(request, caller, tenant, request.path_params["user"], write=True)
    store = _store(tenant)
    view = _view_or_404(store, mailbox, request.path_params["event"])
    changes = _read_body(await json_object_body(request), create=False)
    if not view.is_organizer:
        raise _bad("The sandbox changes a meeting only in its organizer's calendar.")
    event = view.event
    for name in ("isOnlineMeeting", "onlineMeetingProvider"):
        if name in changes:
            wanted = changes.pop(name)
            current = event.is_online_meeting if name == "isOnlineMeeting" else event.online_meeting_provider
            if event.is_online_meeting and wanted != current:
                raise _bad(f"{name} cannot be changed once the event is an online meeting.")
    if view.occurrence is not None and "recurrence" in changes:
        raise _bad("The recurrence of an occurrence cannot be set: change the series master.")
    start, end = _times(changes)
    old_start, old_end = view.start_end()
    new_start = start[0] if start else old_start
    if start is not None and end is None:  # a new start alone keeps the duration
        end = (new_start + (old_end - old_start), start[1])
    new_end = end[0] if end else old_end
    if new_end < new_start:
        raise _bad("The end time of the event must not be before its start time.")
    try:
        store.update(
            view,
            {k: v for k, v in changes.items() if k not in ("recurrence", "singleValueExtendedProperties")},
            start=start,
            end=end,
            recurrence=changes.get("recurrence"),
            extended=_extended(changes.get("singleValueExtendedProperties")),
            now=utcnow(),
            attendee_mailboxes=_attendee_mailboxes(tenant),
        )
    except RecurrenceInvalid as error:
        raise _bad(str(error)) from None
    runtime_of(request).state.changed()
    refreshed = store.find(mailbox.id, view.id)
    assert refreshed is not None
    rendered = _render(request, refreshed)
    _publish(request, tenant, mailbox, "updated", rendered)
    _publish_copies(request, tenant, refreshed, "updated")
    return _json(rendered)


async def delete_event(request: Request) -> Response:
    caller, tenant = caller_tenant(request)
    mailbox = _authorize(request, caller, tenant, request.path_params["user"], write=True)
    store = _store(tenant)
    view = _view_or_404(store, mailbox, request.path_params["event"])
    if view.is_organizer:
        store.cancel(view, utcnow())  # the organizer deleting a meeting sends its cancellation
    else:
        store.remove_attendee_copy(view)
    runtime_of(request).state.changed()
    _publish(request, tenant, mailbox, "deleted", {"id": view.id})
    if view.is_organizer:
        _publish_copies(request, tenant, view, "updated")  # the copies show the cancellation
    return Response(status_code=204)


async def cancel_event(request: Request) -> Response:
    caller, tenant = caller_tenant(request)
    mailbox = _authorize(request, caller, tenant, request.path_params["user"], write=True)
    store = _store(tenant)
    view = _view_or_404(store, mailbox, request.path_params["event"])
    body = await json_object_body(request)
    comment = body.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise _bad("comment must be a string.")
    if not view.is_organizer:
        raise _bad("Your request can't be completed. You need to be an organizer to cancel a meeting.")
    store.cancel(view, utcnow())
    runtime_of(request).state.changed()
    _publish(request, tenant, mailbox, "deleted", {"id": view.id})
    _publish_copies(request, tenant, view, "updated")
    return Response(status_code=202)


async def list_instances(request: Request) -> Response:
    caller, tenant = caller_tenant(request)
    mailbox = _authorize(request, caller, tenant, request.path_params["user"], write=False)
    store = _store(tenant)
    view = _view_or_404(store, mailbox, request.path_params["event"])
    start, end = _window(request)
    items = [_render(request, occurrence) for occurrence in store.occurrences(view, start, end)]
    for item in items:
        item.pop("@odata.context", None)
    return _page(request, items, f"{_base(request)}/$metadata#Collection(event)")


async def calendar_view(request: Request) -> Response:
    caller, tenant = caller_tenant(request)
    mailbox = _authorize(request, caller, tenant, request.path_params["user"], write=False)
    start, end = _window(request)
    items = [_render(request, view) for view in _store(tenant).calendar_view(mailbox.id, start, end)]
    for item in items:
        item.pop("@odata.context", None)
    return _page(request, items, f"{_base(request)}/$metadata#users('{mailbox.id}')/calendarView")


def routes() -> list[BaseRoute]:
    """The calendar routes under /v1.0 and /beta."""
    result: list[BaseRoute] = []
    for version in ("v1.0", "beta"):
        for events in ("events", "calendar/events"):
            prefix = f"/{version}/users/{{user}}/{events}"
            result += [
                Route(prefix, create_event, methods=["POST"]),
                Route(prefix, list_events, methods=["GET"]),
                Route(f"{prefix}/{{event}}", get_event, methods=["GET"]),
                Route(f"{prefix}/{{event}}", update_event, methods=["PATCH"]),
                Route(f"{prefix}/{{event}}", delete_event, methods=["DELETE"]),
                Route(f"{prefix}/{{event}}/cancel", cancel_event, methods=["POST"]),
                Route(f"{prefix}/{{event}}/instances", list_instances, methods=["GET"]),
            ]
        for view in ("calendarView", "calendar/calendarView"):
            result.append(Route(f"/{version}/users/{{user}}/{view}", calendar_view, methods=["GET"]))
    return result
