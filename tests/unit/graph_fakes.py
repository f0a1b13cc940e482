"""A small in-memory Entra + Graph for unit tests of meetgate.graph, served through httpx.MockTransport.

Not the sandbox: just enough behaviour (discovery, client-credentials token, users, onlineMeetings,
createOrGet, scripted faults) to test the client's own logic without a network.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx

from meetgate import certificates
from meetgate.graph.credentials import CertificateCredential
from meetgate.graph.settings import GraphSettings

AUTHORITY = "https://login.test"
GRAPH = "https://graph.test"
TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT_ID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def fake_jwt(claims: dict[str, Any]) -> str:
    header = b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps(claims).encode())
    return f"{header}.{payload}.{b64url(b'not-a-real-signature-' + uuid.uuid4().bytes)}"


def decode_segment(segment: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


_PAIR = certificates.generate_self_signed("meetgate-unit-test")


def credential() -> CertificateCredential:
    return CertificateCredential(_PAIR.private_key, _PAIR.certificate)


def private_key_pem() -> bytes:
    return certificates.private_key_pem(_PAIR.private_key)


def settings(**overrides: Any) -> GraphSettings:
    values: dict[str, Any] = {
        "tenant_id": TENANT,
        "client_id": CLIENT_ID,
        "credential": credential(),
        "authority_url": AUTHORITY,
        "graph_url": GRAPH,
    }
    values.update(overrides)
    return GraphSettings(**values)


Fault = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


@dataclass
class FakeCloud:
    """Entra token endpoint + a slice of Graph. ``faults`` are served (in order) before real handling
    of Graph requests; ``token_faults`` likewise for the token endpoint."""

    roles: list[str] = field(default_factory=lambda: ["OnlineMeetings.ReadWrite.All", "User.Read.All"])
    token_lifetime: int = 3599
    users: dict[str, str] = field(default_factory=dict)  # upn -> id
    policy_users: set[str] = field(default_factory=set)  # ids allowed by the access policy
    meetings: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    token_faults: list[Fault] = field(default_factory=list)
    token_error: dict[str, Any] | None = None
    requests: list[httpx.Request] = field(default_factory=list)
    assertions: list[dict[str, Any]] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    rejected_tokens: set[str] = field(default_factory=set)

    def add_user(self, upn: str, *, allowed: bool = True) -> str:
        user_id = str(uuid.uuid4())
        self.users[upn.lower()] = user_id
        if allowed:
            self.policy_users.add(user_id)
        return user_id

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    # -- routing --------------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        url = urlsplit(str(request.url))
        host = f"{url.scheme}://{url.netloc}"
        if host == AUTHORITY:
            if self.token_faults:
                return self._fault(self.token_faults.pop(0), request)
            return self._entra(request, url.path)
        if self.faults:
            return self._fault(self.faults.pop(0), request)
        return self._graph(request, url.path, parse_qs(url.query))

    def _fault(self, fault: Fault, request: httpx.Request) -> httpx.Response:
        if isinstance(fault, Exception):
            raise fault
        if isinstance(fault, httpx.Response):
            return fault
        return fault(request)

    def _entra(self, request: httpx.Request, path: str) -> httpx.Response:
        if path.endswith("/.well-known/openid-configuration"):
            tenant = path.split("/")[1]
            if tenant != TENANT:
                return httpx.Response(
                    400,
                    json={
                        "error": "invalid_tenant",
                        "error_description": f"AADSTS90002: Tenant '{tenant}' not found.",
                        "error_codes": [90002],
                    },
                )
            return httpx.Response(
                200,
                json={
                    "authorization_endpoint": f"{AUTHORITY}/{tenant}/oauth2/v2.0/authorize",
                    "token_endpoint": f"{AUTHORITY}/{tenant}/oauth2/v2.0/token",
                    "issuer": f"{AUTHORITY}/{tenant}/v2.0",
                },
            )
        if path.endswith("/oauth2/v2.0/token"):
            form = parse_qs(request.content.decode())
            if "client_assertion" in form:
                header_segment = form["client_assertion"][0].split(".")[0]
                self.assertions.append(decode_segment(header_segment))
            if self.token_error is not None:
                return httpx.Response(400, json=self.token_error)
            now = int(time.time())
            token = fake_jwt(
                {
                    "aud": "https://graph.microsoft.com",
                    "iss": f"https://sts.windows.net/{TENANT}/",
                    "appid": CLIENT_ID,
                    "appidacr": "2" if "client_assertion" in form else "1",
                    "idtyp": "app",
                    "oid": "sp-object-id",
                    "tid": TENANT,
                    "roles": list(self.roles),
                    "iat": now,
                    "nbf": now,
                    "exp": now + self.token_lifetime,
                }
            )
            self.issued.append(token)
            return httpx.Response(
                200,
                json={
                    "token_type": "Bearer",
                    "expires_in": self.token_lifetime,
                    "ext_expires_in": self.token_lifetime,
                    "access_token": token,
                },
            )
        return httpx.Response(404, json={"error": "not_found"})

    # -- graph ----------------------------------------------------------------------------------

    def error(self, status: int, code: str, message: str, **headers: str) -> httpx.Response:
        return httpx.Response(
            status,
            json={"error": {"code": code, "message": message, "innerError": {"request-id": "req-1"}}},
            headers={"request-id": "req-1", **headers},
        )

    def _graph(self, request: httpx.Request, path: str, query: dict[str, list[str]]) -> httpx.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token in self.rejected_tokens:
            return self.error(
                401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid."
            )
        parts = [unquote(p) for p in path.split("/") if p]
        if parts[:1] != ["v1.0"]:
            return self.error(404, "NotFound", "unknown version")
        parts = parts[1:]
        method = request.method
        claims = decode_segment(token.split(".")[1])
        if parts[0] == "users" and len(parts) == 2 and method == "GET":
            ref = parts[1].lower()
            user_id = self.users.get(ref) or (ref if ref in self.users.values() else None)
            if user_id is None:
                return self.error(
                    404,
                    "Request_ResourceNotFound",
                    f"Resource '{parts[1]}' does not exist or one of its queried reference-property objects are not present.",
                )
            upn = next(u for u, i in self.users.items() if i == user_id)
            return httpx.Response(200, json={"id": user_id, "userPrincipalName": upn, "displayName": upn})
        if parts[0] == "users" and len(parts) >= 3 and parts[2] == "onlineMeetings":
            organizer = parts[1]
            if "@" in organizer:
                return self.error(404, "NotFound", "")
            if "OnlineMeetings.ReadWrite.All" not in claims.get("roles", []):
                return self.error(403, "Forbidden", "")
            if organizer not in self.users.values():
                return self.error(404, "NotFound", "The user was not found.")
            if organizer not in self.policy_users:
                return self.error(403, "Forbidden", "No application access policy found for this app.")
            return self._meetings(request, organizer, parts[3:], query)
        return self.error(404, "NotFound", "no route")

    def _meetings(
        self, request: httpx.Request, organizer: str, rest: list[str], query: dict[str, list[str]]
    ) -> httpx.Response:
        method = request.method
        if rest == ["createOrGet"] and method == "POST":
            body = json.loads(request.content)
            for meeting in self.meetings.values():
                if meeting["_organizer"] == organizer and meeting["externalId"] == body["externalId"]:
                    return httpx.Response(200, json=self._public(meeting))
            start = body.get("startDateTime") or dt.datetime.now(dt.UTC).isoformat()
            end = (
                body.get("endDateTime")
                or (dt.datetime.fromisoformat(start) + dt.timedelta(hours=1)).isoformat()
            )
            meeting_id = b64url(f"1*{organizer}*0**19:meeting_{uuid.uuid4().hex}@thread.v2".encode())
            meeting = {
                "_organizer": organizer,
                "id": meeting_id,
                "externalId": body["externalId"],
                "subject": body.get("subject"),
                "startDateTime": start,
                "endDateTime": end,
                "creationDateTime": dt.datetime.now(dt.UTC).isoformat(),
                "joinWebUrl": f"https://teams.test/l/meetup-join/{meeting_id}/0?context=%7b%7d",
                "joinMeetingIdSettings": {"joinMeetingId": str(uuid.uuid4().int)[:12], "passcode": "Ab12Cd"},
                "chatInfo": {"threadId": "19:meeting_x@thread.v2"},
                "participants": {
                    "organizer": {"identity": {"user": {"id": organizer}}, "role": "presenter"},
                    "attendees": (body.get("participants") or {}).get("attendees", []),
                },
                "lobbyBypassSettings": {"scope": "organization", "isDialInBypassEnabled": False},
                "allowedPresenters": "everyone",
                "allowMeetingChat": "enabled",
            }
            self.meetings[meeting_id] = meeting
            return httpx.Response(201, json=self._public(meeting))
        if not rest and method == "GET":
            flt = query.get("$filter", [""])[0]
            found = [
                self._public(m)
                for m in self.meetings.values()
                if m["_organizer"] == organizer
                and (
                    f"'{m['joinWebUrl']}'" in flt or f"'{m['joinMeetingIdSettings']['joinMeetingId']}'" in flt
                )
            ]
            return httpx.Response(200, json={"value": found})
        if len(rest) >= 1:
            meeting = self.meetings.get(rest[0])
            if meeting is None or meeting["_organizer"] != organizer:
                return self.error(404, "NotFound", "The meeting was not found.")
            if len(rest) == 2 and rest[1] == "attendanceReports":
                return httpx.Response(200, json={"value": [{"id": "r1", "totalParticipantCount": 2}]})
            if len(rest) == 3 and rest[1] == "attendanceReports":
                return httpx.Response(
                    200,
                    json={
                        "id": rest[2],
                        "totalParticipantCount": 2,
                        "attendanceRecords": [{"emailAddress": "a@x.test", "totalAttendanceInSeconds": 60}],
                    },
                )
            if method == "GET":
                return httpx.Response(200, json=self._public(meeting))
            if method == "DELETE":
                del self.meetings[rest[0]]
                return httpx.Response(204)
            if method == "PATCH":
                body = json.loads(request.content)
                if ("startDateTime" in body) != ("endDateTime" in body):
                    return self.error(400, "BadRequest", "Both start and end are required.")
                for key, value in body.items():
                    if key == "participants":
                        meeting["participants"]["attendees"] = value.get("attendees", [])
                    else:
                        meeting[key] = value
                return httpx.Response(200, json=self._public(meeting))
        return self.error(405, "MethodNotAllowed", "no route")

    @staticmethod
    def _public(meeting: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in meeting.items() if not k.startswith("_")}
