"""The calendar plane's validation tests over fakes: they run only when calendar placement is scoped,
pass when both planes hold, fail with the right remedy otherwise, and leave no event behind (also when
a step fails or the run is interrupted); golive's validation item counts them."""

from __future__ import annotations

import datetime as dt
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from test_validation import CLIENT, FakeMeetings, run, target

from meetgate import certificates
from meetgate.admin.readiness import ReadinessInputs, check_validation_recent
from meetgate.admin.reports import validation_html, validation_junit
from meetgate.admin.validation import (
    CHECKS,
    InMemoryCleanupJournal,
    PendingMeeting,
    ValidationRun,
    cleanup_leftovers,
)
from meetgate.graph.errors import AccessPolicyMissing, MailboxAccessDenied, MailboxNotEnabled
from meetgate.graph.event_models import CalendarMeeting, CreateOrGetEventResult
from meetgate.graph.models import OnlineMeeting


class FakeEvents:
    """Events keyed by (organizer, external id): ``scoped`` mailboxes accept them, ``teams`` organizers
    reach the onlineMeeting behind them, ``unlicensed`` ones have no mailbox."""

    def __init__(
        self,
        scoped: set[str],
        teams: set[str],
        *,
        unlicensed: frozenset[str] = frozenset(),
        join_url: bool = True,
        interrupt_on_meeting: bool = False,
    ):
        self.scoped, self.teams, self.unlicensed = scoped, teams, unlicensed
        self.join_url, self.interrupt_on_meeting = join_url, interrupt_on_meeting
        self.events: dict[tuple[str, str], CalendarMeeting] = {}
        self.deleted: list[str] = []
        self.requests: list = []

    def create_or_get(self, organizer, external_id, request):
        self.requests.append(request)
        if organizer in self.unlicensed:
            raise MailboxNotEnabled(
                "The mailbox is either inactive, soft-deleted, or is hosted on-premise.", status=404
            )
        if organizer not in self.scoped:
            raise MailboxAccessDenied(
                "Access is denied. Check credentials and try again.", status=403, request_id="rid-rbac"
            )
        key = (organizer, external_id)
        created = key not in self.events
        if created:
            url = f"https://teams.test/l/meetup-join/{uuid.uuid4().hex}" if self.join_url else None
            self.events[key] = CalendarMeeting(
                id=f"ev-{uuid.uuid4().hex[:8]}", join_web_url=url, external_id=external_id
            )
        return CreateOrGetEventResult(event=self.events[key], created=created)

    def find_by_external_id(self, organizer, external_id):
        return self.events.get((organizer, external_id))

    def online_meeting(self, organizer, event):
        if self.interrupt_on_meeting:
            raise KeyboardInterrupt
        if organizer not in self.teams:
            raise AccessPolicyMissing(
                "No application access policy found for this app", status=403, app_id=CLIENT
            )
        return OnlineMeeting(id=f"om-{event.id}", join_web_url=event.join_web_url)

    def delete(self, organizer, event_id):
        for key, event in list(self.events.items()):
            if key[0] == organizer and event.id == event_id:
                del self.events[key]
                self.deleted.append(event_id)
                return
        from meetgate.graph.errors import NotFoundError

        raise NotFoundError("gone", status=404)


PILOTS = {"id-alice", "id-bob"}


@pytest.fixture
def cert_files(tmp_path: Path) -> tuple[Path, Path]:
    pair = certificates.generate_self_signed(valid_days=365)
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    certificates.write_secret_file(key, certificates.private_key_pem(pair.private_key))
    certificates.write_public_file(cert, certificates.certificate_pem(pair.certificate))
    return key, cert


def scoped(cert_files, events, **kw):
    t = target(cert_files, meetings=FakeMeetings(set(PILOTS)), mailbox_scoped=True, **kw)
    t.events = events
    return t


def statuses(result: ValidationRun) -> dict[str, str]:
    return {c.name: c.status for c in result.checks}


def test_without_a_mailbox_scope_nothing_changes(cert_files):
    events = FakeEvents(set(PILOTS), set(PILOTS))
    t = target(cert_files)
    t.events = events
    result = run(t)
    assert [c.name for c in result.checks] == [name for name, _ in CHECKS]
    assert events.requests == []


def test_both_planes_hold_pass_and_leave_nothing(cert_files):
    events = FakeEvents(set(PILOTS), set(PILOTS))
    journal = InMemoryCleanupJournal()
    result = run(scoped(cert_files, events, journal=journal))
    names = [c.name for c in result.checks]
    assert names.index("calendar_positive") == names.index("policy_negative") + 1
    assert names.index("calendar_negative") == names.index("calendar_positive") + 1
    s = statuses(result)
    assert s["calendar_positive"] == "pass" and s["calendar_negative"] == "pass", result.to_dict()
    assert result.covers_calendar_tests
    assert events.events == {} and len(events.deleted) == 2 and journal.pending() == []
    alice = result.check("calendar_positive").evidence["organizers"]["alice@t.test"]
    assert alice["join_url"] and alice["online_meeting_id"].startswith("om-") and alice["deleted"]
    assert alice["external_id"].startswith("meetgate-validate-") and alice["external_id"].endswith(
        "calpilot1"
    )
    request = events.requests[0]
    assert request.placement == "calendar" and request.start > dt.datetime.now(dt.UTC)
    negative = result.check("calendar_negative")
    assert negative.evidence["outside"]["eve@t.test"]["request_id"] == "rid-rbac"
    assert negative.evidence["from"] == "the negative users"


def test_a_pilot_outside_the_scope_fails_with_apply_and_the_cache(cert_files):
    result = run(scoped(cert_files, FakeEvents({"id-alice"}, set(PILOTS))))
    check = result.check("calendar_positive")
    assert check.status == "fail" and "bob@t.test" in check.finding and "MailboxAccessDenied" in check.finding
    assert "mailbox-scope apply" in check.remedy and "2 hours" in check.remedy
    assert not result.ok


def test_a_mailbox_without_licence_and_a_missing_teams_plane(cert_files):
    unlicensed = run(
        scoped(cert_files, FakeEvents(set(PILOTS), set(PILOTS), unlicensed=frozenset({"id-bob"})))
    )
    check = unlicensed.check("calendar_positive")
    assert check.status == "fail" and "mailbox" in check.finding and "licence" in check.remedy
    events = FakeEvents(set(PILOTS), {"id-alice"})
    no_teams = run(scoped(cert_files, events)).check("calendar_positive")
    assert no_teams.status == "fail" and "both planes" in no_teams.finding
    assert "Grant-CsApplicationAccessPolicy" in no_teams.remedy
    assert events.events == {}  # the event whose Teams meeting was out of reach is deleted too


def test_an_event_without_a_join_url_fails(cert_files):
    events = FakeEvents(set(PILOTS), set(PILOTS), join_url=False)
    check = run(scoped(cert_files, events)).check("calendar_positive")
    assert check.status == "fail" and "join URL" in check.finding and events.events == {}


def test_an_outside_mailbox_in_scope_is_a_loud_failure_and_is_deleted(cert_files):
    events = FakeEvents({*PILOTS, "id-eve"}, set(PILOTS))
    result = run(scoped(cert_files, events))
    check = result.check("calendar_negative")
    assert check.status == "fail" and check.finding.startswith("MAILBOX SCOPE NOT ENFORCED")
    assert "deleted again" in check.finding and "union rule" in check.remedy
    assert events.events == {}


def test_outside_samples_from_the_policy_file_replace_the_negative_users(cert_files):
    events = FakeEvents(set(PILOTS), set(PILOTS))
    t = scoped(cert_files, events, calendar_outside=("carol@t.test",))
    check = run(t).check("calendar_negative")
    assert check.status == "pass" and list(check.evidence["outside"]) == ["carol@t.test"]
    assert check.evidence["from"] == "[mailbox_scope] outside"
    unlicensed = FakeEvents(set(PILOTS), set(PILOTS), unlicensed=frozenset({"carol@t.test"}))
    odd = run(scoped(cert_files, unlicensed, calendar_outside=("carol@t.test",))).check("calendar_negative")
    assert (
        odd.status == "fail"
        and odd.finding.startswith("inconclusive")
        and "[mailbox_scope] outside" in odd.remedy
    )


def test_without_a_calendar_client_or_users_the_tests_are_skipped(cert_files):
    result = run(scoped(cert_files, None))
    assert statuses(result)["calendar_positive"] == "skip" and not result.covers_calendar_tests
    bare = run(scoped(cert_files, FakeEvents(set(PILOTS), set(PILOTS))), pilot=[], negative=[])
    assert statuses(bare)["calendar_positive"] == "skip" and statuses(bare)["calendar_negative"] == "skip"


def test_an_interrupted_calendar_test_still_deletes_its_event(cert_files):
    events = FakeEvents(set(PILOTS), set(PILOTS), interrupt_on_meeting=True)
    journal = InMemoryCleanupJournal()
    with pytest.raises(KeyboardInterrupt):
        run(scoped(cert_files, events, journal=journal))
    assert events.events == {} and len(events.deleted) == 1 and journal.pending() == []


def test_cleanup_leftovers_deletes_calendar_events_through_the_events_port():
    events = FakeEvents({"id-alice"}, {"id-alice"})
    meetings = FakeMeetings({"id-alice"})
    made = events.create_or_get("id-alice", "meetgate-validate-x-calpilot1", None)
    events.create_or_get("id-alice", "meetgate-validate-y-calpilot1", None)
    journal = InMemoryCleanupJournal()
    journal.announce(PendingMeeting("id-alice", "meetgate-validate-x-calpilot1", made.event.id))
    journal.announce(PendingMeeting("id-alice", "meetgate-validate-y-calpilot1"))  # killed inside create
    journal.announce(PendingMeeting("id-eve", "meetgate-validate-y-caloutside1"))  # refused anyway
    assert all(p.is_calendar for p in journal.pending())
    assert not PendingMeeting("id-alice", "meetgate-validate-x-pilot1").is_calendar
    kept = cleanup_leftovers(meetings, journal)  # no events port: calendar leftovers are kept
    assert {d["outcome"].split(":")[0] for d in kept} == {"kept"} and len(journal.pending()) == 3
    done = cleanup_leftovers(meetings, journal, events=events)
    assert [d["outcome"] for d in done] == ["deleted", "deleted", "nothing to delete"]
    assert events.events == {} and journal.pending() == [] and meetings.meetings == {}


def test_reports_carry_the_calendar_checks(cert_files):
    result = run(scoped(cert_files, FakeEvents({"id-alice"}, set(PILOTS))))
    cases = ET.fromstring(validation_junit(result)).iter("testcase")
    by_name = {c.get("name"): c for c in cases}
    assert by_name["calendar_positive"].find("failure") is not None
    assert by_name["calendar_negative"].find("failure") is None
    page = validation_html(result)
    assert "calendar_positive" in page and "mailbox-scope apply" in page
    assert (
        ValidationRun.from_dict(result.to_dict()).check("calendar_positive").remedy
        == result.check("calendar_positive").remedy
    )


def _readiness(runs, scoped_: bool):
    now = max(r.finished_at for r in runs) + dt.timedelta(minutes=1)
    return check_validation_recent(
        ReadinessInputs(
            tenant_id="t", client_id=CLIENT, policy_identity="x", now=now, runs=runs, mailbox_scoped=scoped_
        )
    )


def test_golive_counts_the_calendar_tests_when_a_scope_exists(cert_files):
    plain = run(target(cert_files))  # a run made without the calendar tests
    assert _readiness([plain], False).status == "pass"
    item = _readiness([plain], True)
    assert item.status == "fail" and "calendar" in item.finding and "did not run them" in item.finding
    full = run(scoped(cert_files, FakeEvents(set(PILOTS), set(PILOTS))))
    good = _readiness([full, plain], True)
    assert good.status == "pass" and "calendar tests passed" in good.finding
    failed = run(scoped(cert_files, FakeEvents({*PILOTS, "id-eve"}, set(PILOTS))))
    assert _readiness([failed, full], True).status == "fail"
