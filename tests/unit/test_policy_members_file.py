"""The organizer CSV of a policy file, read strictly (issue 14, item 4): delimiter, encoding and
every reference, each refusal naming the file and the line."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

import pytest

from meetgate.admin.policy.loader import load_desired_state, read_organizer_csv
from meetgate.admin.policy.model import PolicyError

APP = "11111111-2222-3333-4444-555555555555"
ID = "7c3e5a7d-0000-4000-8000-000000000001"
ROWS = [("alice@contoso.test", "Alice, Smith"), ("bob@contoso.test", "Bob"), (ID, "By id")]
EXPECTED = ["alice@contoso.test", "bob@contoso.test", ID]


def members(delimiter: str) -> str:
    def quoted(cell: str) -> str:
        return f'"{cell}"' if any(d in cell for d in ",;\t") else cell

    lines = [delimiter.join(["userPrincipalName", "displayName"])]
    lines += [delimiter.join(quoted(c) for c in row) for row in ROWS]
    return "\r\n".join(lines) + "\r\n"


def write(tmp_path: Path, data: bytes | str, name: str = "members.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


@pytest.mark.parametrize("delimiter", [",", ";", "\t"], ids=["comma", "semicolon", "tab"])
def test_each_delimiter_reads_exactly_like_the_comma_file(tmp_path: Path, delimiter: str):
    assert read_organizer_csv(write(tmp_path, members(delimiter))) == EXPECTED


def test_a_semicolon_file_with_an_unknown_header_reads_its_first_column(tmp_path: Path):
    path = write(tmp_path, "alice@contoso.test;Alice\nbob@contoso.test;Bob\n")
    assert read_organizer_csv(path) == ["alice@contoso.test", "bob@contoso.test"]


def test_header_names_are_matched_without_spaces_and_case(tmp_path: Path):
    path = write(tmp_path, "Display name;User principal name\nAlice;alice@contoso.test\n")
    assert read_organizer_csv(path) == ["alice@contoso.test"]


def test_a_one_column_file_has_no_delimiter_to_find(tmp_path: Path):
    assert read_organizer_csv(write(tmp_path, "upn\nalice@contoso.test\n\nbob@contoso.test\n")) == [
        "alice@contoso.test",
        "bob@contoso.test",
    ]


def test_a_header_with_two_delimiters_uses_the_one_that_splits_every_line_alike(tmp_path: Path):
    path = write(tmp_path, "upn;name, first\nalice@contoso.test;Smith, Alice\nbob@contoso.test;Bob\n")
    assert read_organizer_csv(path) == ["alice@contoso.test", "bob@contoso.test"]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("upn;name,x\nalice@contoso.test;A,B\n", 1, "more than one of them splits"),
        ("upn;name,x\nalice@contoso.test;A\nbob@contoso.test,B\n", 1, "none of them splits"),
        ("upn\nalice@contoso.test\nbob@contoso.test;Bob\n", 3, "has no delimiter"),
        ('upn,name\nalice@contoso.test,"Alice\nbob@contoso.test,Bob\n', 2, "quote is probably left open"),
        ("name;upn\nAlice;alice@contoso.test\nBob\n", 3, "no column 'upn'"),
    ],
)
def test_a_file_that_cannot_be_read_for_certain_is_refused_naming_the_line(
    tmp_path: Path, text: str, line: int, message: str
):
    path = write(tmp_path, text)
    with pytest.raises(PolicyError, match=message) as info:
        read_organizer_csv(path)
    assert f"{path}, line {line}:" in str(info.value)
    assert info.value.remedy


@pytest.mark.parametrize(
    "encode",
    [
        lambda t: t.encode("utf-8"),
        lambda t: codecs.BOM_UTF8 + t.encode("utf-8"),
        lambda t: codecs.BOM_UTF16_LE + t.encode("utf-16-le"),
        lambda t: codecs.BOM_UTF16_BE + t.encode("utf-16-be"),
    ],
    ids=["utf-8", "utf-8-bom", "utf-16-le", "utf-16-be"],
)
def test_utf8_with_or_without_bom_and_excel_unicode_text_read_alike(tmp_path: Path, encode):
    # Excel's "Unicode text" is UTF-16 with a BOM, tab-delimited
    text = members("\t").replace("Bob", "Björn")
    assert read_organizer_csv(write(tmp_path, encode(text))) == EXPECTED


@pytest.mark.parametrize(
    ("data", "line"),
    [
        ("upn,name\nalice@contoso.test,Ren\u00e9\n".encode("cp1252"), 2),  # Excel's legacy "CSV"
        ("upn\nalice@contoso.test\n".encode("utf-16-le"), 1),  # UTF-16 without a byte-order mark
        (codecs.BOM_UTF16_LE + "upn\nalice@contoso.test\n".encode("utf-16-le") + b"\x00", 3),
    ],
    ids=["cp1252", "utf-16-no-bom", "utf-16-truncated"],
)
def test_an_undecodable_file_is_refused_never_a_unicode_error(tmp_path: Path, data: bytes, line: int):
    path = write(tmp_path, data)
    with pytest.raises(PolicyError) as info:
        read_organizer_csv(path)
    assert f"{path}, line {line}:" in str(info.value)
    assert "CSV UTF-8" in str(info.value.remedy)


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("not-an-upn", "neither a UPN"),
        ("a@@b.com", "more than one '@'"),
        ("7c3e5a7d-0000-4000-8000-00000000001", "looks like an object id"),
        ("7c3e5a7d-0000-4000-8000-00000000000g", "looks like an object id"),
        ("{7c3e5a7d-0000-4000-8000-000000000001}", "looks like an object id"),
        ("alice\x00@contoso.test", "NUL bytes"),
        ("alice@contoso.test\x07", "U+0007"),
        ("al\u200bice@contoso.test", "U+200B"),
        ("alice smith@contoso.test", "cannot hold"),
        ("alice@contoso", "not a domain name"),
        ("@contoso.test", "nothing before"),
    ],
)
def test_a_malformed_reference_is_refused_with_file_and_line(tmp_path: Path, ref: str, message: str):
    path = write(tmp_path, f"upn\nbob@contoso.test\n{ref}\n")
    with pytest.raises(PolicyError, match=re.escape(message)) as info:
        read_organizer_csv(path)
    assert f"{path}, line 3:" in str(info.value)


def test_several_bad_lines_are_named_together(tmp_path: Path):
    path = write(tmp_path, "upn\nnot-an-upn\nbob@contoso.test\na@@b.com\n")
    with pytest.raises(PolicyError) as info:
        read_organizer_csv(path)
    assert f"{path}, line 2:" in str(info.value) and f"{path}, line 4:" in str(info.value)


def test_guest_and_unusual_but_valid_upns_are_read(tmp_path: Path):
    refs = ["alice_fabrikam.com#EXT#@contoso.onmicrosoft.com", "o'brien@contoso.test", ID.upper()]
    assert read_organizer_csv(write(tmp_path, "upn\n" + "\n".join(refs) + "\n")) == refs


def test_the_policy_file_refuses_a_bad_csv_and_bad_users_when_read(tmp_path: Path):
    """docs/policy.md: everything is validated when read — the CSV rows and the users list too."""
    write(tmp_path, "upn\nalice@contoso.test\nnot-an-upn\n", "bad.csv")
    policy = tmp_path / "p.toml"
    policy.write_text(f'[policy]\nidentity = "X"\napp_ids = ["{APP}"]\n[organizers]\ncsv = ["bad.csv"]\n')
    with pytest.raises(PolicyError, match=r"bad\.csv, line 3: 'not-an-upn'"):
        load_desired_state(policy)
    policy.write_text(
        f'[policy]\nidentity = "X"\napp_ids = ["{APP}"]\n'
        '[organizers]\nusers = [\n  "alice@contoso.test",\n  "a@@b.com",\n]\n'
    )
    with pytest.raises(PolicyError, match=r"p\.toml, line 7: \[organizers\] users entry 2: 'a@@b.com'"):
        load_desired_state(policy)


def test_a_policy_file_that_is_not_utf8_is_refused_clearly(tmp_path: Path):
    policy = tmp_path / "p.toml"
    policy.write_bytes(f'[policy]\nidentity = "Caf\u00e9"\napp_ids = ["{APP}"]\n'.encode("cp1252"))
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_desired_state(policy)
