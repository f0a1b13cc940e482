"""Pure renderers of validation runs and readiness reports: JUnit XML (for CI systems), HTML and
Markdown. Strings in, strings out; the CLI writes the files."""

from __future__ import annotations

import html
import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from meetgate.admin.readiness import ReadinessReport
from meetgate.admin.validation import ValidationRun

_BADGE = {"pass": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e", "skip": "#6e7781"}
_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#1f2328;max-width:72rem}
h1{font-size:1.5rem} table{border-collapse:collapse;width:100%} th,td{border:1px solid #d0d7de;
padding:.4rem .6rem;text-align:left;vertical-align:top} th{background:#f6f8fa}
.badge{color:#fff;border-radius:.3rem;padding:.1rem .45rem;font-weight:600;font-size:.85rem}
pre{white-space:pre-wrap;font-size:.8rem;margin:0} .verdict{font-size:2rem;font-weight:700}
"""


def _evidence_text(evidence: Mapping[str, Any]) -> str:
    return json.dumps(dict(evidence), indent=2, sort_keys=True, default=str, ensure_ascii=False)


# --- JUnit ----------------------------------------------------------------------------------------


def validation_junit(run: ValidationRun) -> str:
    """The run as JUnit XML: one testcase per check; fail → <failure>, skip → <skipped>, warn →
    passed with the warning in <system-out>."""
    counts = run.counts()
    seconds = (run.finished_at - run.started_at).total_seconds()
    suites = ET.Element(
        "testsuites",
        name="meetgate validate",
        tests=str(len(run.checks)),
        failures=str(counts["fail"]),
        errors="0",
        skipped=str(counts["skip"]),
        time=f"{seconds:.3f}",
    )
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"meetgate validate ({run.profile})",
        tests=str(len(run.checks)),
        failures=str(counts["fail"]),
        errors="0",
        skipped=str(counts["skip"]),
        time=f"{seconds:.3f}",
        timestamp=run.started_at.replace(tzinfo=None).isoformat(timespec="seconds"),
        hostname="meetgate",
    )
    props = ET.SubElement(suite, "properties")
    for key, value in (
        ("run_id", run.id),
        ("tenant_id", run.tenant_id or ""),
        ("client_id", run.client_id or ""),
        ("pilot", ",".join(run.pilot)),
        ("negative", ",".join(run.negative)),
        ("status", run.status),
    ):
        ET.SubElement(props, "property", name=key, value=value)
    for check in run.checks:
        case = ET.SubElement(
            suite,
            "testcase",
            classname="meetgate.validate",
            name=check.name,
            time=f"{check.duration_ms / 1000:.3f}",
        )
        detail = (
            f"{check.finding}\n\nfix: {check.remedy or '-'}\n\nevidence:\n{_evidence_text(check.evidence)}"
        )
        if check.status == "fail":
            failure = ET.SubElement(case, "failure", message=check.finding, type="ValidationFailure")
            failure.text = detail
        elif check.status == "skip":
            ET.SubElement(case, "skipped", message=check.finding)
        else:
            out = ET.SubElement(case, "system-out")
            out.text = ("WARNING: " if check.status == "warn" else "") + detail
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


# --- HTML -----------------------------------------------------------------------------------------


def _badge(status: str) -> str:
    colour = _BADGE.get(status, "#6e7781")
    return f'<span class="badge" style="background:{colour}">{html.escape(status.upper())}</span>'


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8" />'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>\n{body}\n</body></html>\n"
    )


def validation_html(run: ValidationRun) -> str:
    rows = "\n".join(
        f'<tr id="{html.escape(c.name)}"><td>{_badge(c.status)}</td><td><b>{html.escape(c.title)}</b><br/>'
        f"<code>{html.escape(c.name)}</code></td><td>{html.escape(c.finding)}</td>"
        f"<td>{html.escape(c.remedy or '')}</td><td><pre>{html.escape(_evidence_text(c.evidence))}</pre></td></tr>"
        for c in run.checks
    )
    counts = ", ".join(f"{n} {s}" for s, n in run.counts().items() if n)
    body = (
        f"<h1>meetgate validate — {_badge(run.status)}</h1>\n"
        f"<p>Run <code>{html.escape(run.id)}</code>, {run.started_at:%Y-%m-%d %H:%M:%S} UTC, profile "
        f"<code>{html.escape(run.profile)}</code>, tenant <code>{html.escape(run.tenant_id or '-')}</code>, "
        f"app <code>{html.escape(run.client_id or '-')}</code>.<br/>Pilot: {html.escape(', '.join(run.pilot) or '-')}; "
        f"negative: {html.escape(', '.join(run.negative) or '-')}. {html.escape(counts)}.</p>\n"
        "<table><thead><tr><th>status</th><th>check</th><th>finding</th><th>fix</th><th>evidence</th></tr>"
        f"</thead><tbody>\n{rows}\n</tbody></table>"
    )
    return _page(f"meetgate validate {run.status}", body)


def readiness_html(report: ReadinessReport) -> str:
    rows = "\n".join(
        f'<tr id="{html.escape(i.name)}"><td>{_badge(i.status)}</td><td><b>{html.escape(i.title)}</b></td>'
        f"<td>{html.escape(i.finding)}</td><td>{html.escape(i.remedy or '')}</td>"
        f"<td><pre>{html.escape(_evidence_text(i.evidence))}</pre></td></tr>"
        for i in report.items
    )
    colour = _BADGE["pass"] if report.go else _BADGE["fail"]
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in report.reasons)
    body = (
        f'<h1>meetgate go-live readiness</h1>\n<p class="verdict" style="color:{colour}">{report.verdict}</p>\n'
        + (f"<ul>{reasons}</ul>\n" if reasons else "")
        + f"<p>{report.generated_at:%Y-%m-%d %H:%M:%S} UTC, tenant <code>{html.escape(report.tenant_id or '-')}</code>, "
        f"app <code>{html.escape(report.client_id or '-')}</code>, policy "
        f"<code>{html.escape(report.policy_identity)}</code>.</p>\n"
        "<table><thead><tr><th>status</th><th>item</th><th>finding</th><th>fix</th><th>evidence</th></tr>"
        f"</thead><tbody>\n{rows}\n</tbody></table>"
    )
    return _page(f"meetgate go-live {report.verdict}", body)


# --- Markdown -------------------------------------------------------------------------------------


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def readiness_markdown(report: ReadinessReport) -> str:
    lines = [
        "# meetgate go-live readiness",
        "",
        f"**Verdict: {report.verdict}**",
        "",
    ]
    if report.reasons:
        lines += ["Reasons:", ""] + [f"- {r}" for r in report.reasons] + [""]
    lines += [
        f"Generated {report.generated_at:%Y-%m-%d %H:%M:%S} UTC for tenant `{report.tenant_id or '-'}`, "
        f"app `{report.client_id or '-'}`, policy `{report.policy_identity}`.",
        "",
        "| status | item | finding | fix |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {i.status.upper()} | {_md(i.title)} | {_md(i.finding)} | {_md(i.remedy or '')} |"
        for i in report.items
    ]
    lines += ["", "## Evidence", ""]
    for item in report.items:
        lines += [f"### {item.title}", "", "```json", _evidence_text(item.evidence), "```", ""]
    return "\n".join(lines)


def validation_markdown(run: ValidationRun) -> str:
    lines = [
        f"# meetgate validate: {run.status.upper()}",
        "",
        f"Run `{run.id}`, {run.started_at:%Y-%m-%d %H:%M:%S} UTC, tenant `{run.tenant_id or '-'}`, "
        f"app `{run.client_id or '-'}`.",
        "",
        "| status | check | finding | fix |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {c.status.upper()} | {_md(c.title)} | {_md(c.finding)} | {_md(c.remedy or '')} |"
        for c in run.checks
    ]
    return "\n".join(lines) + "\n"
