"""The validation suite's logic over fakes of its ports: ordering, blocking, cleanup (also when
interrupted), defaults, and the reports (JUnit parsed as XML, HTML, Markdown)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from meetgate import certificates
from meetgate.admin.reports import validation_html, validation_junit, validation_markdown
from meetgate.admin.validation import (
    CHECKS,
    InMemoryCleanupJournal,
    PendingMeeting,
    ProbeSample,
    TeamsConnection,
    ValidationConfig,
    ValidationRun,
    ValidationTarget,
    cleanup_leftovers,
    default_test_users,
    run_validation,
)
from meetgate.graph.auth import AccessToken
from meetgate.graph.errors import AccessPolicyMissing, AuthenticationError, ThrottledError, UserNotFound
from meetgate.graph.models import CreateOrGetResult, OnlineMeeting, User

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"


def _jwt(claims: dict) -> str:
    def seg(d: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    return f"{seg({'alg': 'RS256'})}.{seg(claims)}.c2ln"


def app_claims(**over) -> dict:
    claims = {
        "tid": TENANT,
        "appid": CLIENT,
        "appidacr": "2",
        "idtyp": "app",
        "roles": ["OnlineMeetings.ReadWrite.All", "User.Read.All"],
        "aud": "https://graph.microsoft.com",
        "exp": 4102444800,
    }
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


class FakeTokens:
    def __init__(self, claims: dict | None = None, error: Exception | None = None):
        self.claims, self.error, self.calls = claims or app_claims(), error, 0

    def get_token(self, force_refresh: bool = False, *, rejected: str | None = None) -> AccessToken:
        self.calls += 1
        if self.error:
            raise self.error
        return AccessToken(_jwt(self.claims), dt.datetime(2100, 1, 1, tzinfo=dt.UTC))


class FakeDirectory:
    def __init__(self, users: dict[str, str]):
        self.users = users  # upn -> id

    def get_user(self, id_or_upn: str) -> User:
        if id_or_upn not in self.users:
            raise UserNotFound(f"user {id_or_upn} was not found", status=404, request_id="rid-404")
        return User(id=self.users[id_or_upn], user_principal_name=id_or_upn, account_enabled=True)


class FakeMeetings:
    """Meetings keyed by (organizer, externalId); ``allowed`` organizers pass the policy."""

    def __init__(self, allowed: set[str], *, interrupt_on_get: bool = False):
        self.allowed = allowed
        self.meetings: dict[tuple[str, str], OnlineMeeting] = {}
        self.deleted: list[str] = []
        self.interrupt_on_get = interrupt_on_get

    def create_or_get(self, organizer, external_id, request):
        if organizer not in self.allowed:
            raise AccessPolicyMissing(
                "No application access policy found for this app",
                status=403,
                app_id=CLIENT,
                organizer=organizer,
                request_id="rid-403",
            )
        key = (organizer, external_id)
        created = key not in self.meetings
        if created:
            self.meetings[key] = OnlineMeeting(id=f"m-{uuid.uuid4().hex[:8]}", subject=request.subject)
        return CreateOrGetResult(meeting=self.meetings[key], created=created)

    def get(self, organizer, meeting_id):
        if self.interrupt_on_get:
            raise KeyboardInterrupt
        return next(m for (o, _), m in self.meetings.items() if o == organizer and m.id == meeting_id)

    def delete(self, organizer, meeting_id):
        for key, m in list(self.meetings.items()):
            if key[0] == organizer and m.id == meeting_id:
                del self.meetings[key]
                self.deleted.append(meeting_id)
                return
        from meetgate.graph.errors import MeetingNotFound

        raise MeetingNotFound("gone", status=404)


class FakeProbe:
    def __init__(self, samples):
        self.samples = list(samples)

    def sample(self):
        item = self.samples.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


@pytest.fixture
def cert_files(tmp_path: Path) -> tuple[Path, Path]:
    pair = certificates.generate_self_signed(valid_days=365)
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    certificates.write_secret_file(key, certificates.private_key_pem(pair.private_key))
    certificates.write_public_file(cert, certificates.certificate_pem(pair.certificate))
    return key, cert


USERS = {"alice@t.test": "id-alice", "bob@t.test": "id-bob", "eve@t.test": "id-eve"}


def target(cert_files, *, tokens=None, meetings=None, teams=None, probe=None, journal=None, **cfg):
    key, cert = cert_files
    config = ValidationConfig(
        tenant_id=TENANT,
        client_id=CLIENT,
        authority_url="https://login.test",
        graph_url="https://graph.test",
        private_key_path=key,
        certificate_path=cert,
        **cfg,
    )
    return ValidationTarget(
        config=config,
        tokens=tokens or FakeTokens(),
        meetings=meetings or FakeMeetings({"id-alice", "id-bob"}),
        directory=FakeDirectory(USERS),
        reachability=probe or FakeProbe([ProbeSample(200, 12.0, "r1"), ProbeSample(200, 15.0, "r2")]),
        teams=teams,
        journal=journal or InMemoryCleanupJournal(),
    )


def run(t, **kw):
    kw.setdefault("pilot", ["alice@t.test", "bob@t.test"])
    kw.setdefault("negative", ["eve@t.test"])
    return run_validation(t, reachability_samples=2, **kw)


def test_green_run_in_the_documented_order(cert_files):
    meetings = FakeMeetings({"id-alice", "id-bob"})
    journal = InMemoryCleanupJournal()
    result = run(target(cert_files, meetings=meetings, journal=journal))
    assert [c.name for c in result.checks] == [name for name, _ in CHECKS]
    assert result.status == "pass" or {c.name: c.status for c in result.checks}["teams_powershell"] == "skip"
    assert {c.name: c.status for c in result.checks if c.status != "pass"} == {"teams_powershell": "skip"}
    assert result.covers_policy_tests
    assert meetings.meetings == {} and len(meetings.deleted) == 2
    assert journal.pending() == []
    external = result.check("policy_positive").evidence["organizers"]["alice@t.test"]["external_id"]
    assert external.startswith("meetgate-validate-")
    assert result.check("policy_negative").evidence["users"]["eve@t.test"]["request_id"] == "rid-403"


def test_a_token_is_fetched_once_and_never_appears_in_results(cert_files):
    tokens = FakeTokens()
    result = run(target(cert_files, tokens=tokens))
    assert tokens.calls == 1
    text = json.dumps(result.to_dict())
    assert _jwt(app_claims()) not in text
    assert "PRIVATE KEY" not in text


def test_interrupted_run_still_deletes_the_test_meeting(cert_files):
    meetings = FakeMeetings({"id-alice", "id-bob"}, interrupt_on_get=True)
    journal = InMemoryCleanupJournal()
    with pytest.raises(KeyboardInterrupt):
        run(target(cert_files, meetings=meetings, journal=journal))
    assert meetings.meetings == {} and len(meetings.deleted) == 1
    assert journal.pending() == []


def test_cleanup_leftovers_deletes_what_a_killed_run_left(cert_files):
    meetings = FakeMeetings({"id-alice"})
    made = meetings.create_or_get("id-alice", "meetgate-validate-x-pilot1", _req())
    journal = InMemoryCleanupJournal()
    journal.announce(PendingMeeting("id-alice", "meetgate-validate-x-pilot1", made.meeting.id))
    journal.announce(PendingMeeting("id-alice", "meetgate-validate-y-pilot1"))  # killed inside create
    journal.announce(PendingMeeting("id-eve", "meetgate-validate-y-negative1"))  # refused anyway
    done = cleanup_leftovers(meetings, journal)
    assert [d["outcome"] for d in done] == ["deleted", "deleted", "nothing to delete"]
    assert meetings.meetings == {} and journal.pending() == []


def _req():
    from meetgate.graph.models import MeetingRequest

    return MeetingRequest(subject="x")


def test_unknown_certificate_at_entra_blames_the_certificate_not_the_token(cert_files):
    error = AuthenticationError("the token endpoint refused app: AADSTS700027", aadsts_code=700027)
    result = run(target(cert_files, tokens=FakeTokens(error=error)))
    statuses = {c.name: c.status for c in result.checks}
    assert statuses["certificate"] == "fail" and statuses["token"] == "skip"
    assert "meetgate cert upload" in (result.check("certificate").remedy or "")


def test_other_token_errors_fail_the_token_check_with_the_aadsts_code(cert_files):
    error = AuthenticationError("AADSTS7000112: app disabled", aadsts_code=7000112, remedy="enable it")
    result = run(target(cert_files, tokens=FakeTokens(error=error)))
    token = result.check("token")
    assert token.status == "fail" and token.evidence["aadsts"] == 7000112 and token.remedy == "enable it"
    assert result.check("certificate").status == "pass"


def test_secret_authentication_fails_the_token_check(cert_files):
    result = run(target(cert_files, tokens=FakeTokens(app_claims(appidacr="1"))))
    token = result.check("token")
    assert token.status == "fail" and "client secret" in token.finding
    assert result.check("policy_positive").status == "pass"  # not blocking


def test_token_for_another_tenant_blocks(cert_files):
    other = "99999999-2222-3333-4444-555555555555"
    result = run(target(cert_files, tokens=FakeTokens(app_claims(tid=other))))
    assert result.check("token").status == "fail"
    assert result.check("permissions").status == "skip"


def test_audit_log_role_is_reported_not_warned(cert_files):
    claims = app_claims(roles=["OnlineMeetings.ReadWrite.All", "User.ReadBasic.All", "AuditLog.Read.All"])
    result = run(target(cert_files, tokens=FakeTokens(claims)))
    check = result.check("permissions")
    assert check.status == "pass" and "AuditLog.Read.All" in check.evidence["feature_roles"]


def test_an_entra_calendar_grant_fails_permissions_only_beside_a_mailbox_scope(cert_files):
    claims = app_claims(roles=["OnlineMeetings.ReadWrite.All", "User.ReadBasic.All", "Calendars.ReadWrite"])
    scoped = run(target(cert_files, tokens=FakeTokens(claims), mailbox_scoped=True)).check("permissions")
    assert scoped.status == "fail" and not scoped.blocking
    assert scoped.evidence["entra_calendar_roles"] == ["Calendars.ReadWrite"] and "add up" in scoped.finding
    unscoped = run(target(cert_files, tokens=FakeTokens(claims))).check("permissions")
    assert unscoped.status == "warn" and unscoped.evidence["extra"] == ["Calendars.ReadWrite"]


def test_configuration_problems_block_everything(tmp_path):
    config = ValidationConfig(
        tenant_id=None, client_id="not-a-guid", authority_url="http://x", graph_url=None
    )
    result = run_validation(ValidationTarget(config=config), pilot=["a"], negative=["b"])
    conf = result.check("configuration")
    assert conf.status == "fail"
    for part in (
        "tenant_id is missing",
        "client_id 'not-a-guid' is not a GUID",
        "authority_url must be an https",
    ):
        assert part in conf.finding
    assert {c.status for c in result.checks[1:]} == {"skip"}


def test_pilot_given_as_negative_is_refused(cert_files):
    result = run(target(cert_files), negative=["alice@t.test"])
    assert result.check("organizer_lookup").status == "fail"
    assert result.check("policy_positive").status == "skip"


def test_unknown_pilot_fails_lookup_and_others_are_still_tested(cert_files):
    result = run(target(cert_files), pilot=["alice@t.test", "ghost@t.test"])
    assert result.check("organizer_lookup").status == "fail"
    assert "ghost@t.test" in result.check("organizer_lookup").finding
    positive = result.check("policy_positive")
    assert positive.status == "pass" and list(positive.evidence["organizers"]) == ["alice@t.test"]


def test_without_users_the_policy_tests_are_skipped_with_the_option_to_use(cert_files):
    result = run(target(cert_files), pilot=[], negative=[])
    assert result.check("policy_positive").status == "skip"
    assert "--pilot" in (result.check("policy_positive").remedy or "")
    assert not result.covers_policy_tests


def test_throttling_and_slowness_are_warnings(cert_files):
    probe = FakeProbe([ThrottledError("slow down", status=429, retry_after=2.0), ProbeSample(200, 10.0, "r")])
    result = run(target(cert_files, probe=probe))
    check = result.check("graph_reachability")
    assert check.status == "warn" and check.evidence["throttled"][0]["retry_after"] == 2.0
    slow = run(target(cert_files, probe=FakeProbe([ProbeSample(200, 2500.0), ProbeSample(200, 2600.0)])))
    assert slow.check("graph_reachability").status == "warn"


def test_teams_probe_results(cert_files):
    class Probe:
        def __init__(self, result):
            self.result = result

        def connect(self):
            return self.result

    ok = run(target(cert_files, teams=Probe(TeamsConnection(True, CLIENT, TENANT))))
    assert ok.check("teams_powershell").status == "pass"
    bad = run(target(cert_files, teams=Probe(TeamsConnection(False, detail="AADSTS700027"))))
    assert bad.check("teams_powershell").status == "fail"
    skipped = run(target(cert_files))
    assert "pwsh is not configured" in skipped.check("teams_powershell").finding


def test_only_restricts_the_run(cert_files):
    result = run(target(cert_files), only=["configuration", "certificate"])
    assert [c.name for c in result.checks if c.status != "skip"] == ["configuration", "certificate"]
    with pytest.raises(ValueError, match="unknown check"):
        run(target(cert_files), only=["nope"])


def test_expiring_certificate_warns(tmp_path):
    pair = certificates.generate_self_signed(valid_days=10)
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    certificates.write_secret_file(key, certificates.private_key_pem(pair.private_key))
    certificates.write_public_file(cert, certificates.certificate_pem(pair.certificate))
    result = run(target((key, cert)))
    check = result.check("certificate")
    assert check.status == "warn" and "expires in" in check.finding and "rotate" in (check.remedy or "")


def test_default_test_users():
    users = [
        User(id="id-alice", user_principal_name="alice@t.test", account_enabled=True),
        User(id="id-dis", user_principal_name="dis@t.test", account_enabled=False),
        User(id="id-eve", user_principal_name="eve@t.test", account_enabled=True),
    ]
    assert default_test_users(["alice@t.test", "bob@t.test", "carl@t.test"], users) == (
        ("alice@t.test", "bob@t.test"),
        ("eve@t.test",),
    )
    assert default_test_users([], []) == ((), ())
    # pilots given by hand are never picked as the negative user (by UPN or object id)
    assert default_test_users(["alice@t.test"], users, exclude=["EVE@t.test"]) == (("alice@t.test",), ())
    assert default_test_users(["alice@t.test"], users, exclude=["id-eve"]) == (("alice@t.test",), ())


def test_run_round_trips_through_its_dict(cert_files):
    result = run(target(cert_files))
    again = ValidationRun.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.to_dict() == result.to_dict() and again.covers_policy_tests


def test_junit_is_valid_xml_with_one_testcase_per_check(cert_files):
    result = run(target(cert_files, meetings=FakeMeetings({"id-alice"})))  # bob lacks the policy
    root = ET.fromstring(validation_junit(result))
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [name for name, _ in CHECKS]
    assert suite.get("failures") == "1" and suite.get("skipped") == "1"
    failure = next(c for c in cases if c.get("name") == "policy_positive").find("failure")
    assert failure is not None and "bob@t.test" in (failure.get("message") or "")
    assert "Grant-CsApplicationAccessPolicy" in (failure.text or "")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["run_id"] == result.id and props["status"] == "fail"


def test_html_and_markdown_render_every_check_escaped(cert_files):
    result = run(target(cert_files), pilot=["<script>@t.test"])
    page = validation_html(result)
    assert page.startswith("<!DOCTYPE html>") and "<script>@" not in page and "&lt;script&gt;" in page
    for name, _ in CHECKS:
        assert f'id="{name}"' in page
    ET.fromstring(page.split("\n", 1)[1])  # well-formed markup
    md = validation_markdown(result)
    assert md.count("\n| ") >= len(CHECKS)
