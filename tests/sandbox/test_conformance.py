"""Conformance with Microsoft's documented examples (issue 16).

Every request/response example of the Graph v1.0 reference pages for the endpoints the sandbox serves
(extracted into ``sandbox/conformance/examples.json`` by ``sandbox/conformance/extract.py``) is sent
to one sandbox tenant, with the doc's placeholder ids replaced by the tenant's real objects. Each test
asserts:

- the status is the documented one;
- every documented key of the response body exists with the same JSON type, recursively (arrays:
  the first element's shape; ``null`` on either side matches any type, since Graph properties are
  nullable; numbers are one type); no values are compared except ``@odata.type``, which must match
  when the sandbox sends one (Graph omits it where the type is the declared one; the docs write it
  in everywhere for readability, so its absence is no difference);
- for examples the docs do not mark ``truncated``, no key beyond the documented ones;
- error-envelope examples: ``error.code`` and ``error.message`` exist.

Judgements are tables, each entry with its reason: :data:`EXCLUDED` (reported as skips: the example
cannot be replayed meaningfully against any tenant like ours), :data:`KNOWN_GAPS` (strict xfails: what
the sandbox lacks today; a fixed gap fails the suite until its entry is removed) and
:data:`CORRECTIONS` (docs slips replayed as corrected; :data:`BARE_COLLECTION_ITEMS`, responses
the docs show without their collection wrapper). ``python sandbox/conformance/figure.py``
prints the figure: examples passing / examples on those pages, exclusions listed.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from conftest import Hidden, acquire
from meetgate import certificates
from meetgate.graph.applications import key_proof
from meetgate_sandbox.control import SandboxControl
from meetgate_sandbox.server import SandboxServer

FIXTURE = Path(__file__).resolve().parents[2] / "sandbox" / "conformance" / "examples.json"
DOCS = json.loads(FIXTURE.read_text(encoding="utf-8"))
EXAMPLES: list[dict[str, Any]] = DOCS["examples"]

APP_ROLES = (
    "OnlineMeetings.ReadWrite.All",
    "User.Read.All",
    "Group.Read.All",
    "Application.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
    "AuditLog.Read.All",
)
DELEGATED_SCOPES = ("User.Read", "OnlineMeetings.ReadWrite")
POLICY = "Tag:ConformanceExamples"

#: examples not replayed, with the reason (reported as pytest skips, never passed silently)
EXCLUDED: dict[str, str] = {
    "user-list:get_signinname_users": (
        "needs an Azure AD B2C tenant: local-account identities (issuerAssignedId) exist only there"
    ),
    "user-list:get_user_assignedLicenses": "needs licensed users (assignedLicenses/skuId); the sandbox has no licences",
    "group-list:get_groups_withlicenseerrors_count": "needs group-based licensing errors; the sandbox has no licences",
}

#: examples that fail today, with what the sandbox lacks (strict xfails: remove an entry once fixed)
KNOWN_GAPS: dict[str, str] = {}

#: documented keys not compared in some examples, with the reason (the example still counts)
IGNORED_KEYS: dict[str, tuple[frozenset[str], str]] = {
    example: (
        frozenset({"mailNickname", "otherMails", "proxyAddresses"}),
        "docs wrong: the page says GET /users returns only the default property set (businessPhones, "
        "displayName, givenName, id, jobTitle, mail, mobilePhone, officeLocation, preferredLanguage, "
        "surname, userPrincipalName), yet its example shows mailNickname, otherMails, proxyAddresses",
    )
    for example in (
        "user-list:get_users_2",
        "user-list:get_a_count",
        "user-list:get_wa_count",
        "user-list:get_to_count",
    )
}

#: documented keys of any example that v1.0 has retired since the page was written
RETIRED_KEYS: dict[str, str] = {
    "participants.producers": "retired: v1.0 meetingParticipants has attendees and organizer only",
    "participants.contributors": "retired: v1.0 meetingParticipants has attendees and organizer only",
}

#: docs slips, replayed as corrected (the reason says what was corrected)
CORRECTIONS: dict[str, str] = {
    "onlinemeeting-get:get-onlinemeeting-joinurl-user-token": "the docs' URL says /v1/ for /v1.0/",
    "onlinemeeting-get:example5": "the docs' URL says /v1/ for /v1.0/",
    "signin-list:list_signins_2": "the docs write ?&$filter=...&top=10 for ?$filter=...&$top=10",
}

#: examples whose response the docs show as the one item of a collection without its ``value`` wrapper
#: (compared against ``value[0]``), with the reason
BARE_COLLECTION_ITEMS: dict[str, str] = {
    "onlinemeeting-get:get-onlineMeeting": (
        "docs wrong: the page says a lookup by videoTeleconferenceId 'returns a collection that contains "
        "only one onlineMeeting object' (its SDK snippets read an OnlineMeetingCollectionResponse), yet "
        "the example shows the onlineMeeting bare"
    ),
}

#: keys the docs misspell in a response (Graph's JSON is case-sensitive), with the right spelling
DOC_KEY_TYPOS: dict[str, str] = {
    "ConferenceId": "conferenceId",  # audioConferencing.conferenceId (onlineMeeting examples)
    "Type": "type",  # targetResource.type (directoryAudit examples)
}

#: keys whose presence depends on the data, not the shape: a next page exists or not
DATA_DEPENDENT_KEYS = frozenset({"@odata.nextLink"})

#: the segment after these collections is a key the docs show as a placeholder or their own id
KEYED = {
    "users": "user",
    "groups": "group",
    "applications": "application",
    "servicePrincipals": "service_principal",
    "onlineMeetings": "meeting",
    "appRoleAssignedTo": "assignment",
}
NOT_KEYS = re.compile(r"^(\$|microsoft\.graph\.|createOrGet$|add|remove)")


# ---- the tenant the examples run in ----------------------------------------------------------------


@dataclass
class World:
    """One tenant, one consented app with a certificate, a pilot organizer and its meeting."""

    sandbox: SandboxServer
    control: SandboxControl
    http: httpx.Client
    tenant: dict[str, Any]
    app: dict[str, Any]
    pair: certificates.KeyPair
    token: str
    organizer: dict[str, Any]
    attendee: dict[str, Any]
    graph_sp: dict[str, Any]
    ids: dict[str, str] = field(default_factory=dict)
    delegated: dict[str, str] = field(default_factory=dict)

    def call(
        self,
        method: str,
        path: str,
        *,
        query: str = "",
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        version: str = "v1.0",
        delegated: bool = False,
    ) -> httpx.Response:
        token = self.delegated_token() if delegated else self.token
        url = f"{self.sandbox.info.graph_url}/{version}{path}" + (f"?{query}" if query else "")
        sent = {"Authorization": f"Bearer {token}", **(headers or {})}
        content = None if json_body is None else json.dumps(json_body).encode()
        if content is not None:
            sent.setdefault("Content-Type", "application/json")
        return self.http.request(method, url, headers=sent, content=content)

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        """A setup call (app token, v1.0) that must succeed; its JSON or None."""
        response = self.call(method, path, json_body=body)
        assert response.status_code < 300, (method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def delegated_token(self) -> str:
        if "organizer" not in self.delegated:
            token = self.control.delegated_token(
                self.tenant["tenantId"], self.organizer["id"], self.app["appId"], DELEGATED_SCOPES
            )
            self.delegated["organizer"] = Hidden(token)
        return self.delegated["organizer"]

    # -- objects some examples need of their own -----------------------------------------------------

    def new_meeting(self, subject: str = "Conformance example") -> dict[str, Any]:
        body = {
            "subject": subject,
            "startDateTime": "2030-07-01T09:00:00Z",
            "endDateTime": "2030-07-01T09:30:00Z",
        }
        meeting: dict[str, Any] = self.ok("POST", f"/users/{self.organizer['id']}/onlineMeetings", body)
        return meeting

    def new_application(self, name: str = "Conformance scratch app") -> dict[str, Any]:
        created: dict[str, Any] = self.ok("POST", "/applications", {"displayName": name})
        return created

    def new_service_principal(self) -> dict[str, Any]:
        app = self.new_application("Conformance principal")
        created: dict[str, Any] = self.ok("POST", "/servicePrincipals", {"appId": app["appId"]})
        return created

    def proof(self) -> str:
        return key_proof(self.pair.private_key, self.pair.certificate, self.app["objectId"])

    def role_id(self, value: str) -> str:
        return next(str(r["id"]) for r in self.graph_sp["appRoles"] if r["value"] == value)


#: Microsoft's Graph Explorer, a first-party public client of every tenant
GRAPH_EXPLORER = "de8bc8b5-d9f9-48b1-a8ad-b748da725064"


def _sign_in_a_user(world: World, client_id: str | None = None) -> None:
    """A user sign-in (device code, approved at once by the tenant's admin): v1.0 lists only those."""
    authority = f"{world.sandbox.info.authority_url}/{world.tenant['tenantId']}/oauth2/v2.0"
    client = {"client_id": client_id or world.app["appId"]}
    code = world.http.post(f"{authority}/devicecode", data={**client, "scope": "User.Read"})
    assert code.status_code == 200, code.text
    grant = "urn:ietf:params:oauth:grant-type:device_code"
    form = {**client, "grant_type": grant, "device_code": code.json()["device_code"]}
    token = world.http.post(f"{authority}/token", data=form)
    assert token.status_code == 200, token.text


def _group_id(tenant: dict[str, Any], name: str) -> str:
    return next(str(g["id"]) for g in tenant["groups"] if g["displayName"] == name)


@pytest.fixture(scope="module")
def world(
    sandbox: SandboxServer,
    sandbox_control: SandboxControl,
    http: httpx.Client,
    key_pair: certificates.KeyPair,
) -> World:
    tenant = sandbox_control.create_tenant(users=12)
    app = sandbox_control.register_app(
        tenant["tenantId"],
        # its name starts with an "a": the $filter=startswith(displayName, 'a') examples list it
        "Adatum conformance examples",
        certificate_pem=certificates.certificate_pem(key_pair.certificate),
        roles=APP_ROLES,
    )
    users = [u for u in tenant["users"] if u["accountEnabled"]]
    organizer, attendee = users[0], users[1]
    if "policy" in sandbox_control.health().get("features", []):
        sandbox_control.create_policy(tenant["tenantId"], POLICY, [app["appId"]], "conformance examples")
        sandbox_control.grant_policy(tenant["tenantId"], POLICY.removeprefix("Tag:"), user=organizer["id"])
    credential = {"private_key": certificates.private_key_pem(key_pair.private_key).decode(),
                  "thumbprint": key_pair.thumbprint_sha1}  # fmt: skip
    result = acquire(sandbox, http, tenant["tenantId"], app["appId"], credential)
    assert "access_token" in result, result.get("error_description")
    world = World(
        sandbox=sandbox,
        control=sandbox_control,
        http=http,
        tenant=tenant,
        app=app,
        pair=key_pair,
        token=Hidden(result["access_token"]),
        organizer=organizer,
        attendee=attendee,
        graph_sp={},
    )
    _sign_in_a_user(world)
    world.graph_sp = world.ok("GET", "/servicePrincipals(appId='00000003-0000-0000-c000-000000000000')")
    meeting = world.new_meeting("Conformance: the organizer's meeting")
    world.ids = {
        "user": organizer["id"],
        "group": _group_id(tenant, "Regional Managers"),
        "application": app["objectId"],
        "service_principal": app["servicePrincipalId"],
        "meeting": meeting["id"],
        "join_web_url": meeting["joinWebUrl"],
        "vtc_id": meeting["videoTeleconferenceId"],
    }
    return world


# ---- per-example preparation: objects an example changes or needs ----------------------------------


@dataclass
class Replay:
    """What an example is sent as, after the placeholders are replaced."""

    method: str
    version: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any
    delegated: bool


Prepare = Callable[[World, Replay], None]


def _scratch_application(world: World, replay: Replay) -> None:
    _rekey(replay, "applications", world.new_application()["id"])


def _add_key(world: World, replay: Replay) -> None:
    """A new certificate: its DER form, or for an X509CertAndPassword key a PFX and its password."""
    pair = certificates.generate_self_signed("conformance-addkey")
    key = pair.certificate.public_bytes(Encoding.DER)
    if replay.body.get("passwordCredential"):
        password = "conformance-pfx-password"
        key = certificates.pfx_bytes(pair, password.encode())
        replay.body["passwordCredential"]["secretText"] = password
    replay.body["keyCredential"]["key"] = base64.b64encode(key).decode()
    replay.body["proof"] = world.proof()


def _remove_key(world: World, replay: Replay) -> None:
    pair = certificates.generate_self_signed("conformance-removekey")
    key = base64.b64encode(pair.certificate.public_bytes(Encoding.DER)).decode()
    added = world.ok(
        "POST",
        f"/applications/{world.app['objectId']}/addKey",
        {
            "keyCredential": {"type": "AsymmetricX509Cert", "usage": "Verify", "key": key},
            "passwordCredential": None,
            "proof": world.proof(),
        },
    )
    replay.body = {**replay.body, "keyId": added["keyId"], "proof": world.proof()}


def _remove_password(world: World, replay: Replay) -> None:
    added = world.ok(
        "POST",
        f"/applications/{world.app['objectId']}/addPassword",
        {"passwordCredential": {"displayName": "conformance: to remove"}},
    )
    replay.body = {**replay.body, "keyId": added["keyId"]}


def _new_service_principal(world: World, replay: Replay) -> None:
    replay.body = {**replay.body, "appId": world.new_application("Conformance SP")["appId"]}


def _on_graph(world: World, replay: Replay) -> None:
    _rekey(replay, "servicePrincipals", world.graph_sp["id"])


def _grant(world: World, replay: Replay) -> None:
    _on_graph(world, replay)
    replay.body = {
        "principalId": world.new_service_principal()["id"],
        "resourceId": world.graph_sp["id"],
        "appRoleId": world.role_id("User.Read.All"),
    }


def _revoke(world: World, replay: Replay) -> None:
    _on_graph(world, replay)
    granted = world.ok(
        "POST",
        f"/servicePrincipals/{world.graph_sp['id']}/appRoleAssignedTo",
        {
            "principalId": world.new_service_principal()["id"],
            "resourceId": world.graph_sp["id"],
            "appRoleId": world.role_id("User.Read.All"),
        },
    )
    _rekey(replay, "appRoleAssignedTo", granted["id"])


def _named_application(name: str) -> Prepare:
    """An application (and its service principal) whose name the example's ``$search`` finds."""

    def prepare(world: World, replay: Replay) -> None:
        existing = world.call("GET", "/applications", query=f"$filter=displayName eq '{name}'").json()
        if not existing["value"]:
            app = world.new_application(name)
            world.ok("POST", "/servicePrincipals", {"appId": app["appId"]})

    return prepare


def _scratch_meeting(world: World, replay: Replay) -> None:
    _rekey(replay, "onlineMeetings", world.new_meeting("Conformance: to delete")["id"])


def _attendee(world: World, replay: Replay) -> None:
    attendee = {
        "identity": {"user": {"id": world.attendee["id"]}},
        "upn": world.attendee["userPrincipalName"],
    }
    replay.body = {**replay.body, "participants": {"attendees": [attendee]}}


def _existing_external_id(world: World, replay: Replay) -> None:
    """The docs show 200 OK: the meeting with that externalId exists already (a new one is 201)."""
    created = world.call("POST", replay.path, json_body=replay.body, delegated=replay.delegated)
    assert created.status_code == 201, created.text


def _join_web_url(world: World, replay: Replay) -> None:
    encoded = urllib.parse.quote(world.ids["join_web_url"], safe="")
    replay.query = re.sub(r"'[^']*'", f"'{encoded}'", replay.query, count=1)


def _video_teleconference_id(world: World, replay: Replay) -> None:
    replay.query = re.sub(r"'[^']*'", f"'{world.ids['vtc_id']}'", replay.query, count=1)


def _sign_ins_query(world: World, replay: Replay) -> None:
    replay.query = replay.query.lstrip("&").replace("&top=", "&$top=")


def _admin_registers_an_app(world: World, replay: Replay) -> None:
    """A directory change by a signed-in admin: its audit names the user (initiatedBy.user)."""
    admin = world.tenant["adminId"]
    token = world.control.delegated_token(
        world.tenant["tenantId"], admin, world.app["appId"], ["Application.ReadWrite.All"]
    )
    created = world.http.post(
        f"{world.sandbox.info.graph_url}/v1.0/applications",
        json={"displayName": "Conformance: registered by the admin"},
        headers={"Authorization": f"Bearer {Hidden(token)}"},
    )
    assert created.status_code == 201, created.text


def _graph_explorer_sign_in(world: World, replay: Replay) -> None:
    """The example lists sign-ins to apps whose name starts with 'Graph': sign in to Graph Explorer."""
    _sign_in_a_user(world, GRAPH_EXPLORER)


def _version_v1(world: World, replay: Replay) -> None:
    replay.version = "v1.0"


#: the words the docs' directory queries search for name their tenant's objects (Oscar Ward, "Contoso-tier"
#: groups); the replay searches the same way for a word of ours (docs text -> ours; {domain}: the tenant's)
OUR_WORDS: dict[str, tuple[str, str]] = {
    "user-list:get_a_count_endsWith": ("'a@contoso.com'", "'@{domain}'"),
    "user-list:get_wa_count": ("displayName:wa", "displayName:wi"),  # Alex Wilber
    "user-list:get_to_count": ('"displayName:to"', '"displayName:lo"'),  # Johanna Lorenz, Lidia Holloway
    "user-list-memberof:get_tier_count": ("displayName:tier", "displayName:company"),  # All Company
    "user-list-transitivememberof:get_tier_count": ("displayName:tier", "displayName:company"),
    "group-list:get_video_count": ("displayName:Video", "displayName:Sales"),  # Sales and Marketing
    "group-list:get_video_count#2": ('"description:prod"', '"description:support"'),  # Customer Support
    "group-list-members:get_pr_count": ("displayName:Pr", "displayName:La"),  # Isaiah Langer
    "group-list-members:get_a_count": ("'a'", "'m'"),  # Meeting Organizers
    "group-list-transitivemembers:get_tier_count": ("displayName:tier", "displayName:mu"),  # H. Mueller
}


def _our_word(theirs: str, ours: str) -> Prepare:
    def replace(world: World, replay: Replay) -> None:
        assert theirs in replay.query, (theirs, replay.query)
        replay.query = replay.query.replace(theirs, ours.format(domain=world.tenant["domain"]))

    return replace


def _unified_group(world: World, replay: Replay) -> None:
    """The docs' group is a Microsoft 365 group (Exchange keeps its mailbox properties): All Company."""
    _rekey(replay, "groups", _group_id(world.tenant, "All Company"))


PREPARE: dict[str, list[Prepare]] = {
    "application-list:get_web_count": [_named_application("DotNetWeb-App")],
    "serviceprincipal-list:get_team_count": [_named_application("myContosoTeam")],
    **{example: [_our_word(*words)] for example, words in OUR_WORDS.items()},
    "group-get:get_group_non_default": [_unified_group],
    "application-update:update_application": [_scratch_application],
    "application-delete:delete_application": [_scratch_application],
    "application-addkey:application_addkey_1": [_add_key],
    "application-addkey:application_addkey_2": [_add_key],
    "application-removekey:application_removekey": [_remove_key],
    "application-removepassword:application_removepassword": [_remove_password],
    "serviceprincipal-post-serviceprincipals:create_serviceprincipal_from_serviceprincipals": [
        _new_service_principal
    ],
    "serviceprincipal-list-approleassignedto:serviceprincipal_get_approleassignedto": [_on_graph],
    "serviceprincipal-post-approleassignedto:serviceprincipal_create_approleassignedto": [_grant],
    "serviceprincipal-delete-approleassignedto:serviceprincipal_delete_approleassignedto": [_revoke],
    "onlinemeeting-delete:delete-call-2": [_scratch_meeting],
    "onlinemeeting-createorget:create-or-get-onlinemeeting": [_attendee, _existing_external_id],
    "onlinemeeting-get:get-onlinemeeting-joinurl-user-token": [_version_v1, _join_web_url],
    "onlinemeeting-get:example5": [_version_v1, _join_web_url],
    "onlinemeeting-get:get-onlineMeeting": [_video_teleconference_id],
    "signin-list:list_signins_2": [_sign_ins_query, _graph_explorer_sign_in],
    "directoryaudit-list:get_directoryaudit_2": [_admin_registers_an_app],
}


def _rekey(replay: Replay, collection: str, key: str) -> None:
    segments = replay.path.split("/")
    for index in range(1, len(segments)):
        if segments[index - 1] == collection:
            segments[index] = key
    replay.path = "/".join(segments)


def replay_of(example: dict[str, Any], world: World) -> Replay:
    """The example's request with the doc's ids replaced by the tenant's objects."""
    request = example["request"]
    segments = request["path"].split("/")
    for index in range(1, len(segments)):
        role = KEYED.get(segments[index - 1])
        if role in world.ids and segments[index] and not NOT_KEYS.match(segments[index]):
            segments[index] = world.ids[role]
    skip = {"authorization", "content-length", "host"}
    replay = Replay(
        method=request["method"],
        version=request["version"],
        path="/".join(segments),
        query=request["query"],
        headers={k: v for k, v in request["headers"].items() if k.lower() not in skip},
        body=json.loads(json.dumps(request["body"])),
        delegated=request["path"].startswith("/me"),
    )
    for step in PREPARE.get(example["id"], []):
        step(world, replay)
    return replay


# ---- the shape comparison ------------------------------------------------------------------------


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _not_compared(where: str, key: str, ignored: frozenset[str]) -> bool:
    path = re.sub(r"^\$\.?(value\[0\]\.?)?", "", f"{where}.{key}")
    return key in ignored or path in RETIRED_KEYS


def shape_problems(
    documented: Any, actual: Any, *, exact: bool, where: str = "$", ignored: frozenset[str] = frozenset()
) -> list[str]:
    """How ``actual`` differs in shape from ``documented`` (see the module docstring)."""
    doc_kind, real_kind = _kind(documented), _kind(actual)
    if "null" in (doc_kind, real_kind):
        return []
    if doc_kind != real_kind:
        return [f"{where}: documented {doc_kind}, got {real_kind}"]
    problems: list[str] = []
    if isinstance(documented, dict):
        expected = {DOC_KEY_TYPOS.get(str(key)) or str(key): value for key, value in documented.items()}
        for key, value in expected.items():
            if _not_compared(where, key, ignored):
                continue
            if key == "@odata.type":
                if key in actual and str(value).lstrip("#") != str(actual[key]).lstrip("#"):
                    problems.append(f"{where}.{key}: documented {value!r}, got {actual[key]!r}")
            elif key not in actual and key not in DATA_DEPENDENT_KEYS:
                problems.append(f"{where}.{key}: missing")
            elif key in actual:
                problems += shape_problems(
                    value, actual[key], exact=exact, where=f"{where}.{key}", ignored=ignored
                )
        if exact:
            problems += [f"{where}.{key}: not documented" for key in actual if key not in expected]
    elif isinstance(documented, list) and documented:
        if not actual:
            return [f"{where}: documented items, got none to compare"] if where.endswith(".value") else []
        problems += shape_problems(
            documented[0], actual[0], exact=exact, where=f"{where}[0]", ignored=ignored
        )
    return problems


def _body(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


# ---- the tests -------------------------------------------------------------------------------------


def _param(example: dict[str, Any]) -> Any:
    marks: list[Any] = []
    if example["id"] in KNOWN_GAPS:
        marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[example["id"]]))
    return pytest.param(example, id=example["id"], marks=marks)


@pytest.mark.parametrize("example", [_param(e) for e in EXAMPLES])
def test_documented_example(world: World, example: dict[str, Any]) -> None:
    if example["id"] in EXCLUDED:
        pytest.skip(f"excluded: {EXCLUDED[example['id']]}")
    documented = example["response"]
    assert documented is not None, "the page shows no response for this request"
    replay = replay_of(example, world)
    response = world.call(
        replay.method,
        replay.path,
        query=replay.query,
        json_body=replay.body,
        headers=replay.headers,
        version=replay.version,
        delegated=replay.delegated,
    )
    sent = f"{replay.method} /{replay.version}{replay.path}{'?' + replay.query if replay.query else ''}"
    body = _body(response)
    assert response.status_code == documented["status"], (
        f"{sent} -> {response.status_code}: {response.text[:600]}"
    )
    if isinstance(documented["body"], dict) and "error" in documented["body"]:
        assert isinstance(body, dict) and {"code", "message"} <= set(body.get("error", {})), body
        return
    if documented["body"] is not None:
        if example["id"] in BARE_COLLECTION_ITEMS:
            assert isinstance(body, dict) and len(body.get("value", [])) == 1, body
            body = body["value"][0]
        ignored = IGNORED_KEYS.get(example["id"], (frozenset(), ""))[0]
        problems = shape_problems(
            documented["body"], body, exact=not documented["truncated"], ignored=ignored
        )
        assert not problems, f"{sent}:\n" + "\n".join(problems)


def test_every_judgement_names_a_documented_example() -> None:
    """The tables hold no stale entries (an example the docs dropped, a typo in an id)."""
    ids = {e["id"] for e in EXAMPLES}
    for table in (EXCLUDED, KNOWN_GAPS, CORRECTIONS, PREPARE, IGNORED_KEYS, BARE_COLLECTION_ITEMS):
        assert set(table) <= ids, set(table) - ids
    assert not set(EXCLUDED) & set(KNOWN_GAPS)
