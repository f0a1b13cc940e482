"""The real client (MSAL + httpx over TLS) against the sandbox: every operation, every error class
(each produced by the sandbox), retries under injected faults, and a bounded fault-load run."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from meetgate import certificates
from meetgate.composition import graph_settings_from_profile
from meetgate.graph.auth import StaticTokenProvider
from meetgate.graph.client import GraphClient
from meetgate.graph.credentials import CertificateCredential, ClientSecretCredential
from meetgate.graph.errors import (
    AccessPolicyMissing,
    AuthenticationError,
    BadRequestError,
    DelegatedTokenError,
    InvalidTokenError,
    MeetingNotFound,
    MissingRolesError,
    OrganizerIdRequired,
    OrganizerNotFound,
    ServiceError,
    ThrottledError,
    TransportError,
)
from meetgate.graph.ics import meeting_invitation_ics
from meetgate.graph.models import MeetingRequest, MeetingUpdate
from meetgate.graph.retry import RetryPolicy, no_jitter

START = (dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).replace(microsecond=0, second=0)
END = START + dt.timedelta(minutes=30)


class Sleeps(list[float]):
    """An instant sleep that remembers what it was asked to wait."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def settings(sandbox_app):
    return graph_settings_from_profile(sandbox_app.profile(), environ={})


@pytest.fixture
def graph(settings, sleeps) -> Iterator[GraphClient]:
    with GraphClient(settings, retry=RetryPolicy(jitter=no_jitter), sleep=sleeps) as client:
        yield client


@pytest.fixture
def faults(sandbox_control):
    sandbox_control.clear_faults()
    yield sandbox_control
    sandbox_control.clear_faults()


def _request(**kw) -> MeetingRequest:
    values = {"subject": "Advising session", "start": START, "end": END}
    values.update(kw)
    return MeetingRequest(**values)


def test_every_operation_against_the_sandbox(sandbox_app, graph):
    organizer = sandbox_app.pilot_users[0]
    attendee = sandbox_app.other_users[0]
    meeting = graph.meetings.create(
        organizer.upn,
        _request(attendees=[attendee.upn], lobby_bypass_scope="organizer", allowed_presenters="organizer"),
        external_id="booking-1",
    )
    assert meeting.subject == "Advising session" and meeting.start == START and meeting.end == END
    assert meeting.organizer_id == organizer.id
    assert meeting.external_id == "booking-1"
    assert meeting.join_web_url.startswith("https://teams.microsoft.com/l/meetup-join/")
    assert meeting.join_meeting_id and meeting.passcode and meeting.chat_thread_id
    assert [a.upn for a in meeting.attendees] == [attendee.upn]
    assert meeting.lobby_bypass_scope == "organizer" and meeting.allowed_presenters == "organizer"

    replay = graph.meetings.create_or_get(organizer.id, "booking-1", _request(subject="ignored"))
    assert not replay.created and replay.meeting.id == meeting.id

    assert graph.meetings.get(organizer.upn, meeting.id).id == meeting.id
    assert graph.meetings.find_by_join_url(organizer.upn, meeting.join_web_url).id == meeting.id
    assert graph.meetings.find_by_meeting_id(organizer.id, meeting.join_meeting_id).id == meeting.id

    later = START + dt.timedelta(days=1)
    moved = graph.meetings.update(
        organizer.upn,
        meeting.id,
        MeetingUpdate(subject="Moved", start=later, end=later + dt.timedelta(hours=1), attendees=[]),
    )
    assert moved.subject == "Moved" and moved.start == later and moved.attendees == []
    kept = graph.meetings.reschedule(organizer.upn, meeting.id, later + dt.timedelta(hours=3))
    assert kept.end - kept.start == dt.timedelta(hours=1)

    ics = meeting_invitation_ics(kept, organizer.upn)
    assert kept.join_web_url[:60] in ics.replace("\r\n ", "")

    assert graph.meetings.attendance_reports(organizer.upn, meeting.id) == []

    locked = graph.meetings.cancel(organizer.upn, meeting.id, mode="lock")
    assert locked.lobby_bypass_scope == "organizer" and locked.allow_meeting_chat == "disabled"
    assert locked.dial_in_bypass is False

    assert graph.meetings.cancel(organizer.upn, meeting.id) is None
    with pytest.raises(MeetingNotFound):
        graph.meetings.get(organizer.upn, meeting.id)

    # the UPN was looked up once, however many calls used it
    log = sandbox_app.control.request_log(sandbox_app.tenant_id)
    lookups = [r for r in log if r["method"] == "GET" and r["path"].endswith(f"/users/{organizer.upn}")]
    assert len(lookups) == 1
    claims = graph.token_claims()
    assert claims.is_app_only and claims.credential_kind == "certificate"
    assert graph.missing_roles() == []


def test_certificate_assertion_uses_ps256_with_sha256_thumbprint(sandbox_app, graph):
    graph.tokens.get_token()
    issued = sandbox_app.control.token_log(sandbox_app.tenant_id)
    assert issued[-1]["success"] and issued[-1]["credentialType"] == "certificate"
    assert (
        issued[-1]["thumbprint"]
        == CertificateCredential.from_pem_files(
            sandbox_app.private_key_path, sandbox_app.certificate_path
        ).thumbprint_sha1
    )


# --- every error class, produced by the sandbox ----------------------------------------------------


def test_policy_refusal_names_app_and_organizer(sandbox_app, graph):
    outsider = sandbox_app.other_users[0]
    with pytest.raises(AccessPolicyMissing) as caught:
        graph.meetings.create(outsider.upn, _request())
    err = caught.value
    assert err.status == 403 and err.app_id == sandbox_app.client_id and err.organizer == outsider.upn
    assert (
        f'Grant-CsApplicationAccessPolicy -PolicyName TeamsMeetingsIntegration -Identity "{outsider.upn}"'
        in err.remedy
    )
    assert "30 minutes" in err.remedy
    assert err.request_id and err.client_request_id


def test_missing_role(sandbox_app, settings, tmp_path):
    pair = certificates.generate_self_signed("reader")
    app = sandbox_app.control.register_app(
        sandbox_app.tenant_id,
        "Reader only",
        certificate_pem=certificates.certificate_pem(pair.certificate),
        roles=["User.Read.All"],
    )
    reader = replace(
        settings, client_id=app["appId"], credential=CertificateCredential(pair.private_key, pair.certificate)
    )
    with GraphClient(reader) as graph, pytest.raises(MissingRolesError) as caught:
        graph.meetings.create(sandbox_app.pilot_users[0].id, _request())
    assert caught.value.missing_roles == ["OnlineMeetings.ReadWrite.All"]
    assert "admin consent" in caught.value.remedy


def test_delegated_token_is_named(sandbox_app, settings):
    user = sandbox_app.pilot_users[0]
    token = sandbox_app.control.delegated_token(
        sandbox_app.tenant_id, user.id, sandbox_app.client_id, ["OnlineMeetings.ReadWrite"]
    )
    with GraphClient(settings, tokens=StaticTokenProvider(token)) as graph:
        assert not graph.token_claims().is_app_only
        with pytest.raises(DelegatedTokenError) as caught:
            graph.meetings.get(user.id, "whatever")
    assert "app-only" in caught.value.remedy


def test_expired_token_refreshes_once_then_invalid_token_error(sandbox_app, sandbox_control, settings):
    from meetgate.graph.auth import TokenProvider

    provider = TokenProvider(settings)
    try:
        with GraphClient(settings, tokens=provider) as graph:
            first = provider.get_token()
            # the sandbox's clock moves two hours on: the client still believes its token fresh
            sandbox_control.set_settings(clock_offset_seconds=7200)
            assert graph.directory.get_user(sandbox_app.pilot_users[0].id).id  # 401 -> refresh -> retry
            assert provider.get_token().token != first.token
        with (
            GraphClient(settings, tokens=StaticTokenProvider(first.token)) as graph,
            pytest.raises(InvalidTokenError) as caught,
        ):
            graph.directory.get_user(sandbox_app.pilot_users[0].id)
    finally:
        sandbox_control.set_settings(clock_offset_seconds=0)
    assert caught.value.status == 401 and "expired" in caught.value.message


def test_unknown_organizer(sandbox_app, graph):
    with pytest.raises(OrganizerNotFound) as caught:
        graph.meetings.create(f"nobody@{sandbox_app.pilot_users[0].upn.split('@')[1]}", _request())
    assert caught.value.status == 404
    with pytest.raises(OrganizerNotFound):
        graph.meetings.get("00000000-0000-4000-8000-000000000001", "x")


def test_upn_in_meetings_path(sandbox_app, graph):
    with pytest.raises(OrganizerIdRequired) as caught:
        graph.http.get(f"/users/{sandbox_app.pilot_users[0].upn}/onlineMeetings/abc")
    assert "object id" in caught.value.remedy


def test_bad_request(sandbox_app, graph):
    organizer = sandbox_app.pilot_users[0]
    meeting = graph.meetings.create(organizer.id, _request())
    with pytest.raises(BadRequestError) as caught:
        graph.http.patch(f"/users/{organizer.id}/onlineMeetings/{meeting.id}", json={"startDateTime": "soon"})
    assert caught.value.status == 400


def test_token_endpoint_errors(sandbox_app, settings):
    with (
        GraphClient(replace(settings, tenant_id="no-such-tenant.example")) as graph,
        pytest.raises(AuthenticationError) as caught,
    ):
        graph.tokens.get_token()
    assert caught.value.aadsts_code == 90002
    stranger = certificates.generate_self_signed("stranger")
    unknown_cert = replace(
        settings, credential=CertificateCredential(stranger.private_key, stranger.certificate)
    )
    with GraphClient(unknown_cert) as graph, pytest.raises(AuthenticationError) as caught:
        graph.tokens.get_token()
    assert caught.value.aadsts_code == 700027 and "cert upload" in caught.value.remedy
    unknown_app = replace(settings, client_id="99999999-9999-4999-8999-999999999999")
    with GraphClient(unknown_app) as graph, pytest.raises(AuthenticationError) as caught:
        graph.tokens.get_token()
    assert caught.value.aadsts_code == 700016
    with (
        GraphClient(replace(settings, credential=ClientSecretCredential("wrong"))) as graph,
        pytest.raises(AuthenticationError),
    ):
        graph.tokens.get_token()


def test_client_secret_is_accepted_and_reported_weaker(sandbox_app, settings, caplog):
    app = sandbox_app.control.register_app(
        sandbox_app.tenant_id, "Secret app", with_secret=True, roles=["OnlineMeetings.ReadWrite.All"]
    )
    secret = app["clientSecret"]
    caplog.set_level("WARNING")
    with GraphClient(
        replace(settings, client_id=app["appId"], credential=ClientSecretCredential(secret))
    ) as graph:
        assert graph.token_claims().credential_kind == "client_secret"
        assert graph.credential_warning
    assert "client secret" in caplog.text and secret not in caplog.text


def test_throttling_honours_retry_after_then_gives_up(sandbox_app, faults, settings, sleeps):
    faults.set_faults(throttle_rps=0.5)
    organizer = sandbox_app.pilot_users[0].id
    policy = RetryPolicy(max_attempts=3, jitter=no_jitter)
    with GraphClient(settings, retry=policy, sleep=sleeps) as graph:
        graph.directory.get_user(organizer)  # takes the only token of the bucket
        with pytest.raises(ThrottledError) as caught:
            graph.directory.get_user(organizer)  # instant "sleeps": every attempt is throttled
    assert caught.value.status == 429 and caught.value.retry_after and caught.value.retry_after > 0
    assert len(sleeps) == 2 and all(0 < s <= 2 for s in sleeps)
    log = sandbox_app.control.request_log(sandbox_app.tenant_id)
    throttled = [r for r in log if r["fault"] == "throttled"]
    assert len(throttled) == 3 and len({r["clientRequestId"] for r in throttled}) == 1


def test_server_errors_are_retried_then_service_error(sandbox_app, faults, graph, sleeps):
    faults.set_faults(error_rate=1.0, seed=7)
    with pytest.raises((ServiceError,)) as caught:
        graph.meetings.get(sandbox_app.pilot_users[0].id, "x")
    assert caught.value.status in (500, 503, 504)
    faults.clear_faults()
    faults.set_faults(error_rate=0.5, seed=3)
    meeting = None
    for _ in range(5):
        try:
            meeting = graph.meetings.create(sandbox_app.pilot_users[0].id, _request(), external_id="retry-1")
            break
        except ServiceError:  # a 500: surfaced, and safe to repeat with the same externalId
            continue
    assert meeting is not None
    log = sandbox_app.control.request_log(sandbox_app.tenant_id)
    creates = [r for r in log if r["path"].endswith("/createOrGet")]
    assert any(r["fault"] == "error" and r["status"] in (503, 504) for r in creates)
    assert sum(1 for r in creates if r["status"] == 201) == 1


def test_dropped_connections_are_retried_then_transport_error(sandbox_app, faults, graph, sleeps):
    faults.set_faults(drop_rate=0.5, seed=11)
    user = sandbox_app.pilot_users[0]
    for _ in range(10):
        assert graph.directory.get_user(user.id).id == user.id
    log = sandbox_app.control.request_log(sandbox_app.tenant_id)
    assert any(r["fault"] == "dropped" for r in log)
    faults.set_faults(drop_rate=1.0)
    with pytest.raises(TransportError) as caught:
        graph.directory.get_user(user.id)
    assert caught.value.client_request_id


def test_unreachable_graph_is_a_transport_error(settings):
    dead = replace(settings, graph_url="https://127.0.0.1:9", timeout_seconds=2)
    with GraphClient(
        dead, retry=RetryPolicy(max_attempts=2, jitter=no_jitter), sleep=lambda s: None
    ) as graph:
        graph.tokens.get_token()
        with pytest.raises(TransportError):
            graph.http.get("/users")


@pytest.mark.slow
def test_500_creates_under_30_percent_faults_make_exactly_500_meetings(sandbox_app, faults, settings):
    faults.set_faults(error_rate=0.3, seed=2026)
    organizers = [u.id for u in sandbox_app.pilot_users]
    ids: dict[str, str] = {}
    surfaced = 0
    started = time.monotonic()
    with GraphClient(
        settings, retry=RetryPolicy(max_attempts=6, jitter=no_jitter), sleep=lambda s: None
    ) as graph:
        for n in range(500):
            key = f"load-{n:04d}"
            while True:  # what an app does with a surfaced 500: repeat with the same key
                try:
                    ids[key] = graph.meetings.create(
                        organizers[n % 2], _request(subject=key), external_id=key
                    ).id
                    break
                except ServiceError:
                    surfaced += 1
    elapsed = time.monotonic() - started
    faults.clear_faults()
    assert len(ids) == 500 and len(set(ids.values())) == 500
    log = sandbox_app.control.request_log(sandbox_app.tenant_id, limit=2000)
    creates = [r for r in log if r["method"] == "POST" and r["path"].endswith("/createOrGet")]
    assert sum(1 for r in creates if r["status"] == 201) == 500  # none duplicated, none lost
    assert sum(1 for r in creates if r["fault"] == "error") > 100  # the faults really happened
    with GraphClient(settings) as graph:  # and each key still maps to its one meeting
        for key in ("load-0000", "load-0250", "load-0499"):
            again = graph.meetings.create_or_get(organizers[int(key[-4:]) % 2], key, _request())
            assert not again.created and again.meeting.id == ids[key]
    print(f"500 creates with 30% faults: {elapsed:.1f}s, {len(creates)} attempts, {surfaced} surfaced 500s")


def test_client_request_id_is_echoed_and_kept_across_attempts(sandbox_app, faults, graph):
    faults.set_faults(error_rate=0.5, seed=9)
    user = sandbox_app.pilot_users[0]
    for _ in range(6):
        with contextlib.suppress(ServiceError):
            graph.directory.get_user(user.id)
    log = sandbox_app.control.request_log(sandbox_app.tenant_id)
    by_id: dict[str, list[int]] = {}
    for record in log:
        if record["path"].endswith(f"/users/{user.id}"):
            by_id.setdefault(record["clientRequestId"], []).append(record["status"])
    assert len(by_id) == 6, by_id
    assert any(len(statuses) > 1 for statuses in by_id.values()), by_id  # retries share the id
