"""Extract the request/response examples of Microsoft's Graph v1.0 reference pages into a fixture.

A dev tool, not part of the installed ``meetgate-sandbox`` package. It reads the API reference pages
(``api-reference/v1.0/api/*.md``) for the endpoints the sandbox serves (:data:`PAGES`) from a bare
git directory of Microsoft's docs repository and writes ``examples.json`` next to this file, which
``tests/sandbox/test_conformance.py`` replays against the sandbox. The fixture is committed, so the
tests never need the docs.

The docs mark an example's request with ``<!-- { "blockType": "request", "name": ... } -->`` (or
``"ignored"`` when their own validator cannot run it, e.g. it needs ``ConsistencyLevel``) before a
fenced block ``METHOD https://graph.microsoft.com/v1.0/...``, headers, a blank line and the body; the
response with ``<!-- { "blockType": "response", "truncated": true, ... } -->`` before a fenced block
``HTTP/1.1 200 OK``, headers, a blank line and the JSON body.

Usage (from the repository root)::

    git clone --bare --filter=blob:none https://github.com/microsoftgraph/microsoft-graph-docs-contrib docs.git
    python sandbox/conformance/extract.py --git-dir docs.git [--ref main]

``--git-dir`` is a clone (bare or not) of Microsoft's ``microsoft-graph-docs-contrib`` or of its
predecessor ``microsoft-graph-docs`` (see ``docs/sandbox.md``, "Conformance with Microsoft's
documented examples").
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "examples.json"
GRAPH_V1 = "https://graph.microsoft.com/v1.0"

#: the reference pages of the endpoints the sandbox serves (page -> what it documents)
PAGES: dict[str, str] = {
    "application-post-onlinemeetings": "POST /users/{id}/onlineMeetings",
    "onlinemeeting-createorget": "POST /users/{id}/onlineMeetings/createOrGet",
    "onlinemeeting-get": "GET /users/{id}/onlineMeetings/{id}, /communications/onlineMeetings",
    "onlinemeeting-update": "PATCH /users/{id}/onlineMeetings/{id}",
    "onlinemeeting-delete": "DELETE /users/{id}/onlineMeetings/{id}",
    "meetingattendancereport-list": "GET .../onlineMeetings/{id}/attendanceReports",
    "meetingattendancereport-get": "GET .../attendanceReports/{id}",
    "attendancerecord-list": "GET .../attendanceReports/{id}/attendanceRecords",
    "user-list": "GET /users",
    "user-get": "GET /users/{id}",
    "user-list-memberof": "GET /users/{id}/memberOf",
    "user-list-transitivememberof": "GET /users/{id}/transitiveMemberOf",
    "group-list": "GET /groups",
    "group-get": "GET /groups/{id}",
    "group-list-members": "GET /groups/{id}/members",
    "group-list-transitivemembers": "GET /groups/{id}/transitiveMembers",
    "application-list": "GET /applications",
    "application-get": "GET /applications/{id}",
    "application-post-applications": "POST /applications",
    "application-update": "PATCH /applications/{id}",
    "application-delete": "DELETE /applications/{id}",
    "application-addkey": "POST /applications/{id}/addKey",
    "application-removekey": "POST /applications/{id}/removeKey",
    "application-addpassword": "POST /applications/{id}/addPassword",
    "application-removepassword": "POST /applications/{id}/removePassword",
    "serviceprincipal-list": "GET /servicePrincipals",
    "serviceprincipal-get": "GET /servicePrincipals/{id}",
    "serviceprincipal-post-serviceprincipals": "POST /servicePrincipals",
    "serviceprincipal-list-approleassignedto": "GET /servicePrincipals/{id}/appRoleAssignedTo",
    "serviceprincipal-post-approleassignedto": "POST /servicePrincipals/{id}/appRoleAssignedTo",
    "serviceprincipal-delete-approleassignedto": "DELETE /servicePrincipals/{id}/appRoleAssignedTo/{id}",
    "serviceprincipal-list-approleassignments": "GET /servicePrincipals/{id}/appRoleAssignments",
    "signin-list": "GET /auditLogs/signIns",
    "directoryaudit-list": "GET /auditLogs/directoryAudits",
    "teamsadministration-teamspolicyuserassignment-assign": "POST /admin/teams/policy/userAssignments/assign",
    "teamsadministration-teamspolicyuserassignment-unassign": (
        "POST /admin/teams/policy/userAssignments/unassign"
    ),
    "teamsadministration-policyidentifierdetail-getpolicyid": "GET /admin/teams/policy/getPolicyId(...)",
    "teamsadministration-teamsadminroot-list-userconfigurations": "GET /admin/teams/userConfigurations",
    "teamsadministration-teamsuserconfiguration-get": "GET /admin/teams/userConfigurations/{id}",
}

_ANNOTATION = re.compile(r"<!--\s*(\{.*?\})\s*-->", re.DOTALL)
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
_REQUEST_LINE = re.compile(r"^(GET|POST|PATCH|PUT|DELETE)\s+(https://graph\.microsoft\.com/\S.*)$", re.I)
_VERSIONED = re.compile(r"^https://graph\.microsoft\.com/([^/]+)(/.*)$")
_STATUS_LINE = re.compile(r"^HTTP/\S+\s+(\d{3})")


@dataclass
class Block:
    """An annotation (the JSON in ``<!-- {...} -->``) and the fenced code block after it."""

    annotation: dict[str, Any]
    code: str


def _annotation(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        # the docs' annotations are nearly JSON; tolerate trailing commas
        try:
            value = json.loads(re.sub(r",\s*([}\]])", r"\1", text))
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def blocks(markdown: str) -> list[Block]:
    """Every annotated code block: the first fence after each annotation, before the next one."""
    found: list[Block] = []
    marks = list(_ANNOTATION.finditer(markdown))
    for index, mark in enumerate(marks):
        annotation = _annotation(mark.group(1))
        if annotation is None or "blockType" not in annotation:
            continue
        end = marks[index + 1].start() if index + 1 < len(marks) else len(markdown)
        fence = _FENCE.search(markdown, mark.end(), end)
        if fence is None:
            continue
        found.append(Block(annotation, fence.group(1)))
    return found


def _split_message(code: str) -> tuple[str, list[str], str]:
    """(start line, header lines, body) of an HTTP message as the docs write it."""
    lines = code.strip("\n").split("\n")
    start, rest = lines[0].strip(), lines[1:]
    headers: list[str] = []
    while rest and rest[0].strip() and re.match(r"^[A-Za-z-]+\s*:", rest[0]) and not rest[0].startswith("{"):
        headers.append(rest.pop(0).strip())
    return start, headers, "\n".join(rest).strip()


def _headers(lines: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        out[name.strip()] = value.strip()
    return out


def _json_body(text: str) -> tuple[Any, str | None]:
    """The parsed body and, when the docs' JSON is not valid, what was done about it.

    The docs' only common slip is a trailing comma: it is removed (and said so); a body still not
    JSON is kept as ``None`` with the note ``"not JSON"`` (the raw text is in the page).
    """
    if not text:
        return None, None
    try:
        return json.loads(text), None
    except ValueError:
        pass
    try:
        return json.loads(re.sub(r",(\s*[}\]])", r"\1", text)), "trailing commas removed"
    except ValueError:
        return None, "not JSON"


def _request(block: Block) -> dict[str, Any] | None:
    start, header_lines, body = _split_message(block.code)
    match = _REQUEST_LINE.match(start)
    versioned = _VERSIONED.match(match.group(2).strip()) if match else None
    if match is None or versioned is None:
        return None  # a syntax block ("GET /users"), not an example
    path, _, query = versioned.group(2).partition("?")
    parsed, note = _json_body(body)
    return {
        "method": match.group(1).upper(),
        "version": versioned.group(1),
        "path": urllib.parse.unquote(path),
        "query": query,
        "headers": _headers(header_lines),
        "body": parsed,
        "body_note": note,
    }


def _response(block: Block) -> dict[str, Any]:
    start, header_lines, body = _split_message(block.code)
    match = _STATUS_LINE.match(start)
    parsed, note = _json_body(body)
    return {
        "status": int(match.group(1)) if match else None,
        "headers": _headers(header_lines),
        "body": parsed,
        "body_note": note,
        "truncated": bool(block.annotation.get("truncated", False)),
        "odata_type": block.annotation.get("@odata.type"),
    }


def examples_of(page: str, markdown: str) -> list[dict[str, Any]]:
    """The page's examples: each documented request with the response block that follows it."""
    out: list[dict[str, Any]] = []
    # requests shown one after the other (the /me and /users/{id} forms) share the next response
    waiting: list[dict[str, Any]] = []
    for block in blocks(markdown):
        kind = block.annotation.get("blockType")
        if kind in ("request", "ignored"):
            request = _request(block)
            if request is None:
                continue
            example = {
                "page": page,
                "name": str(block.annotation.get("name") or ""),
                "validated_by_docs": kind == "request",
                "request": request,
                "response": None,
            }
            out.append(example)
            waiting.append(example)
        elif kind == "response" and waiting:
            response = _response(block)
            for example in waiting:
                example["response"] = response
            waiting = []
    _name_uniquely(page, out)
    return out


def _name_uniquely(page: str, examples: list[dict[str, Any]]) -> None:
    """Names as the docs give them, made unique in the page (pages reuse ``get_count_only``)."""
    seen: dict[str, int] = {}
    for number, example in enumerate(examples, start=1):
        name = example["name"] or f"example{number}"
        seen[name] = seen.get(name, 0) + 1
        example["name"] = name if seen[name] == 1 else f"{name}#{seen[name]}"
        example["id"] = f"{page}:{example['name']}"


def _git(git_dir: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", f"--git-dir={git_dir}", *args], check=True, capture_output=True, text=True
    )
    return result.stdout


def _page_text(git_dir: Path, ref: str, page: str) -> str | None:
    try:
        return _git(git_dir, "show", f"{ref}:api-reference/v1.0/api/{page}.md")
    except subprocess.CalledProcessError:
        return None


def extract(git_dir: Path, ref: str) -> dict[str, Any]:
    """The fixture's content: where it came from, the pages read and missing, the examples."""
    commit = _git(git_dir, "rev-parse", ref).strip()
    date = _git(git_dir, "show", "-s", "--format=%cI", commit).strip()
    examples: list[dict[str, Any]] = []
    missing: list[str] = []
    pages: dict[str, int] = {}
    for page in PAGES:
        text = _page_text(git_dir, commit, page)
        if text is None:
            missing.append(page)
            continue
        found = examples_of(page, text)
        pages[page] = len(found)
        examples += found
    return {
        "source": {"git_dir": git_dir.name if git_dir.name != "repo" else git_dir.parent.name},
        "commit": commit,
        "commit_date": date,
        "pages": pages,
        "pages_missing": missing,
        "examples": examples,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--git-dir", type=Path, required=True, help="a clone of microsoft-graph-docs(-contrib), bare or not"
    )
    parser.add_argument("--ref", default="HEAD")
    parser.add_argument("--out", type=Path, default=FIXTURE)
    args = parser.parse_args(argv)
    if not args.git_dir.is_dir():
        print(f"--git-dir {args.git_dir}: no such folder; clone the docs repository first", file=sys.stderr)
        return 2
    git_dir = args.git_dir / ".git" if (args.git_dir / ".git").is_dir() else args.git_dir
    fixture = extract(git_dir, args.ref)
    args.out.write_text(json.dumps(fixture, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(
        f"{len(fixture['examples'])} examples from {len(fixture['pages'])} pages "
        f"({len(fixture['pages_missing'])} missing) at {fixture['commit'][:10]} -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
