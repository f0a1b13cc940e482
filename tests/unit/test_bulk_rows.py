"""Bulk files: every bad row reported at once with its row number; the journal resumes."""

from __future__ import annotations

import csv
import json

import pytest

from meetgate.admin.bulk import BulkFileError, Journal, JournalError, RowOutcome, load_rows, write_results
from meetgate.admin.bulk.runner import BulkReport

HEADER = "key,organizer,start,end,subject,attendees,options\n"


def _csv(tmp_path, body: str, name: str = "rows.csv"):
    path = tmp_path / name
    path.write_text(HEADER + body)
    return path


def test_good_rows_become_requests(tmp_path):
    path = _csv(
        tmp_path,
        "b-1,ana@contoso.com,2030-09-01T09:00:00+02:00,2030-09-01T09:30:00+02:00,Advising,"
        '"x@fabrikam.com;y@fabrikam.com:presenter","lobby=everyone;chat=disabled;dialInBypass=yes"\n'
        "b-2,ana@contoso.com,2030-09-01T10:00:00Z,2030-09-01T10:30:00Z,,,\n",
    )
    loaded = load_rows(path, "create")
    assert loaded.problems == [] and loaded.total == 2
    first = loaded.rows[0]
    assert first.key == "b-1" and first.row == 1 and first.line == 2
    request = first.request
    assert request is not None
    assert [(a.upn, str(a.role)) for a in request.attendees] == [
        ("x@fabrikam.com", "attendee"),
        ("y@fabrikam.com", "presenter"),
    ]
    assert request.lobby_bypass_scope == "everyone" and request.allow_meeting_chat == "disabled"
    assert request.dial_in_bypass is True
    assert request.start is not None and request.start.utcoffset() is not None


def test_every_problem_is_reported_with_its_row_number(tmp_path):
    path = _csv(
        tmp_path,
        "k1,ana@contoso.com,2030-09-01T10:00:00Z,2030-09-01T09:00:00Z,end before start,,\n"  # row 1
        "k2,ana@contoso.com,2030-13-45T10:00:00Z,2030-09-01T11:00:00Z,bad date,,\n"  # row 2
        "k3,ana@contoso.com,2030-09-01T10:00:00,2030-09-01T11:00:00Z,no timezone,,\n"  # row 3
        "k4,ana@contoso.com,2030-09-01T10:00:00Z,2030-09-01T11:00:00Z,dup,,\n"  # row 4
        "k4,ana@contoso.com,2030-09-01T12:00:00Z,2030-09-01T13:00:00Z,dup,,\n"  # row 5
        ",ana@contoso.com,2030-09-01T10:00:00Z,2030-09-01T11:00:00Z,no key,,\n"  # row 6
        "k7,,2030-09-01T10:00:00Z,2030-09-01T11:00:00Z,no organizer,,\n"  # row 7
        "k8,ana@contoso.com,2030-09-01T10:00:00Z,2030-09-01T11:00:00Z,bad attendee,bob,\n"  # row 8
        "k9,ana@contoso.com,2030-09-01T10:00:00Z,2030-09-01T11:00:00Z,bad option,,lobby=nobody\n"  # row 9
        "k 10,ana@contoso.com,2030-09-01T10:00:00Z,2030-09-01T11:00:00Z,space in key,,\n"  # row 10
        "k11,ana@contoso.com,2030-09-01T10:00:00Z,2030-09-01T11:00:00Z,good,,\n",  # row 11
    )
    loaded = load_rows(path, "create")
    by_row = {}
    for problem in loaded.problems:
        by_row.setdefault(problem.row, []).append(problem)
    assert sorted(by_row) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert "not after start" in by_row[1][0].message and by_row[1][0].line == 2
    assert "ISO 8601" in by_row[2][0].message
    assert "no timezone" in by_row[3][0].message
    assert "duplicate key" in by_row[4][0].message and "rows 4, 5" in by_row[5][0].message
    assert by_row[6][0].field == "key"
    assert by_row[7][0].field == "organizer"
    assert "name@domain" in by_row[8][0].message
    assert "lobby" in by_row[9][0].message
    assert by_row[10][0].field == "key"
    assert all(p.remedy for p in loaded.problems)
    assert [row.key for row in loaded.good_rows()] == ["k11"]
    assert str(by_row[1][0]).startswith("row 1 (line 2) [k1] end:")


def test_json_lines_rows_and_broken_lines(tmp_path):
    path = tmp_path / "rows.jsonl"
    lines = [
        {
            "key": "a",
            "organizer": "ana@contoso.com",
            "start": "2030-09-01T09:00:00Z",
            "end": "2030-09-01T10:00:00Z",
            "attendees": ["x@fabrikam.com", {"upn": "y@fabrikam.com", "role": "presenter"}],
            "options": {"presenters": "organizer"},
        },
    ]
    path.write_text(
        json.dumps(lines[0]) + "\n{not json\n[1, 2]\n\n" + json.dumps({"key": "b", "organiser": "x"})
    )
    loaded = load_rows(path, "create")
    assert loaded.rows[0].request is not None
    assert loaded.rows[0].request.allowed_presenters == "organizer"
    messages = {p.row: p.message for p in loaded.problems if p.field == "row"}
    assert "not valid JSON" in messages[2] and "JSON object" in messages[3]
    assert "unknown column(s): organiser" in messages[4]


def test_update_and_cancel_rows_need_the_meeting(tmp_path):
    path = tmp_path / "update.csv"
    path.write_text(
        "key,organizer,meeting_id,join_url,start,end,subject,mode\n"
        "u1,ana@contoso.com,MSo1,,2030-09-02T09:00:00Z,2030-09-02T10:00:00Z,,\n"
        "u2,ana@contoso.com,,,2030-09-02T09:00:00Z,2030-09-02T10:00:00Z,,\n"
        "u3,ana@contoso.com,MSo3,,2030-09-02T09:00:00Z,,,\n"
        "u4,ana@contoso.com,MSo4,,,,,lock\n"
    )
    loaded = load_rows(path, "update")
    fields = {(p.row, p.field) for p in loaded.problems}
    assert (2, "meeting_id") in fields  # neither id nor join URL
    assert (3, "start") in fields or (3, "end") in fields  # a time change needs both
    assert (4, "mode") in fields  # only cancel takes a mode
    assert [r.key for r in loaded.good_rows()] == ["u1"]
    cancel = load_rows(path, "cancel")
    modes = {r.key: r.mode for r in cancel.rows}
    assert modes["u4"] == "lock" and modes["u1"] == "delete"


def test_row_messages_speak_to_the_person_fixing_the_file(tmp_path):
    """No pydantic internals, no library method names, no advice that does not apply to bulk."""
    path = _csv(
        tmp_path,
        "k1,ana@contoso.com,2030-09-01T10:00:00Z,2030-09-01T11:00:00Z,,bob,\n"
        "k 2,ana@contoso.com,2030-09-01T10:00:00Z,2030-09-01T11:00:00Z,,,\n",
    )
    problems = {p.row: p for p in load_rows(path, "create").problems}
    attendee = problems[1]
    assert attendee.field == "attendees"
    assert attendee.message == "attendee upn must look like name@domain, got 'bob'"
    key = problems[2]
    assert key.field == "key" and "leave it out" not in key.remedy and "generated" not in key.remedy
    assert "printable ASCII" in key.remedy and "without spaces" in key.remedy
    update = tmp_path / "update.csv"
    update.write_text(
        "key,organizer,meeting_id,start,end\n"
        "u1,ana@contoso.com,MSo1,2030-09-02T09:00:00Z,\n"
        "u2,ana@contoso.com,MSo2,,2030-09-02T10:00:00Z\n"
    )
    for problem in load_rows(update, "update").problems:
        assert "reschedule" not in problem.remedy and "()" not in problem.remedy
        assert "start and end columns" in problem.remedy


def test_a_quote_left_open_is_a_row_error_and_swallows_no_row(tmp_path):
    """An open quote used to swallow every row after it into one subject, reported as valid."""
    path = _csv(
        tmp_path,
        'q1,ana@contoso.com,2030-09-01T09:00:00Z,2030-09-01T09:30:00Z,"Interview,,\n'  # line 2
        "q2,ana@contoso.com,2030-09-01T10:00:00Z,2030-09-01T10:30:00Z,Second,,\n"  # line 3
        'q3,ana@contoso.com,2030-09-01T11:00:00Z,2030-09-01T11:30:00Z,"Closed" late,,\n'  # line 4
        "q4,ana@contoso.com,2030-09-01T12:00:00Z,2030-09-01T12:30:00Z,Fourth,,\n",  # line 5
    )
    loaded = load_rows(path, "create")
    assert loaded.total == 4  # every line is a row of its own: none disappeared into a subject
    by_row = {p.row: p for p in loaded.problems}
    assert sorted(by_row) == [1, 3]
    assert by_row[1].line == 2 and by_row[1].field == "subject"
    assert "runs from line 2 to line 4" in by_row[1].message and "quote" in by_row[1].remedy
    assert by_row[3].line == 4 and "middle of a value" in by_row[3].message
    assert [row.key for row in loaded.good_rows()] == ["q2", "q4"]
    assert loaded.good_rows()[0].request is not None
    assert loaded.good_rows()[0].request.subject == "Second"


def test_a_quote_open_at_the_end_of_the_file_is_a_row_error(tmp_path):
    path = _csv(
        tmp_path,
        "e1,ana@contoso.com,2030-09-01T09:00:00Z,2030-09-01T09:30:00Z,First,,\n"
        'e2,ana@contoso.com,2030-09-01T10:00:00Z,2030-09-01T10:30:00Z,"Never closed,,\n',
    )
    loaded = load_rows(path, "create")
    assert loaded.total == 2
    (problem,) = loaded.problems
    assert (problem.row, problem.line) == (2, 3)
    assert "never closed" in problem.message and "line 3" in problem.message
    assert [row.key for row in loaded.good_rows()] == ["e1"]


def test_quoted_values_on_one_line_still_read(tmp_path):
    path = _csv(
        tmp_path,
        'ok,ana@contoso.com,2030-09-01T09:00:00Z,2030-09-01T09:30:00Z,"Say ""hi"", then go",,\r\n',
    )
    loaded = load_rows(path, "create")
    assert loaded.problems == [] and loaded.total == 1
    request = loaded.rows[0].request
    assert request is not None and request.subject == 'Say "hi", then go'


def test_bulk_rows_follow_the_meeting_rules(tmp_path):
    path = tmp_path / "rules.csv"
    path.write_text(
        "key,organizer,start,end,subject,allow_past\n"
        f"long,ana@contoso.com,2030-09-01T09:00:00Z,2030-09-01T09:30:00Z,{'x' * 256},\n"  # row 1
        "ctl,ana@contoso.com,2030-09-01T09:00:00Z,2030-09-01T09:30:00Z,bad\x1bsubject,\n"  # row 2
        "past,ana@contoso.com,2020-09-01T09:00:00Z,2020-09-01T09:30:00Z,Last term,\n"  # row 3
        "old,ana@contoso.com,2020-09-01T09:00:00Z,2020-09-01T09:30:00Z,Import,true\n"  # row 4
        "what,ana@contoso.com,2030-09-01T09:00:00Z,2030-09-01T09:30:00Z,Maybe,perhaps\n"  # row 5
    )
    loaded = load_rows(path, "create")
    by_row = {p.row: p for p in loaded.problems}
    assert sorted(by_row) == [1, 2, 3, 5]
    assert by_row[1].field == "subject" and "256 characters" in by_row[1].message
    assert by_row[2].field == "subject" and "U+001B" in by_row[2].message
    assert by_row[3].field == "start" and "in the past" in by_row[3].message
    assert "allow_past column" in by_row[3].remedy and "--allow-past" not in by_row[3].remedy
    assert by_row[5].field == "allow_past"
    (old,) = loaded.good_rows()
    assert old.key == "old" and old.allow_past is True


def test_file_level_errors(tmp_path):
    with pytest.raises(BulkFileError, match="does not exist"):
        load_rows(tmp_path / "nope.csv", "create")
    (tmp_path / "rows.xlsx").write_text("x")
    with pytest.raises(BulkFileError, match="unknown file type"):
        load_rows(tmp_path / "rows.xlsx", "create")
    (tmp_path / "empty.csv").write_text(HEADER)
    with pytest.raises(BulkFileError, match="no data rows"):
        load_rows(tmp_path / "empty.csv", "create")


def test_journal_resumes_and_survives_a_torn_line(tmp_path):
    path = tmp_path / "job.journal.jsonl"
    with Journal(path, "create", source="rows.csv") as journal:
        journal.record(RowOutcome("a", 1, "done", "m-a", "https://join/a", created=True))
        journal.record(RowOutcome("b", 2, "failed", error="throttled"))
    with path.open("a") as fh:
        fh.write('{"key": "c", "row": 3, "sta')  # the process died while writing
    again = Journal(path, "create")
    assert again.resumed and again.done_keys() == {"a"}
    assert again.outcomes["b"].status == "failed"
    with again:
        again.record(RowOutcome("b", 2, "done", "m-b"))
    third = Journal(path, "create")
    assert third.done_keys() == {"a", "b"}
    with pytest.raises(JournalError, match="'create' job"):
        Journal(path, "cancel")
    (tmp_path / "other.jsonl").write_text("hello\n")
    with pytest.raises(JournalError, match="not a meetgate bulk journal"):
        Journal(tmp_path / "other.jsonl", "create")


def test_results_file_lists_outcomes_and_invalid_rows(tmp_path):
    path = _csv(
        tmp_path,
        "k1,ana@contoso.com,2030-09-01T10:00:00Z,2030-09-01T09:00:00Z,bad,,\n"
        "k2,ana@contoso.com,2030-09-01T10:00:00Z,2030-09-01T11:00:00Z,good,,\n",
    )
    loaded = load_rows(path, "create")
    report = BulkReport("create", 2, problems=loaded.problems)
    report.outcomes["k2"] = RowOutcome("k2", 2, "done", "m2", "https://join/2", created=True)
    out = tmp_path / "results.csv"
    write_results(out, report)
    lines = out.read_text().splitlines()
    assert lines[0] == "row,key,status,meeting_id,join_url,created,error,code,remedy"
    assert lines[1].startswith("1,k1,invalid,,,,end:")
    assert lines[2].startswith("2,k2,done,m2,https://join/2,True")
    write_results(tmp_path / "results.jsonl", report)
    records = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert records[1]["meeting_id"] == "m2"


def test_results_file_has_one_line_per_row_even_with_several_problems(tmp_path):
    path = _csv(tmp_path, "bad key,ana,2030-09-01T10:00:00Z,2030-09-01T09:00:00Z,bad,,\n")
    loaded = load_rows(path, "create")
    assert len(loaded.problems) >= 2  # key, end
    out = tmp_path / "results.csv"
    write_results(out, BulkReport("create", 1, problems=loaded.problems))
    with out.open() as fh:
        records = list(csv.DictReader(fh))
    assert len(records) == 1
    assert all(f"{p.field}: {p.message}" in records[0]["error"] for p in loaded.problems)


CALENDAR_HEADER = "key,organizer,start,end,subject,attendees,placement,recurrence,time_zone,mode\n"


def test_calendar_rows_take_a_recurrence_a_zone_and_optional_attendees(tmp_path):
    path = tmp_path / "classes.csv"
    path.write_text(
        CALENDAR_HEADER + "c-1,t@contoso.com,2030-09-02T09:00:00+02:00,2030-09-02T09:45:00+02:00,Algebra,"
        '"s@contoso.com;parent@example.org:optional",Calendar,FREQ=WEEKLY;COUNT=12,Europe/Berlin,\n'
        "c-2,t@contoso.com,2030-09-02T11:00:00Z,,Advising,,standalone,,,\n"
    )
    loaded = load_rows(path, "create")
    assert loaded.problems == []
    calendar, standalone = loaded.rows
    assert calendar.placement == "calendar" and calendar.request is not None
    assert calendar.request.placement == "calendar" and calendar.request.time_zone == "Europe/Berlin"
    assert calendar.request.recurrence == "FREQ=WEEKLY;COUNT=12"
    assert [(a.upn, a.optional) for a in calendar.request.attendees] == [
        ("s@contoso.com", False),
        ("parent@example.org", True),
    ]
    assert standalone.placement == "standalone" and standalone.request is not None
    assert standalone.request.placement == "standalone"
    assert calendar.fingerprint() != standalone.fingerprint()


def test_calendar_columns_are_strict_and_name_the_field_and_the_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        CALENDAR_HEADER + "b-1,t@contoso.com,2030-09-02T09:00:00Z,,x,,calender,,,\n"  # line 2
        "b-2,t@contoso.com,2030-09-02T09:00:00Z,,x,,calendar,FREQ=HOURLY,,\n"  # line 3
        "b-3,t@contoso.com,2030-09-02T09:00:00Z,,x,,,FREQ=DAILY,,\n"  # line 4
        "b-4,t@contoso.com,2030-09-02T09:00:00Z,,x,p@example.org:optional,,,,\n"  # line 5
        "b-5,t@contoso.com,2030-09-02T09:00:00Z,,x,,calendar,,Mars/Base,\n"  # line 6
        "b-6,t@contoso.com,,,x,,calendar,,,\n"  # line 7
        "b-7,t@contoso.com,2030-09-02T09:00:00Z,,x,p@example.org:maybe,calendar,,,\n"  # line 8
    )
    loaded = load_rows(path, "create")
    found = {(p.line, p.field): p for p in loaded.problems}
    assert "must be standalone or calendar, got 'calender'" in found[(2, "placement")].message
    assert str(found[(2, "placement")]).startswith("row 1 (line 2) [b-1] placement:")
    assert found[(3, "recurrence")].remedy  # what Graph cannot express, with what to do
    assert "needs placement calendar" in found[(4, "recurrence")].message
    assert "need placement calendar" in found[(5, "attendees")].message
    assert "IANA" in found[(6, "time_zone")].message
    assert "needs a start" in found[(7, "start")].message
    assert "neither a role" in found[(8, "attendees")].message
    assert loaded.good_rows() == []


def test_calendar_update_and_cancel_rows(tmp_path):
    path = tmp_path / "cancel.csv"
    path.write_text(
        "key,organizer,meeting_id,join_url,placement,mode,recurrence\n"
        "x-1,t@contoso.com,AAMkAGI=,,calendar,,\n"
        "x-2,t@contoso.com,,https://teams.microsoft.com/l/meetup-join/19%3ameeting_x%40thread.v2/0,calendar,,\n"
        "x-3,t@contoso.com,AAMkAGI=,,calendar,lock,\n"
        "x-4,t@contoso.com,AAMkAGJ=,,calendar,,FREQ=DAILY\n"
    )
    loaded = load_rows(path, "cancel")
    assert [row.key for row in loaded.good_rows()] == ["x-1"]
    assert loaded.good_rows()[0].placement == "calendar"
    fields = {(p.row, p.field) for p in loaded.problems}
    assert fields == {(2, "join_url"), (3, "mode"), (4, "recurrence")}
    update = tmp_path / "update.csv"
    update.write_text(
        "key,organizer,meeting_id,placement,start,end,time_zone,recurrence\n"
        "u-1,t@contoso.com,AAMkAGI=,calendar,2030-09-03T09:00:00Z,2030-09-03T10:00:00Z,Europe/Berlin,\n"
        "u-2,t@contoso.com,AAMkAGI=,calendar,,,Europe/Berlin,\n"
        "u-3,t@contoso.com,AAMkAGI=,calendar,2030-09-03T09:00:00Z,2030-09-03T10:00:00Z,,FREQ=DAILY\n"
    )
    loaded = load_rows(update, "update")
    good = loaded.good_rows()
    assert [row.key for row in good] == ["u-1"] and good[0].changes is not None
    assert good[0].changes.time_zone == "Europe/Berlin"
    assert {(p.row, p.field) for p in loaded.problems} == {(2, "row"), (3, "recurrence")}
