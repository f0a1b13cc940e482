"""Graph's meeting-artifact refusals become errors that say what to do, whatever status they come
with; and a streamed download that breaks off is a TransportError that says it resumes."""

from __future__ import annotations

import httpx
import pytest
from graph_fakes import GRAPH, settings

from meetgate.graph.errors import (
    AuthorizationError,
    CalendarMeetingRequired,
    ChannelMeetingUnsupported,
    ConflictError,
    SpeakerAttributionDisabled,
    TranscriptAccessDisabled,
)
from meetgate.graph.http import CallPlan, GraphCallContext
from meetgate.graph.retry import RetryPolicy

PATH = "/v1.0/users/u1/onlineMeetings/m1/transcripts"


def _error(status: int, code: str, message: str, inner: dict | None = None):
    plan = CallPlan(
        "GET",
        GRAPH + PATH,
        settings(),
        RetryPolicy(),
        context=GraphCallContext(operation="list the transcripts", organizer="u1", meeting_id="m1"),
    )
    body = {"error": {"code": code, "message": message, "innerError": inner or {}}}
    return plan.error_for(httpx.Response(status, json=body, request=httpx.Request("GET", GRAPH + PATH)))


def test_transcripts_turned_off_name_the_switch():
    error = _error(403, "Forbidden", "Access denied.", {"code": "GraphAccessToTranscriptsDisabled"})
    assert isinstance(error, TranscriptAccessDisabled) and isinstance(error, AuthorizationError)
    assert error.inner_code == "GraphAccessToTranscriptsDisabled"
    assert "Set-CsTeamsMeetingConfiguration -EnableGraphTranscriptAccess $true" in error.remedy


def test_speaker_attribution_refused():
    error = _error(403, "Forbidden", "Not allowed.", {"code": "SpeakerAttributionNotAllowed"})
    assert isinstance(error, SpeakerAttributionDisabled) and "--no-speakers" in error.remedy


@pytest.mark.parametrize("status", [400, 403, 404, 412])
def test_a_standalone_meeting_is_told_by_its_message_at_any_status(status):
    error = _error(
        status,
        "PreconditionFailed",
        "No iCalUid found for the meeting. This API is supported only for calendar backed OnlineMeeting.",
    )
    assert isinstance(error, CalendarMeetingRequired) and error.status == status
    assert "meetgate meetings create --calendar" in error.remedy


def test_channel_meetings():
    error = _error(400, "BadRequest", "Channel based meetings are currently not supported.")
    assert isinstance(error, ChannelMeetingUnsupported) and "channel" in error.remedy


def test_other_refusals_are_unchanged():
    assert type(_error(412, "PreconditionFailed", "Something else.")) is ConflictError
    assert not isinstance(_error(403, "Forbidden", "Access denied."), TranscriptAccessDisabled)


# --- a download that breaks off, then resumes -------------------------------------------------------

DATA = bytes(range(256)) * 64  # 16 KiB


class _BreaksOff(httpx.SyncByteStream):
    def __iter__(self):
        yield DATA[:5000]
        raise httpx.ReadError("connection reset")


def _server(requests: list[httpx.Request], broken: bool):
    def handle(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        path = request.url.path
        if path.endswith("/recordings/r1"):
            return httpx.Response(200, json={"id": "r1", "createdDateTime": "2030-01-01T10:00:00Z"})
        assert path.endswith("/recordings/r1/content")
        ranged = request.headers.get("range")
        if ranged:
            start = int(ranged.removeprefix("bytes=").rstrip("-"))
            headers = {"content-range": f"bytes {start}-{len(DATA) - 1}/{len(DATA)}"}
            return httpx.Response(206, content=DATA[start:], headers=headers)
        if broken:
            return httpx.Response(200, stream=_BreaksOff(), headers={"content-length": str(len(DATA))})
        return httpx.Response(200, content=DATA)

    return httpx.MockTransport(handle)


def test_a_broken_download_resumes_from_the_partial_file(tmp_path):
    import hashlib

    from graph_fakes import fake_jwt

    from meetgate.graph.artifacts import ArtifactsService
    from meetgate.graph.auth import StaticTokenProvider
    from meetgate.graph.errors import TransportError
    from meetgate.graph.http import GraphHttp

    token = StaticTokenProvider(fake_jwt({"roles": ["OnlineMeetingRecording.Read.All"], "idtyp": "app"}))
    organizer = "0d4b1b39-7b0c-4f3e-9a77-6a2f4bb5b7c1"  # an object id: no directory lookup
    requests: list[httpx.Request] = []
    seen: list[int] = []

    def service(broken: bool) -> ArtifactsService:
        http = GraphHttp(settings(), token, transport=_server(requests, broken))
        return ArtifactsService(http)

    with pytest.raises(TransportError) as broke:
        service(True).download_recording(organizer, "MSo_m1", "r1", tmp_path)
    assert "resumes" in broke.value.remedy
    [part] = tmp_path.glob("*.part")
    assert part.read_bytes() == DATA[:5000]

    done = service(False).download_recording(
        organizer, "MSo_m1", "r1", tmp_path, progress=lambda n, total: seen.append(n)
    )
    assert requests[-1].headers["range"] == "bytes=5000-"
    assert done.resumed_from == 5000 and done.path.read_bytes() == DATA
    assert done.sha256 == hashlib.sha256(DATA).hexdigest() and seen[0] == 5000 and seen[-1] == len(DATA)
    assert not part.exists()
