"""Graph change notifications from the sandbox: subscriptions and their rules, the validation
handshake, delivery to a small receiver on 127.0.0.1 (retries, drops and ``missed``), rich
notifications decrypted with the test's own certificate, validation tokens checked against the
sandbox's keys, lifecycle events and expiry."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import http.server
import json
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from conftest import Credentials, app_token
from meetgate import certificates

GRAPH_CHANGE_TRACKING = "0bf30f3b-4a52-48df-9a82-234910c4a086"
TRANSCRIPTS = "communications/onlineMeetings/getAllTranscripts"
DEADLINE = 20.0


class Receiver:
    """A tiny HTTP endpoint: answers the validation handshake as told, records every notification
    and answers it with the next queued status (202 when none is queued)."""

    def __init__(self, tls: tuple[str, str] | None = None) -> None:
        self.scheme = "https" if tls else "http"
        self.handshake: str = "echo"  # echo | encoded | fail
        self.statuses: list[int] = []
        self.always: int | None = None
        self.validations: list[dict[str, str]] = []
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                query = urllib.parse.urlsplit(self.path).query
                token = urllib.parse.parse_qs(query).get("validationToken")
                if token:
                    receiver._validation(self, token[0], query)
                    return
                with receiver._lock:
                    receiver.received.append({"path": self.path, "body": json.loads(raw)})
                    status = receiver.always or (receiver.statuses.pop(0) if receiver.statuses else 202)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _validation(self, handler: http.server.BaseHTTPRequestHandler, token: str, query: str) -> None:
        with self._lock:
            self.validations.append(
                {"path": handler.path, "contentType": handler.headers.get("Content-Type", "")}
            )
        if self.handshake == "fail":
            handler.send_response(500)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        raw = query.split("validationToken=", 1)[1].split("&", 1)[0]
        body = (token if self.handshake == "echo" else raw).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def url(self, path: str = "/notify") -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}{path}"

    def wait_for(self, predicate: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            with self._lock:
                seen = list(self.received)
            if predicate(seen):
                return seen
            time.sleep(0.02)
        raise AssertionError(f"not received in time: {seen}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


class Graph:
    def __init__(self, http: httpx.Client, base: str, token: str) -> None:
        self.http, self.base, self.token = http, base, token

    def __call__(self, method: str, path: str, version: str = "v1.0", **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return self.http.request(
            method, f"{self.base}/{version}{path}", headers=headers, timeout=30, **kwargs
        )


@pytest.fixture
def subscriber(sandbox, http, sandbox_tenant, key_pair) -> tuple[Graph, Credentials]:
    """An app allowed to watch calendars, transcripts and recordings, in a tenant whose delivery
    settings allow http://127.0.0.1 and retry fast."""
    roles = ["Calendars.ReadWrite", "OnlineMeetingTranscript.Read.All", "OnlineMeetingRecording.Read.All"]
    app = sandbox_tenant.control.register_app(
        sandbox_tenant.tenant_id,
        "Notification tests",
        certificate_pem=certificates.certificate_pem(key_pair.certificate),
        roles=[*roles, "OnlineMeetings.ReadWrite.All"],
    )
    creds = Credentials(
        sandbox_tenant.tenant_id, app["appId"], app["objectId"], app["servicePrincipalId"], key_pair
    )
    sandbox_tenant.control.notification_settings(
        sandbox_tenant.tenant_id, allowHttpLoopback=True, retryBaseSeconds=0.05
    )
    return Graph(http, sandbox.info.graph_url, app_token(sandbox, http, creds)), creds


def _users(sandbox_tenant) -> list[dict[str, Any]]:
    users = sandbox_tenant.control.tenant(sandbox_tenant.tenant_id)["users"]
    return [user for user in users if user["accountEnabled"]]


def _in(minutes: float) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def _events_subscription(user_id: str, receiver: Receiver, **extra: Any) -> dict[str, Any]:
    return {
        "changeType": "created,updated,deleted",
        "notificationUrl": receiver.url("/notify?tenant=contoso"),
        "resource": f"/users/{user_id}/events",
        "expirationDateTime": _in(120),
        "clientState": "secretClientValue",
        **extra,
    }


def _event() -> dict[str, Any]:
    return {
        "subject": "Admissions interview",
        "start": {"dateTime": "2030-07-01T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2030-07-01T09:30:00", "timeZone": "UTC"},
    }


def _transcripts_subscription(receiver: Receiver, key_pair, **extra: Any) -> dict[str, Any]:
    der = certificates.certificate_der(key_pair.certificate)
    return {
        "changeType": "created",
        "notificationUrl": receiver.url("/notify"),
        "lifecycleNotificationUrl": receiver.url("/lifecycle"),
        "resource": TRANSCRIPTS,
        "includeResourceData": True,
        "encryptionCertificate": base64.b64encode(der).decode(),
        "encryptionCertificateId": "meetgate-notifications",
        "expirationDateTime": _in(600),
        "clientState": "transcripts-secret",
        **extra,
    }


def _transcript_change(control, tenant_id: str, meeting_id: str = "MSoxMjM0") -> dict[str, Any]:
    data = {
        "@odata.type": "#Microsoft.Graph.callTranscript",
        "id": "MSMjMCMjZDAw",
        "meetingId": meeting_id,
        "transcriptContentUrl": f"communications/onlineMeetings/{meeting_id}/transcripts/MSMjMCMjZDAw/content",
    }
    control.publish_change(
        tenant_id,
        change_type="created",
        resource=f"communications/onlineMeetings('{meeting_id}')/transcripts('MSMjMCMjZDAw')",
        topics=[TRANSCRIPTS, f"communications/onlineMeetings/{meeting_id}/transcripts"],
        odata_type="#Microsoft.Graph.callTranscript",
        resource_data=data,
    )
    return data


def _decrypt(content: dict[str, str], key_pair) -> bytes:
    """What a subscriber does: unwrap the key, check the HMAC, then decrypt (ValueError on tampering)."""
    key = key_pair.private_key.decrypt(
        base64.b64decode(content["dataKey"]),
        rsa_padding.OAEP(mgf=rsa_padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None),
    )
    data = base64.b64decode(content["data"])
    expected = hmac.new(key, data, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, base64.b64decode(content["dataSignature"])):
        raise ValueError("dataSignature does not match: the notification was tampered with")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def _wait_deliveries(control, tenant_id: str, sub_id: str, predicate) -> list[dict[str, Any]]:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        records = control.deliveries(tenant_id, sub_id)
        if predicate(records):
            return records
        time.sleep(0.02)
    raise AssertionError(f"deliveries never matched: {records}")


# ---- handshake and shape ----------------------------------------------------------------------------


def test_a_subscription_is_validated_then_answered_in_graphs_shape(sandbox_tenant, subscriber, receiver):
    graph, creds = subscriber
    user = _users(sandbox_tenant)[0]
    response = graph("POST", "/subscriptions", json=_events_subscription(user["id"], receiver))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["@odata.context"] == "https://graph.microsoft.com/v1.0/$metadata#subscriptions/$entity"
    assert body["applicationId"] == creds.app_id
    assert body["creatorId"] == creds.service_principal_id
    assert body["latestSupportedTlsVersion"] == "v1_2"
    assert body["changeType"] == "created,updated,deleted"
    assert body["includeResourceData"] is False
    assert {"id", "resource", "notificationUrl", "expirationDateTime", "clientState"} <= set(body)
    [validation] = receiver.validations
    assert validation["path"].startswith("/notify?tenant=contoso&validationToken=")
    assert validation["contentType"] == "text/plain; charset=utf-8"
    listed = graph("GET", "/subscriptions").json()["value"]
    assert [s["id"] for s in listed] == [body["id"]]


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("encoded", "Response must exactly match validationToken query parameter."),
        ("fail", "Notification endpoint must respond with 200 OK to validation request."),
    ],
)
def test_a_failed_handshake_refuses_the_subscription(sandbox_tenant, subscriber, receiver, mode, message):
    graph, _ = subscriber
    receiver.handshake = mode
    user = _users(sandbox_tenant)[0]
    response = graph("POST", "/subscriptions", json=_events_subscription(user["id"], receiver))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "ValidationError"
    assert message in response.json()["error"]["message"]
    assert graph("GET", "/subscriptions").json()["value"] == []


# ---- delivery ---------------------------------------------------------------------------------------


def test_calendar_changes_reach_the_subscriber_with_its_client_state(sandbox_tenant, subscriber, receiver):
    graph, _ = subscriber
    user = _users(sandbox_tenant)[0]
    sub = graph(
        "POST",
        "/subscriptions",
        json=_events_subscription(user["userPrincipalName"], receiver),
    ).json()
    event = graph("POST", f"/users/{user['id']}/events", json=_event()).json()
    graph("PATCH", f"/users/{user['id']}/events/{event['id']}", json={"subject": "Moved"})
    graph("DELETE", f"/users/{user['id']}/events/{event['id']}")
    seen = receiver.wait_for(lambda r: len(r) >= 3)
    kinds = sorted(item["body"]["value"][0]["changeType"] for item in seen)
    assert kinds == ["created", "deleted", "updated"]
    item = seen[0]["body"]["value"][0]
    assert seen[0]["path"] == "/notify?tenant=contoso"  # the query string is kept
    assert item["subscriptionId"] == sub["id"]
    assert item["clientState"] == "secretClientValue"
    assert item["tenantId"] == sandbox_tenant.tenant_id
    assert item["resource"] == f"Users/{user['id']}/Events/{event['id']}"
    assert item["resourceData"]["id"] == event["id"]
    assert item["subscriptionExpirationDateTime"] == sub["expirationDateTime"]
    assert "encryptedContent" not in item and "validationTokens" not in seen[0]["body"]


def test_a_rich_notification_decrypts_with_the_subscribers_key_and_its_token_verifies(
    sandbox, http, sandbox_tenant, subscriber, receiver, key_pair
):
    graph, creds = subscriber
    sub = graph("POST", "/subscriptions", json=_transcripts_subscription(receiver, key_pair))
    assert sub.status_code == 201, sub.text
    assert len(receiver.validations) == 2  # notificationUrl and lifecycleNotificationUrl
    data = _transcript_change(sandbox_tenant.control, sandbox_tenant.tenant_id)
    [delivery] = receiver.wait_for(lambda r: len(r) >= 1)
    body = delivery["body"]
    item = body["value"][0]
    assert item["resourceData"]["@odata.type"] == "#Microsoft.Graph.callTranscript"
    content = item["encryptedContent"]
    assert content["encryptionCertificateId"] == "meetgate-notifications"
    assert content["encryptionCertificateThumbprint"] == key_pair.thumbprint_sha1.upper()
    assert json.loads(_decrypt(content, key_pair)) == data
    tampered = dict(content, data=base64.b64encode(b"x" + base64.b64decode(content["data"])[1:]).decode())
    with pytest.raises(ValueError, match="tampered"):
        _decrypt(tampered, key_pair)
    # the validation token: signed by the sandbox's keys, for this app, from Graph's change tracking
    keys = http.get(f"{sandbox.info.authority_url}/common/discovery/v2.0/keys").json()
    [token] = body["validationTokens"]
    header = jwt.get_unverified_header(token)
    jwk = next(k for k in keys["keys"] if k["kid"] == header["kid"])
    claims = jwt.decode(
        token,
        jwt.PyJWK(jwk, algorithm="RS256").key,
        algorithms=["RS256"],
        audience=creds.app_id,
        issuer=f"https://sts.windows.net/{sandbox_tenant.tenant_id}/",
    )
    assert claims["appid"] == GRAPH_CHANGE_TRACKING
    assert claims["tid"] == sandbox_tenant.tenant_id
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(
            token, jwt.PyJWK(jwk, algorithm="RS256").key, algorithms=["RS256"], audience="someone-else"
        )


def test_a_failed_delivery_is_retried_until_it_is_answered(sandbox_tenant, subscriber, receiver):
    graph, _ = subscriber
    user = _users(sandbox_tenant)[0]
    sub = graph("POST", "/subscriptions", json=_events_subscription(user["id"], receiver)).json()
    receiver.statuses = [500, 503]
    graph("POST", f"/users/{user['id']}/events", json=_event())
    records = _wait_deliveries(
        sandbox_tenant.control,
        sandbox_tenant.tenant_id,
        sub["id"],
        lambda r: r and r[0]["state"] == "delivered",
    )
    assert [a.get("status") for a in records[0]["attempts"]] == [500, 503, 202]
    assert len(receiver.received) == 3


def test_a_dropped_notification_sends_missed_to_the_lifecycle_url(
    sandbox_tenant, subscriber, receiver, key_pair
):
    graph, _ = subscriber
    control, tid = sandbox_tenant.control, sandbox_tenant.tenant_id
    control.notification_settings(tid, retryWindowSeconds=0.3)
    sub = graph("POST", "/subscriptions", json=_transcripts_subscription(receiver, key_pair)).json()
    receiver.always = 500
    _transcript_change(control, tid)
    records = _wait_deliveries(control, tid, sub["id"], lambda r: any(x["kind"] == "lifecycle" for x in r))
    assert records[0]["state"] == "dropped" and len(records[0]["attempts"]) >= 2
    seen = receiver.wait_for(lambda r: any(x["path"] == "/lifecycle" for x in r))
    missed = next(x for x in seen if x["path"] == "/lifecycle")["body"]["value"][0]
    assert missed["lifecycleEvent"] == "missed"
    assert missed["subscriptionId"] == sub["id"] and missed["clientState"] == "transcripts-secret"


# ---- lifecycle and expiry ---------------------------------------------------------------------------


def test_lifecycle_events_on_demand_then_reauthorize_and_removal(
    sandbox_tenant, subscriber, receiver, key_pair
):
    graph, _ = subscriber
    control, tid = sandbox_tenant.control, sandbox_tenant.tenant_id
    sub = graph("POST", "/subscriptions", json=_transcripts_subscription(receiver, key_pair)).json()
    control.send_lifecycle_event(tid, sub["id"], "reauthorizationRequired")
    seen = receiver.wait_for(lambda r: len(r) >= 1)
    assert seen[0]["path"] == "/lifecycle"
    assert seen[0]["body"]["value"][0]["lifecycleEvent"] == "reauthorizationRequired"
    assert graph("POST", f"/subscriptions/{sub['id']}/reauthorize").status_code == 204
    control.send_lifecycle_event(tid, sub["id"], "subscriptionRemoved")
    seen = receiver.wait_for(lambda r: len(r) >= 2)
    assert seen[1]["body"]["value"][0]["lifecycleEvent"] == "subscriptionRemoved"
    assert graph("GET", f"/subscriptions/{sub['id']}").status_code == 404


def test_renewal_deletion_and_expiry(sandbox_tenant, subscriber, receiver):
    graph, _ = subscriber
    control, tid = sandbox_tenant.control, sandbox_tenant.tenant_id
    user = _users(sandbox_tenant)[0]
    sub = graph("POST", "/subscriptions", json=_events_subscription(user["id"], receiver)).json()
    renewed = graph("PATCH", f"/subscriptions/{sub['id']}", json={"expirationDateTime": _in(4000)})
    assert renewed.status_code == 200
    assert renewed.json()["expirationDateTime"] > sub["expirationDateTime"]
    control.expire_subscription(tid, sub["id"])
    assert graph("GET", f"/subscriptions/{sub['id']}").status_code == 404
    graph("POST", f"/users/{user['id']}/events", json=_event())
    assert control.deliveries(tid, sub["id"]) == []  # an expired subscription gets nothing
    other = graph("POST", "/subscriptions", json=_events_subscription(user["id"], receiver)).json()
    assert graph("DELETE", f"/subscriptions/{other['id']}").status_code == 204
    assert graph("GET", f"/subscriptions/{other['id']}").status_code == 404


# ---- the documented rules ---------------------------------------------------------------------------


def test_a_short_expiration_is_raised_to_45_minutes(sandbox_tenant, subscriber, receiver):
    graph, _ = subscriber
    user = _users(sandbox_tenant)[0]
    body = graph(
        "POST", "/subscriptions", json=_events_subscription(user["id"], receiver, expirationDateTime=_in(5))
    ).json()
    expiration = dt.datetime.fromisoformat(body["expirationDateTime"].replace("0Z", "+00:00"))
    assert expiration >= dt.datetime.now(dt.UTC) + dt.timedelta(minutes=44)


def test_the_rules_are_refused_with_their_messages(sandbox_tenant, subscriber, receiver, key_pair):
    graph, _ = subscriber
    user = _users(sandbox_tenant)[0]
    events = _events_subscription(user["id"], receiver)
    transcripts = _transcripts_subscription(receiver, key_pair)
    cases: list[tuple[dict[str, Any], int, str, str]] = [
        ({**events, "resource": "users/x/mailFolders"}, 400, "ExtensionError", "is not supported"),
        (
            {**transcripts, "changeType": "updated"},
            400,
            "ValidationError",
            "changeType 'updated' is not supported",
        ),
        (
            {**events, "expirationDateTime": _in(4300)},
            400,
            "ExtensionError",
            "can only be 4230 minutes in the future",
        ),
        ({**events, "expirationDateTime": _in(-5)}, 400, "ExtensionError", "must be in the future"),
        ({**events, "clientState": "x" * 129}, 400, "ValidationError", "clientState must be at most 128"),
        ({**events, "notificationUrl": "http://example.org/notify"}, 400, "ValidationError", "HTTPS"),
        (
            {k: v for k, v in transcripts.items() if k != "lifecycleNotificationUrl"},
            400,
            "ValidationError",
            "lifecycleNotificationUrl is required for subscription creation on this resource when the "
            "expirationDateTime value exceeds 1 hour.",
        ),
        (
            {**transcripts, "encryptionCertificate": None},
            400,
            "ValidationError",
            "encryptionCertificate is required",
        ),
        (
            {**transcripts, "encryptionCertificateId": None},
            400,
            "ValidationError",
            "encryptionCertificateId is required",
        ),
        (
            {**events, "resource": "communications/callRecords", "changeType": "created"},
            403,
            "ExtensionError",
            "CallRecords.Read.All",
        ),
        (
            {**transcripts, "resource": f"users/{user['id']}/onlineMeetings/getAllTranscripts"},
            403,
            "ExtensionError",
            "No application access policy",
        ),
        (
            {
                **events,
                "resource": "communications/onlineMeetings/?$filter=JoinWebUrl eq 'https://teams.microsoft.com/l/meetup-join/x'",
                "changeType": "updated",
            },
            400,
            "ExtensionError",
            "is not supported",
        ),
        (
            {k: v for k, v in events.items() if k != "expirationDateTime"},
            400,
            "InvalidRequest",
            "expirationDateTime is a required property",
        ),
    ]
    for body, status, code, message in cases:
        response = graph("POST", "/subscriptions", json=body)
        assert response.status_code == status, (body, response.text)
        error = response.json()["error"]
        assert error["code"] == code and message in error["message"], (body, error)
    assert receiver.validations == []  # each refused before the handshake
    # a lifecycle URL is not needed within the hour
    short = {k: v for k, v in transcripts.items() if k != "lifecycleNotificationUrl"}
    assert graph("POST", "/subscriptions", json={**short, "expirationDateTime": _in(50)}).status_code == 201


def test_a_small_rsa_key_is_refused(sandbox_tenant, subscriber, receiver):
    graph, _ = subscriber
    from cryptography.hazmat.primitives.asymmetric import rsa

    small = certificates.generate_self_signed("small")
    weak_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "weak")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(weak_key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(weak_key, hashes.SHA256())
    )
    body = _transcripts_subscription(receiver, small)
    body["encryptionCertificate"] = base64.b64encode(certificates.certificate_der(cert)).decode()
    response = graph("POST", "/subscriptions", json=body)
    assert response.status_code == 400
    assert "2048 to 4096 bits" in response.json()["error"]["message"]


def test_the_teams_policy_lets_a_user_scoped_subscription_in(sandbox_tenant, subscriber, receiver, key_pair):
    graph, creds = subscriber
    control, tid = sandbox_tenant.control, sandbox_tenant.tenant_id
    organizer = _users(sandbox_tenant)[1]
    control.create_policy(tid, "Tag:Notifications", [creds.app_id])
    control.grant_policy(tid, "Notifications", user=organizer["id"])
    resource = f"users/{organizer['userPrincipalName']}/onlineMeetings/getAllRecordings"
    body = {**_transcripts_subscription(receiver, key_pair), "resource": resource}
    response = graph("POST", "/subscriptions", json=body)
    assert response.status_code == 201, response.text
    control.publish_change(
        tid,
        change_type="created",
        resource="communications/onlineMeetings('MSo1')/recordings('MSMj1')",
        topics=[f"users/{organizer['id']}/onlineMeetings/getAllRecordings"],
        odata_type="#Microsoft.Graph.callRecording",
        resource_data={"id": "MSMj1"},
        organizer_id=organizer["id"],
    )
    [delivery] = receiver.wait_for(lambda r: len(r) >= 1)
    assert (
        delivery["body"]["value"][0]["resource"]
        == "communications/onlineMeetings('MSo1')/recordings('MSMj1')"
    )


# ---- units ------------------------------------------------------------------------------------------


def test_the_store_and_its_settings_survive_a_save():
    from meetgate_sandbox.subscriptions import Subscription, SubscriptionStore

    store = SubscriptionStore("tid")
    store.settings.update({"allowHttpLoopback": True, "outlookMaxMinutes": 10080})
    sub = Subscription(
        id="s1",
        resource="users/u/events",
        change_type="created",
        notification_url="https://example.org/n",
        expiration=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
        application_id="app",
        creator_id="sp",
        key="users/u/events",
    )
    store.subscriptions[sub.id] = sub
    again = SubscriptionStore("tid")
    again.load_dict(json.loads(json.dumps(store.to_dict())))
    assert again.subscriptions["s1"] == sub
    assert again.settings == store.settings
    assert again.live(dt.datetime(2031, 1, 1, tzinfo=dt.UTC)) == []  # expired ones are gone


def test_resources_match_case_insensitively_and_decoded():
    from meetgate_sandbox.subscriptions import match_key, resource_rule

    url = "https://teams.microsoft.com/l/meetup-join/19%3ameeting_X%40thread.v2/0"
    found = resource_rule(f"communications/onlineMeetings/?$filter=JoinWebUrl eq '{url}'")
    assert found is not None and found[0].kind == "callEvents" and found[0].beta_only
    assert match_key(f"/Communications/OnlineMeetings/?$filter=JoinWebUrl eq '{url}'") == match_key(
        "communications/onlineMeetings?$filter=joinWebUrl eq '" + urllib.parse.unquote(url) + "'"
    )
    assert resource_rule("/users/a@b.c/calendar/events") is not None
    assert resource_rule("users/a/events?$select=subject,start") is not None  # rich Outlook notifications
    assert resource_rule("users/a/messages") is None


def test_the_settings_refuse_unknown_names_and_bad_values(sandbox_tenant):
    from meetgate_sandbox.control import SandboxControlError

    control, tid = sandbox_tenant.control, sandbox_tenant.tenant_id
    for changes in ({"retryEverything": 1}, {"retryBaseSeconds": -1}, {"allowHttpLoopback": "yes"}):
        with pytest.raises(SandboxControlError) as refused:
            control.notification_settings(tid, **changes)
        assert refused.value.status == 400
    assert control.notification_settings(tid)["allowHttpLoopback"] is False


def test_an_https_endpoint_is_validated_and_served(sandbox, sandbox_tenant, subscriber):
    """Without the loopback switch: a receiver with a certificate the sandbox's CA issued."""
    graph, _ = subscriber
    control, tid = sandbox_tenant.control, sandbox_tenant.tenant_id
    control.notification_settings(tid, allowHttpLoopback=False)
    tls_dir = sandbox.info.ca_bundle.parent
    receiver = Receiver(tls=(str(tls_dir / "server.pem"), str(tls_dir / "server.key.pem")))
    try:
        user = _users(sandbox_tenant)[0]
        plain = _events_subscription(user["id"], receiver)
        refused = graph(
            "POST",
            "/subscriptions",
            json={**plain, "notificationUrl": plain["notificationUrl"].replace("https", "http")},
        )
        assert refused.status_code == 400
        response = graph("POST", "/subscriptions", json=plain)
        assert response.status_code == 201, response.text
        graph("POST", f"/users/{user['id']}/events", json=_event())
        [delivery] = receiver.wait_for(lambda r: len(r) >= 1)
        assert delivery["body"]["value"][0]["changeType"] == "created"
    finally:
        receiver.close()


def test_call_events_of_a_meeting_are_a_beta_subscription_behind_the_access_policy(
    sandbox_tenant, subscriber, receiver
):
    graph, creds = subscriber
    control, tid = sandbox_tenant.control, sandbox_tenant.tenant_id
    organizer = _users(sandbox_tenant)[2]
    control.create_policy(tid, "Tag:CallEvents", [creds.app_id])
    control.grant_policy(tid, "CallEvents", user=organizer["id"])
    meeting = graph(
        "POST",
        f"/users/{organizer['id']}/onlineMeetings",
        json={"subject": "Call events", "startDateTime": _in(60), "endDateTime": _in(90)},
    ).json()
    url = meeting["joinWebUrl"]
    resource = f"communications/onlineMeetings/?$filter=JoinWebUrl eq '{url}'"
    body = {
        "changeType": "updated",
        "notificationUrl": receiver.url(),
        "resource": resource,
        "expirationDateTime": _in(120),
        "clientState": "calls",
    }
    response = graph("POST", "/subscriptions", version="beta", json=body)
    assert response.status_code == 201, response.text
    unknown = {**body, "resource": "communications/onlineMeetings/?$filter=JoinWebUrl eq 'https://x/y'"}
    assert graph("POST", "/subscriptions", version="beta", json=unknown).status_code == 404
    control.grant_policy(tid, None, user=organizer["id"])
    refused = graph("POST", "/subscriptions", version="beta", json=body)
    assert refused.status_code == 403
    control.grant_policy(tid, "CallEvents", user=organizer["id"])
    control.publish_change(
        tid,
        change_type="updated",
        resource=f"communications/onlineMeetings(joinWebUrl='{urllib.parse.quote(url, safe='')}')/meetingCallEvents",
        topics=[
            f"communications/onlineMeetings/?$filter=JoinWebUrl eq '{urllib.parse.quote(url, safe=':/')}'"
        ],
        odata_type="#microsoft.graph.callStartedEventMessageDetail",
        resource_data={"@odata.type": "#Microsoft.Communication.CallStarted", "id": "call-1"},
        organizer_id=organizer["id"],
    )
    [delivery] = receiver.wait_for(lambda r: len(r) >= 1)
    assert delivery["body"]["value"][0]["clientState"] == "calls"
    assert delivery["body"]["value"][0]["changeType"] == "updated"


def test_an_invitation_notifies_the_attendees_calendar(sandbox_tenant, subscriber, receiver):
    graph, _ = subscriber
    organizer, attendee = _users(sandbox_tenant)[3:5]
    sub = graph("POST", "/subscriptions", json=_events_subscription(attendee["id"], receiver)).json()
    invite = {
        **_event(),
        "attendees": [{"emailAddress": {"address": attendee["userPrincipalName"]}, "type": "required"}],
    }
    event = graph("POST", f"/users/{organizer['id']}/events", json=invite).json()
    graph("POST", f"/users/{organizer['id']}/events/{event['id']}/cancel", json={})
    seen = receiver.wait_for(lambda r: len(r) >= 2)
    items = [x["body"]["value"][0] for x in seen]
    assert [i["changeType"] for i in items] == ["created", "updated"]
    assert all(i["subscriptionId"] == sub["id"] for i in items)
    assert items[0]["resource"].startswith(f"Users/{attendee['id']}/Events/")
    assert items[0]["resourceData"]["id"] != event["id"]  # the attendee's own copy


def test_subscriptions_survive_a_restart_and_keep_notifying(tmp_path, key_pair, receiver):
    from meetgate_sandbox.control import SandboxControl, ssl_context
    from meetgate_sandbox.server import SandboxOptions, SandboxServer

    state_dir = tmp_path / "sandbox"
    with SandboxServer(SandboxOptions(state_dir=state_dir, users=3)) as first:
        info = first.info
        with SandboxControl(info.control_url, info.ca_bundle) as control:
            tenant = control.create_tenant(users=3, seed=7)
            tid = tenant["tenantId"]
            app = control.register_app(
                tid,
                "persisted",
                certificate_pem=certificates.certificate_pem(key_pair.certificate),
                roles=["Calendars.ReadWrite"],
            )
            control.notification_settings(tid, allowHttpLoopback=True)
        creds = Credentials(tid, app["appId"], app["objectId"], app["servicePrincipalId"], key_pair)
        user = tenant["users"][0]["id"]
        with httpx.Client(verify=ssl_context(info.ca_bundle)) as client:
            graph = Graph(client, info.graph_url, app_token(first, client, creds))
            sub = graph("POST", "/subscriptions", json=_events_subscription(user, receiver)).json()
    with SandboxServer(SandboxOptions(state_dir=state_dir)) as second:
        info = second.info
        with httpx.Client(verify=ssl_context(info.ca_bundle)) as client:
            graph = Graph(client, info.graph_url, app_token(second, client, creds))
            assert graph("GET", f"/subscriptions/{sub['id']}").json()["clientState"] == "secretClientValue"
            graph("POST", f"/users/{user}/events", json=_event())
        [delivery] = receiver.wait_for(lambda r: len(r) >= 1)
        assert delivery["body"]["value"][0]["subscriptionId"] == sub["id"]


def test_a_held_calendar_meeting_notifies_its_transcript_and_recording(
    sandbox_tenant, subscriber, receiver, key_pair
):
    """End to end: an online calendar event, a transcript and a recording subscription, the meeting
    held through the control call: the rich notifications decrypt to the artifacts Graph then serves."""
    graph, creds = subscriber
    tid = sandbox_tenant.tenant_id
    organizer, attendee = _users(sandbox_tenant)[:2]
    control = sandbox_tenant.control
    control.create_policy(tid, "Tag:Artifacts", [creds.app_id])
    control.grant_policy(tid, "Artifacts", user=organizer["id"])
    event = graph(
        "POST",
        f"/users/{organizer['id']}/events",
        json={**_event(), "isOnlineMeeting": True, "onlineMeetingProvider": "teamsForBusiness"},
    ).json()
    join_url = event["onlineMeeting"]["joinUrl"]
    meetings = graph(
        "GET", f"/users/{organizer['id']}/onlineMeetings", params={"$filter": f"JoinWebUrl eq '{join_url}'"}
    ).json()["value"]
    meeting_id = meetings[0]["id"]
    recordings = _transcripts_subscription(
        receiver, key_pair, resource="communications/onlineMeetings/getAllRecordings"
    )
    for body in (_transcripts_subscription(receiver, key_pair), recordings):
        created = graph("POST", "/subscriptions", json=body)
        assert created.status_code == 201, created.text
    session = control.hold_meeting(
        tid,
        meeting_id,
        [
            {"user": organizer["id"], "role": "Organizer", "join": 0, "leave": 600},
            {"user": attendee["id"], "role": "Attendee", "join": 30, "leave": 590},
        ],
        start=-900,
        end=600,
    )
    seen = receiver.wait_for(lambda items: len([i for i in items if i["path"].startswith("/notify")]) >= 2)
    kinds = {}
    for item in (i for i in seen if i["path"].startswith("/notify")):
        [notification] = item["body"]["value"]
        assert notification["clientState"] == "transcripts-secret"
        data = json.loads(_decrypt(notification["encryptedContent"], key_pair))
        kinds["transcript" if "/transcripts(" in notification["resource"] else "recording"] = data
    transcript = kinds["transcript"]
    assert transcript["meetingId"] == meeting_id
    content = graph(
        "GET",
        f"/users/{organizer['id']}/onlineMeetings/{meeting_id}/transcripts/{transcript['id']}/content",
        params={"$format": "text/vtt"},
    )
    assert content.status_code == 200 and content.text.startswith("WEBVTT")
    assert kinds["recording"]["meetingId"] == meeting_id
    assert session
