"""Graph routes for what held meetings left behind: attendance reports, transcripts, recordings.

Under ``/v1.0`` and ``/beta``, for ``/users/{userId}/onlineMeetings/{meetingId}`` (app-only) and
``/me/onlineMeetings/{meetingId}`` (delegated):

- ``/attendanceReports[/{reportId}[/attendanceRecords]]`` — the held sessions' reports (the 50 most
  recent, newest first); a meeting never held keeps the synthetic report of :mod:`meetings_api`;
- ``/transcripts``, ``/transcripts/{id}``, ``/transcripts/{id}/content`` (WebVTT), ``…/metadataContent``;
- ``/recordings``, ``/recordings/{id}``, ``/recordings/{id}/content`` (``video/mp4``, ``Range`` → 206);
- ``/users/{userId}/onlineMeetings/getAllTranscripts(meetingOrganizerUserId='…',startDateTime=…,endDateTime=…)``
  and ``getAllRecordings(…)`` (or ``?$filter=MeetingOrganizer/User/Id eq '…'``), app-only.

Order of checks: path form → permission of the kind → organizer → Teams application access policy →
meeting → calendar placement (transcripts, recordings) → the tenant's transcript switch → availability.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from meetgate_sandbox.http import GraphErrorResponse
from meetgate_sandbox.meeting_artifacts import (
    MP4_CONTENT_TYPE,
    STANDALONE_ERRORS,
    STANDALONE_MESSAGE,
    ArtifactStore,
    MeetingSession,
    recording_bytes,
    render_recording,
    render_report,
    render_transcript,
    transcript_metadata,
    transcript_vtt,
)
from meetgate_sandbox.meeting_sessions import artifact_store, is_calendar_backed, sandbox_now
from meetgate_sandbox.meetings import MeetingError, parse_datetime
from meetgate_sandbox.meetings_api import (
    ATTENDANCE_ROLES,
    ATTENDANCE_SCOPES,
    MeetingRoutes,
    _base,
    _json,
    _Target,
    bind_handler,
)
from meetgate_sandbox.meetings_backend import backend_of
from meetgate_sandbox.runtime import runtime_of
from meetgate_sandbox.state import Tenant

__all__ = ["ArtifactRoutes", "routes"]

TRANSCRIPT_PERMISSION = "OnlineMeetingTranscript.Read.All"
RECORDING_PERMISSION = "OnlineMeetingRecording.Read.All"
_PERMISSIONS = {
    "transcripts": (frozenset({TRANSCRIPT_PERMISSION}), frozenset({TRANSCRIPT_PERMISSION})),
    "recordings": (frozenset({RECORDING_PERMISSION}), frozenset({RECORDING_PERMISSION})),
    "attendance": (ATTENDANCE_ROLES, ATTENDANCE_SCOPES),
}
VTT = "text/vtt"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
#: a transcript without speakers (asked for with ``Accept``; ``$format`` does not take it)
UNATTRIBUTED = "application/vnd.microsoft.graph.transcript+text"
_PARAM = re.compile(r"(\w+)\s*=\s*('(?:[^']|'')*'|[^,)]*)")
_ORGANIZER_FILTER = re.compile(r"^\s*MeetingOrganizer/User/Id\s+eq\s+'([^']*)'\s*$", re.IGNORECASE)
_CORRELATION_FILTER = re.compile(r"^\s*contentCorrelationId\s+eq\s+'([^']*)'\s*$", re.IGNORECASE)
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


class _GetAllConvertor(Convertor[str]):
    """``getAllTranscripts(...)`` / ``getAllRecordings(...)`` as one path segment (any case)."""

    regex = r"(?i:getAll(?:Transcripts|Recordings)(?:\([^/]*\))?)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("getall", _GetAllConvertor())


class _ArtifactKindConvertor(Convertor[str]):
    regex = r"(?:transcripts|recordings)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("artifacts", _ArtifactKindConvertor())


def _tenant(request: Request, tenant_id: str) -> Tenant:
    tenant = runtime_of(request).state.tenants.get(tenant_id)
    if tenant is None:
        raise GraphErrorResponse(401, "InvalidAuthenticationToken", "Access token validation failure.")
    return tenant


class ArtifactRoutes(MeetingRoutes):
    """The artifact routes, over the meeting routes' preamble (permission, organizer, policy)."""

    # -- preamble

    def _meeting_target(self, request: Request, kind: str) -> tuple[_Target, Tenant]:
        target = self._target(request, write=False, attendance=True, permissions=_PERMISSIONS[kind])
        meeting = target.store.get(target.organizer.id, request.path_params["meetingId"])
        tenant = _tenant(request, target.caller.tenant_id)
        if kind != "attendance":
            if not is_calendar_backed(tenant, meeting.id):
                status, code = STANDALONE_ERRORS[artifact_store(tenant).settings.standalone_error]
                raise GraphErrorResponse(status, code, STANDALONE_MESSAGE)
            self._transcripts_allowed(kind, artifact_store(tenant))
        return target, tenant

    @staticmethod
    def _transcripts_allowed(kind: str, store: ArtifactStore) -> None:
        if kind == "transcripts" and not store.settings.graph_transcript_access:
            raise GraphErrorResponse(
                403,
                "Forbidden",
                "Graph API access to transcripts is disabled for this tenant: a Teams administrator must "
                "turn on Microsoft Graph access to transcripts in the tenant's meeting settings.",
                inner={"code": "GraphAccessToTranscriptsDisabled"},
            )

    def _meeting_url(self, request: Request, target: _Target, meeting_id: str) -> str:
        return f"{_base(request)}/users/{target.organizer.id}/onlineMeetings/{meeting_id}"

    def _sessions(
        self, request: Request, kind: str, *, listing: bool = True
    ) -> tuple[_Target, list[MeetingSession], Tenant]:
        """The available sessions that made a ``kind`` artifact; an empty listing is 404 when the
        not-ready switch says so."""
        target, tenant = self._meeting_target(request, kind)
        store = artifact_store(tenant)
        now = sandbox_now(runtime_of(request))
        made = [s for s in store.available(request.path_params["meetingId"], now) if getattr(s, kind[:-1])]
        if listing and not made and store.settings.not_ready == "notFound":
            raise GraphErrorResponse(404, "NotFound", f"No {kind[:-1]} is available for this meeting yet.")
        return target, made, tenant

    def _one(self, request: Request, kind: str) -> tuple[_Target, MeetingSession, Tenant]:
        target, made, tenant = self._sessions(request, kind, listing=False)
        wanted = request.path_params["artifactId"]
        for session in made:
            if (session.transcript_id if kind == "transcripts" else session.recording_id) == wanted:
                return target, session, tenant
        raise GraphErrorResponse(404, "NotFound", f"The requested {kind[:-1]} was not found.")

    # -- attendance (overrides the synthetic report once a meeting was held)

    def _held(self, request: Request) -> tuple[_Target, list[MeetingSession]] | None:
        target, tenant = self._meeting_target(request, "attendance")
        store = artifact_store(tenant)
        meeting_id = request.path_params["meetingId"]
        if not store.held(meeting_id):
            return None
        return target, store.reports(meeting_id, sandbox_now(runtime_of(request)))

    async def attendance_reports(self, request: Request) -> Response:
        held = self._held(request)
        if held is None:
            return await super().attendance_reports(request)
        target, sessions = held
        meeting_id = request.path_params["meetingId"]
        expand = "attendancerecords" in request.query_params.get("$expand", "").lower()
        values = []
        for session in sessions:
            report = render_report(session)
            if not expand:
                report["attendanceRecords"] = []
            values.append(report)
        context = target.context(request, f"('{meeting_id}')/attendanceReports")
        return _json({"@odata.context": context, "value": values})

    def _report(self, request: Request) -> tuple[_Target, dict[str, Any]] | None:
        held = self._held(request)
        if held is None:
            return None
        target, sessions = held
        for session in sessions:
            if session.id == request.path_params["reportId"]:
                return target, render_report(session)
        raise GraphErrorResponse(404, "NotFound", "The specified attendance report was not found.")

    async def attendance_report(self, request: Request) -> Response:
        found = self._report(request)
        if found is None:
            return await super().attendance_report(request)
        target, report = found
        if "attendancerecords" not in request.query_params.get("$expand", "").lower():
            report = {k: v for k, v in report.items() if k != "attendanceRecords"}
        meeting_id, report_id = request.path_params["meetingId"], request.path_params["reportId"]
        context = target.context(request, f"('{meeting_id}')/attendanceReports('{report_id}')")
        return _json({"@odata.context": context, **report})

    async def attendance_records(self, request: Request) -> Response:
        found = self._report(request)
        if found is None:
            return await super().attendance_records(request)
        target, report = found
        meeting_id, report_id = request.path_params["meetingId"], request.path_params["reportId"]
        context = target.context(
            request, f"('{meeting_id}')/attendanceReports('{report_id}')/attendanceRecords"
        )
        return _json({"@odata.context": context, "value": report["attendanceRecords"]})

    # -- transcripts and recordings

    def _artifact(
        self, request: Request, target: _Target, session: MeetingSession, kind: str
    ) -> dict[str, Any]:
        url = self._meeting_url(request, target, session.meeting_id)
        render = render_transcript if kind == "transcripts" else render_recording
        return render(session, target.caller.tenant_id, url)

    async def list_artifacts(self, request: Request) -> Response:
        kind = request.path_params["kind"]
        target, made, _ = self._sessions(request, kind)
        meeting_id = request.path_params["meetingId"]
        values = [self._artifact(request, target, s, kind) for s in made]
        query = request.query_params.get("$filter")
        if query:
            match = _CORRELATION_FILTER.match(query)
            if match is None:
                raise GraphErrorResponse(
                    400, "BadRequest", f"Unsupported filter on {kind}: use contentCorrelationId eq '{{id}}'."
                )
            values = [v for v in values if v["contentCorrelationId"] == match.group(1)]
        return _json({"@odata.context": target.context(request, f"('{meeting_id}')/{kind}"), "value": values})

    async def get_artifact(self, request: Request) -> Response:
        kind = request.path_params["kind"]
        target, session, _ = self._one(request, kind)
        meeting_id = request.path_params["meetingId"]
        context = target.context(request, f"('{meeting_id}')/{kind}/$entity")
        return _json({"@odata.context": context, **self._artifact(request, target, session, kind)})

    async def transcript_content(self, request: Request) -> Response:
        request.path_params["kind"] = "transcripts"
        _, session, tenant = self._one(request, "transcripts")
        wanted = request.query_params.get("$format") or ""
        if wanted and wanted.lower() != VTT:
            message = (
                "The docx transcript format was deprecated on May 31, 2023: use $format=text/vtt."
                if wanted.lower() == DOCX
                else f"The format '{wanted}' is not supported: use $format=text/vtt."
            )
            raise GraphErrorResponse(400, "BadRequest", message)
        settings = artifact_store(tenant).settings
        short = settings.vtt_timestamps == "short"
        if not wanted and UNATTRIBUTED in request.headers.get("accept", "").lower():
            return Response(
                transcript_vtt(session, speakers=False, short_times=short), media_type=UNATTRIBUTED
            )
        if not settings.speaker_attribution and settings.speaker_attribution_off == "refuse":
            raise GraphErrorResponse(
                403,
                "Forbidden",
                "Speaker attribution of transcripts is turned off for this tenant: ask for the transcript "
                f"without speakers (Accept: {UNATTRIBUTED}).",
                inner={"code": "SpeakerAttributionNotAllowed"},
            )
        text = transcript_vtt(session, speakers=settings.speaker_attribution, short_times=short)
        return Response(text, media_type=VTT)

    async def transcript_metadata(self, request: Request) -> Response:
        request.path_params["kind"] = "transcripts"
        _, session, tenant = self._one(request, "transcripts")
        speakers = artifact_store(tenant).settings.speaker_attribution
        return Response(transcript_metadata(session, speakers=speakers), media_type=VTT)

    async def recording_content(self, request: Request) -> Response:
        request.path_params["kind"] = "recordings"
        _, session, _ = self._one(request, "recordings")
        data = recording_bytes(session)
        total = len(data)
        headers = {"Accept-Ranges": "bytes"}
        header = request.headers.get("range")
        if not header:
            return Response(data, media_type=MP4_CONTENT_TYPE, headers=headers)
        match = _RANGE.match(header)
        if match is None or not (match.group(1) or match.group(2)):
            return Response(data, media_type=MP4_CONTENT_TYPE, headers=headers)  # ignored, as RFC 9110 allows
        first, last = match.group(1), match.group(2)
        if first:
            start, end = int(first), min(int(last) if last else total - 1, total - 1)
        else:
            start, end = max(total - int(last), 0), total - 1
        if start >= total or end < start:
            return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{total}"})
        headers["Content-Range"] = f"bytes {start}-{end}/{total}"
        return Response(data[start : end + 1], status_code=206, media_type=MP4_CONTENT_TYPE, headers=headers)

    # -- getAllTranscripts / getAllRecordings

    async def get_all(self, request: Request) -> Response:
        call = request.path_params["call"]
        kind = "transcripts" if call.lower().startswith("getalltranscripts") else "recordings"
        if "userId" not in request.path_params:
            raise GraphErrorResponse(400, "BadRequest", "This function supports application tokens only.")
        target = self._target(request, write=False, permissions=_PERMISSIONS[kind])
        params = dict(_PARAM.findall(call[call.index("(") + 1 : -1])) if "(" in call else {}
        organizer_id = params.get("meetingOrganizerUserId", "").strip("'").replace("''", "'")
        by_filter = _ORGANIZER_FILTER.match(request.query_params.get("$filter", ""))
        if not organizer_id and by_filter:
            organizer_id = by_filter.group(1)
        if not organizer_id:
            raise GraphErrorResponse(
                400,
                "BadRequest",
                "The function parameter meetingOrganizerUserId or a filter on MeetingOrganizer/User/Id is required.",
            )
        organizer = self._organizer(target.caller.tenant_id, organizer_id)
        if not self.backend.policy_engine(target.caller.tenant_id).allows(organizer.id, target.caller.app_id):
            raise self._policy_denied(target.caller, organizer, False)
        tenant = _tenant(request, target.caller.tenant_id)
        store = artifact_store(tenant)
        self._transcripts_allowed(kind, store)
        bounds = []
        for name in ("startDateTime", "endDateTime"):
            raw = params.get(name, "").strip("'")
            bounds.append(_parse_bound(name, raw) if raw else None)
        now = sandbox_now(runtime_of(request))
        values = []
        for session in store.of_organizer(organizer.id, now):
            if not getattr(session, kind[:-1]):
                continue
            if (bounds[0] and session.available < bounds[0]) or (bounds[1] and session.available > bounds[1]):
                continue
            url = f"{_base(request)}/users/{organizer.id}/onlineMeetings/{session.meeting_id}"
            render = render_transcript if kind == "transcripts" else render_recording
            odata = (
                "#microsoft.graph.callTranscript"
                if kind == "transcripts"
                else "#microsoft.graph.callRecording"
            )
            values.append({"@odata.type": odata, **render(session, tenant.id, url)})
        return _page(request, values, "callTranscript" if kind == "transcripts" else "callRecording")


def _parse_bound(name: str, raw: str) -> dt.datetime:
    try:
        return parse_datetime(name, raw)
    except MeetingError as error:
        raise GraphErrorResponse(400, "BadRequest", error.message) from None


def _page(request: Request, values: list[dict[str, Any]], type_name: str) -> Response:
    try:
        top = int(request.query_params.get("$top", "0") or 0)
        skip = int(request.query_params.get("$skiptoken", "0") or 0)
    except ValueError:
        raise GraphErrorResponse(400, "BadRequest", "$top and $skiptoken must be integers.") from None
    body: dict[str, Any] = {"@odata.context": f"{_base(request)}/$metadata#Collection({type_name})"}
    page = values[skip:]
    if top > 0 and len(page) > top:
        page = page[:top]
        path = str(request.scope["path"])
        body["@odata.nextLink"] = (
            f"{_base(request).rsplit('/', 1)[0]}{path}?$top={top}&$skiptoken={skip + top}"
        )
    body["value"] = page
    return _json(body)


def routes(versions: tuple[str, ...] = ("v1.0", "beta")) -> list[BaseRoute]:
    """The artifact routes (mounted before the meeting routes: they share the ``{meetingId}`` prefix)."""
    result: list[BaseRoute] = []
    for version in versions:

        def bind(name: str, version: str = version) -> Any:
            return bind_handler(version, backend_of, ArtifactRoutes, name)

        result.append(
            Route(
                f"/{version}/users/{{userId}}/onlineMeetings/{{call:getall}}",
                bind("get_all"),
                methods=["GET"],
            )
        )
        for owner in ("/users/{userId}", "/me"):
            base = f"/{version}{owner}/onlineMeetings/{{meetingId}}"
            report = f"{base}/attendanceReports"
            result += [
                Route(report, bind("attendance_reports"), methods=["GET"]),
                Route(f"{report}/{{reportId}}", bind("attendance_report"), methods=["GET"]),
                Route(
                    f"{report}/{{reportId}}/attendanceRecords", bind("attendance_records"), methods=["GET"]
                ),
                Route(
                    f"{base}/transcripts/{{artifactId}}/content", bind("transcript_content"), methods=["GET"]
                ),
                Route(
                    f"{base}/transcripts/{{artifactId}}/metadataContent",
                    bind("transcript_metadata"),
                    methods=["GET"],
                ),
                Route(
                    f"{base}/recordings/{{artifactId}}/content", bind("recording_content"), methods=["GET"]
                ),
                Route(f"{base}/{{kind:artifacts}}", bind("list_artifacts"), methods=["GET"]),
                Route(f"{base}/{{kind:artifacts}}/{{artifactId}}", bind("get_artifact"), methods=["GET"]),
            ]
    return result
