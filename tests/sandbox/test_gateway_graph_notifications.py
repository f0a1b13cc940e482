"""The gateway receiving Graph change notifications from the sandbox: subscriptions made, renewed and
repaired; rich transcript notifications decrypted and published to the right consumer's webhooks;
tampered, wrongly stated or badly signed notifications refused; ``missed`` caught up by reading; the
poller where Graph cannot reach the gateway."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
import sqlalchemy as sa
import uvicorn

from conftest import Credentials, app_token
from meetgate import certificates
from meetgate.gateway.app import create_app
from meetgate.gateway.consumers import ConsumerAdmin
from meetgate.gateway.notifications.service import NotificationConfig, NotificationService
from meetgate.gateway.notifications.subscriptions import HttpGraphCalls
from meetgate.gateway.scope import StaticPolicyScope
from meetgate.gateway.settings import GatewaySettings
from meetgate.gateway.webhooks.manage import WebhookAdmin
from meetgate.store import Store
from meetgate.store.notifications import NotificationStore
from meetgate.store.tables import meetings, webhook_events
from meetgate_sandbox.control import ssl_context

pytestmark = pytest.mark.timeout(120)

DEADLINE = 20.0
TRANSCRIPTS = "communications/onlineMeetings/getAllTranscripts"
ROLES = [
    "Calendars.ReadWrite",
    "OnlineMeetingTranscript.Read.All",
    "OnlineMeetingRecording.Read.All",
    "OnlineMeetingArtifact.Read.All",
    "OnlineMeetings.ReadWrite.All",
]


class Served:
    """A port on 127.0.0.1 taken first (the gateway's public URL), then the app behind uvicorn on it
    (the sandbox POSTs there)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, app: Any) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + DEADLINE
        while not self.server.started:
            assert time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.02)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


class Gateway:
    """A gateway with notifications, two consumers and a meeting each."""

    def __init__(self, sandbox, http, tenant, creds: Credentials, tmp_path, mode: str) -> None:
        self.store = Store.open(f"sqlite:///{tmp_path}/gw.db")
        self.tenant = tenant
        self.creds = creds
        admin = ConsumerAdmin(self.store, StaticPolicyScope(["organizer@contoso.test"]))
        self.school = admin.add("school", organizers=["organizer@contoso.test"]).consumer.id
        self.other = admin.add("other", organizers=["organizer@contoso.test"]).consumer.id
        token = app_token(sandbox, http, creds)

        async def get_token() -> str:
            return token

        graph = HttpGraphCalls(
            f"{sandbox.info.graph_url}/v1.0", get_token, verify=ssl_context(sandbox.info.ca_bundle)
        )
        self.service: NotificationService | None = None

        def make(store: Store, webhooks: WebhookAdmin) -> NotificationService:
            config = NotificationConfig(
                mode=mode,
                public_url=self.served.url if mode == "push" else None,
                tenant_id=creds.tenant_id,
                app_id=creds.app_id,
                keys_url=f"{sandbox.info.authority_url}/common/discovery/v2.0/keys",
                key_dir=tmp_path / "notifications",
                background=False,  # the tests run each round themselves
            )
            self.service = NotificationService(
                config,
                NotificationStore(store),
                graph,
                webhooks.publisher,
                webhooks.box,
                lambda url: http.get(url).json(),
            )
            return self.service

        settings = GatewaySettings(store_url=f"sqlite:///{tmp_path}/gw.db", webhook_worker=False)
        self.served = Served()
        app = create_app(
            settings,
            meetings=None,  # type: ignore[arg-type]  # no meetings are created through the API here
            scope=StaticPolicyScope([]),
            store=self.store,
            notifications=make,
        )
        self.served.start(app)
        assert self.service is not None

    def add_meeting(
        self,
        consumer: str,
        graph_meeting_id: str,
        organizer: str,
        end: str | None = None,
        join_url: str | None = None,
    ) -> str:
        meeting_id = f"mtg_{graph_meeting_id[-8:]}_{consumer[:4]}"
        now = dt.datetime.now(dt.UTC)
        with self.store.engine.begin() as conn:
            conn.execute(
                meetings.insert().values(
                    id=meeting_id,
                    consumer_id=consumer,
                    idempotency_key=meeting_id,
                    request_hash="0" * 64,
                    organizer=organizer,
                    external_id=meeting_id,
                    graph_meeting_id=graph_meeting_id,
                    join_url=join_url,
                    state="active",
                    snapshot={"subject": "Interview", "end": end},
                    created_at=now,
                    updated_at=now,
                )
            )
        return meeting_id

    def events(self) -> list[tuple[str, str, str | None, dict[str, Any]]]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(sa.select(webhook_events).order_by(webhook_events.c.occurred_at))
            return [(r.consumer_id, r.type, r.meeting_id, json.loads(r.body)["data"]) for r in rows]

    def wait(self, predicate, what: str) -> Any:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            result = predicate()
            if result:
                return result
            time.sleep(0.05)
        raise AssertionError(f"{what}: never; outcomes {self.outcomes()}, events {self.events()}")

    def outcomes(self) -> list[tuple[str, str | None]]:
        assert self.service is not None
        return self.service.store.outcomes()

    def close(self) -> None:
        self.served.close()
        self.store.close()


@pytest.fixture
def creds(sandbox_tenant, key_pair) -> Credentials:
    app = sandbox_tenant.control.register_app(
        sandbox_tenant.tenant_id,
        "Gateway notifications",
        certificate_pem=certificates.certificate_pem(key_pair.certificate),
        roles=ROLES,
    )
    sandbox_tenant.control.notification_settings(
        sandbox_tenant.tenant_id, allowHttpLoopback=True, retryBaseSeconds=0.05
    )
    return Credentials(
        sandbox_tenant.tenant_id, app["appId"], app["objectId"], app["servicePrincipalId"], key_pair
    )


@pytest.fixture
def push(sandbox, http, sandbox_tenant, creds, tmp_path) -> Iterator[Gateway]:
    gateway = Gateway(sandbox, http, sandbox_tenant, creds, tmp_path, "push")
    yield gateway
    gateway.close()


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def _transcript_change(control, tenant_id: str, meeting_id: str, transcript_id: str = "MSMjMCMjZDAw") -> None:
    data = {
        "@odata.type": "#Microsoft.Graph.callTranscript",
        "id": transcript_id,
        "meetingId": meeting_id,
        "transcriptContentUrl": f"communications/onlineMeetings/{meeting_id}/transcripts/{transcript_id}/content",
    }
    control.publish_change(
        tenant_id,
        change_type="created",
        resource=f"communications/onlineMeetings('{meeting_id}')/transcripts('{transcript_id}')",
        topics=[TRANSCRIPTS, f"communications/onlineMeetings/{meeting_id}/transcripts"],
        odata_type="#Microsoft.Graph.callTranscript",
        resource_data=data,
    )


def _ensure(gateway: Gateway) -> dict[str, Any]:
    assert gateway.service is not None
    return {r.kind: r for r in _run(gateway.service.manager.ensure())}


def test_subscriptions_are_made_with_the_handshake_and_kept_in_the_store(push, sandbox_tenant):
    subs = _ensure(push)
    assert set(subs) == {"transcripts", "recordings"}
    live = {s["id"]: s for s in sandbox_tenant.control.subscriptions(sandbox_tenant.tenant_id)}
    for record in subs.values():
        graph_side = live[record.id]
        assert graph_side["notificationUrl"] == f"{push.served.url}/graph/notifications"
        assert graph_side["lifecycleNotificationUrl"] == f"{push.served.url}/graph/lifecycle"
        assert graph_side["includeResourceData"] is True
    assert "clientState" not in repr(subs)
    # a second round changes nothing
    assert {r.id for r in _ensure(push).values()} == {r.id for r in subs.values()}
    # the handshake: the decoded token, as text/plain
    answer = httpx.post(f"{push.served.url}/graph/notifications", params={"validationToken": "a b:c"})
    assert answer.status_code == 200 and answer.text == "a b:c"
    assert answer.headers["content-type"].startswith("text/plain")


def test_a_rich_transcript_notification_reaches_the_meetings_consumer_once(push, sandbox_tenant):
    _ensure(push)
    mine = push.add_meeting(push.school, "MSoxMjM0", "organizer@contoso")
    push.add_meeting(push.other, "MSo5OTk5", "organizer@contoso")
    control, tid = sandbox_tenant.control, sandbox_tenant.tenant_id
    _transcript_change(control, tid, "MSoxMjM0")
    _transcript_change(control, tid, "MSoxMjM0")  # Graph may send a change twice
    _transcript_change(control, tid, "MSoUNKNOWN", "MSMjOTk5")  # not a meeting the gateway made
    push.wait(lambda: len(push.outcomes()) >= 3 and all(o for _, o in push.outcomes()), "all processed")
    assert push.events() == [(push.school, "transcript.ready", mine, {"transcriptId": "MSMjMCMjZDAw"})]
    assert all(outcome and outcome.startswith("published") for _, outcome in push.outcomes())


def _stored_body(gateway: Gateway) -> dict[str, Any]:
    with gateway.store.engine.connect() as conn:
        from meetgate.store.tables import graph_notifications

        body = conn.execute(
            sa.select(graph_notifications.c.body).order_by(graph_notifications.c.seq)
        ).scalar()
    assert body is not None
    return dict(json.loads(body))


def _replay(gateway: Gateway, body: dict[str, Any]) -> str:
    before = len(gateway.outcomes())
    answer = httpx.post(f"{gateway.served.url}/graph/notifications", json=body)
    assert answer.status_code == 202

    def outcome() -> str | None:
        outcomes = gateway.outcomes()
        return outcomes[before][1] if len(outcomes) > before else None

    return str(gateway.wait(outcome, "processed"))


def test_tampered_wrongly_stated_and_badly_signed_notifications_are_refused(push, sandbox_tenant, tmp_path):
    _ensure(push)
    push.add_meeting(push.school, "MSoxMjM0", "organizer@contoso")
    _transcript_change(sandbox_tenant.control, sandbox_tenant.tenant_id, "MSoxMjM0")
    push.wait(lambda: push.events(), "the first event")
    original = _stored_body(push)
    with push.store.engine.begin() as conn:  # drop the event so a replay would publish again
        conn.execute(webhook_events.delete())

    item = original["value"][0]
    content = item["encryptedContent"]
    data = base64.b64decode(content["data"])
    tampered = dict(content, data=base64.b64encode(bytes([data[0] ^ 1]) + data[1:]).decode())
    outcome = _replay(push, {**original, "value": [{**item, "encryptedContent": tampered}]})
    assert outcome == "refused: dataSignature does not match the data"

    outcome = _replay(push, {**original, "value": [{**item, "clientState": "guess"}]})
    assert outcome == "refused: clientState does not match"

    forged_key = certificates.generate_private_key()
    claims = jwt.decode(original["validationTokens"][0], options={"verify_signature": False})
    kid = jwt.get_unverified_header(original["validationTokens"][0])["kid"]
    forged = jwt.encode(claims, forged_key, algorithm="RS256", headers={"kid": kid})
    outcome = _replay(push, {**original, "validationTokens": [forged]})
    assert outcome.startswith("refused: validation token refused")

    other_app = jwt.encode({**claims, "appid": "00000000-0000-0000-0000-000000000000"}, forged_key, "RS256")
    assert _replay(push, {**original, "validationTokens": [other_app]}).startswith(
        "refused: validation token"
    )
    assert push.events() == []
    # the untouched body still goes through
    assert _replay(push, original) == "published 1"


def test_an_expired_subscription_is_renewed_and_a_removed_one_recreated(push, sandbox_tenant):
    control, tid = sandbox_tenant.control, sandbox_tenant.tenant_id
    subs = _ensure(push)
    first = subs["transcripts"]
    assert push.service is not None
    push.service.manager.renew_before = dt.timedelta(days=30)  # everything is due for renewal
    renewed = _ensure(push)
    assert renewed["transcripts"].id == first.id
    assert renewed["transcripts"].expires_at >= first.expires_at
    push.service.manager.renew_before = dt.timedelta(hours=12)
    control.expire_subscription(tid, first.id)  # Graph no longer has it
    push.service.manager.renew_before = dt.timedelta(days=30)
    again = _ensure(push)["transcripts"]
    assert again.id != first.id
    assert again.id in {s["id"] for s in control.subscriptions(tid)}
    # subscriptionRemoved: subscribed again
    control.send_lifecycle_event(tid, again.id, "subscriptionRemoved")
    push.service.manager.renew_before = dt.timedelta(hours=12)
    recreated = push.wait(
        lambda: [
            r for r in push.service.store.subscriptions() if r.kind == "transcripts" and r.id != again.id
        ],
        "a new transcripts subscription",
    )
    assert recreated[0].id in {s["id"] for s in control.subscriptions(tid)}
    # reauthorizationRequired: reauthorized, the subscription kept
    control.send_lifecycle_event(tid, recreated[0].id, "reauthorizationRequired")
    push.wait(
        lambda: any(o == "lifecycle reauthorizationRequired" for _, o in push.outcomes()), "reauthorized"
    )


def _online_meeting(sandbox_tenant, creds: Credentials, http, sandbox) -> tuple[str, str, str, str]:
    """A calendar meeting in the sandbox; (meeting id, join URL, organizer id, attendee id)."""
    tid, control = sandbox_tenant.tenant_id, sandbox_tenant.control
    users = [u for u in control.tenant(tid)["users"] if u["accountEnabled"]]
    organizer, attendee = users[:2]
    control.create_policy(tid, "Tag:Artifacts", [creds.app_id])
    control.grant_policy(tid, "Artifacts", user=organizer["id"])
    headers = {"Authorization": f"Bearer {app_token(sandbox, http, creds)}"}
    graph = f"{sandbox.info.graph_url}/v1.0/users/{organizer['id']}"
    event = http.post(
        f"{graph}/events",
        headers=headers,
        json={
            "subject": "Interview",
            "start": {"dateTime": "2030-07-01T09:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2030-07-01T09:30:00", "timeZone": "UTC"},
            "isOnlineMeeting": True,
            "onlineMeetingProvider": "teamsForBusiness",
        },
    ).json()
    join_url = event["onlineMeeting"]["joinUrl"]
    found = http.get(
        f"{graph}/onlineMeetings", headers=headers, params={"$filter": f"JoinWebUrl eq '{join_url}'"}
    ).json()["value"]
    return found[0]["id"], join_url, organizer["id"], attendee["id"]


def _hold(sandbox_tenant, meeting_id: str, organizer: str, attendee: str) -> None:
    """The meeting held and ended (transcript and recording made)."""
    sandbox_tenant.control.hold_meeting(
        sandbox_tenant.tenant_id,
        meeting_id,
        [
            {"user": organizer, "role": "Organizer", "join": 0, "leave": 600},
            {"user": attendee, "role": "Attendee", "join": 30, "leave": 590},
        ],
        start=-900,
        end=600,
    )


def _held_meeting(sandbox_tenant, creds: Credentials, http, sandbox) -> tuple[str, str]:
    """A calendar meeting held in the sandbox; (meeting id, organizer id)."""
    meeting_id, _, organizer, attendee = _online_meeting(sandbox_tenant, creds, http, sandbox)
    _hold(sandbox_tenant, meeting_id, organizer, attendee)
    return meeting_id, organizer


def test_a_meeting_held_after_subscribing_notifies_its_call_and_artifacts(
    push, sandbox, http, sandbox_tenant, creds
):
    meeting_id, join_url, organizer, attendee = _online_meeting(sandbox_tenant, creds, http, sandbox)
    mine = push.add_meeting(push.school, meeting_id, organizer, join_url=join_url)
    subs = _ensure(push)
    assert f"calls:{mine}" in subs
    _hold(sandbox_tenant, meeting_id, organizer, attendee)
    wanted = {"meeting.started", "meeting.ended", "transcript.ready", "recording.ready"}
    push.wait(lambda: {t for _, t, _, _ in push.events()} >= wanted, "the call and its artifacts")
    assert {(c, m) for c, _, m, _ in push.events()} == {(push.school, mine)}
    assert sorted(t for _, t, _, _ in push.events()) == sorted(wanted)  # roster updates are not events


def test_missed_is_caught_up_by_reading(push, sandbox, http, sandbox_tenant, creds):
    meeting_id, organizer = _held_meeting(sandbox_tenant, creds, http, sandbox)  # before any subscription
    mine = push.add_meeting(push.school, meeting_id, organizer)
    subs = _ensure(push)
    assert push.events() == []
    sandbox_tenant.control.send_lifecycle_event(sandbox_tenant.tenant_id, subs["transcripts"].id, "missed")
    push.wait(lambda: len(push.events()) >= 2, "caught up")
    events = push.events()
    assert sorted((c, t, m) for c, t, m, _ in events) == [
        (push.school, "recording.ready", mine),
        (push.school, "transcript.ready", mine),
    ]


def test_the_poller_publishes_after_the_meetings_end_once(sandbox, http, sandbox_tenant, creds, tmp_path):
    meeting_id, organizer = _held_meeting(sandbox_tenant, creds, http, sandbox)
    gateway = Gateway(sandbox, http, sandbox_tenant, creds, tmp_path, "poll")
    try:
        ended = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
        mine = gateway.add_meeting(gateway.school, meeting_id, organizer, end=ended)
        assert gateway.service is not None
        assert _run(gateway.service.poller.run_once()) == 1
        kinds = sorted(t for c, t, m, _ in gateway.events() if c == gateway.school and m == mine)
        assert kinds == ["attendance.ready", "recording.ready", "transcript.ready"]
        # done: not polled again, nothing published twice
        assert _run(gateway.service.poller.run_once()) == 0
        assert len(gateway.events()) == 3
    finally:
        gateway.close()


def test_replicas_that_subscribed_at_once_keep_one_subscription_of_a_kind(push, sandbox_tenant):
    first = _ensure(push)["transcripts"]
    assert push.service is not None
    _run(push.service.manager.create("transcripts"))  # another replica's, made at the same time
    kept = _ensure(push)
    assert kept["transcripts"].id == first.id
    graph_side = sandbox_tenant.control.subscriptions(sandbox_tenant.tenant_id)
    assert sorted(s["resource"] for s in graph_side) == [
        "communications/onlineMeetings/getAllRecordings",
        "communications/onlineMeetings/getAllTranscripts",
    ]


def test_a_notification_stored_but_not_processed_before_a_restart_is_processed_later(push, sandbox_tenant):
    from meetgate.store.tables import graph_notifications

    _ensure(push)
    mine = push.add_meeting(push.school, "MSoxMjM0", "organizer@contoso")
    _transcript_change(sandbox_tenant.control, sandbox_tenant.tenant_id, "MSoxMjM0")
    push.wait(lambda: push.events(), "the first event")
    original = json.dumps(_stored_body(push))
    with push.store.engine.begin() as conn:  # as if the gateway had died after answering 202
        conn.execute(webhook_events.delete())
    assert push.service is not None
    seq = push.service.store.receive("notify", original)
    assert _run(push.service.processor.process_pending()) == 0  # still its request's to process
    with push.store.engine.begin() as conn:
        conn.execute(
            graph_notifications.update()
            .where(graph_notifications.c.seq == seq)
            .values(received_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
        )
    assert _run(push.service.processor.process_pending()) == 1
    assert [(c, t, m) for c, t, m, _ in push.events()] == [(push.school, "transcript.ready", mine)]
    assert _run(push.service.processor.process_pending()) == 0
