"""The monitoring dashboard: ``GET /admin/dashboard`` (HTML) and ``/admin/dashboard.json`` (data).

Admin key required (``X-Admin-Key``, ``Authorization: Bearer``, or HTTP Basic with the key as the
password, so a browser prompts). Charts are inline SVG drawn on the server: the page needs no
script and no CDN, and works offline; its one stylesheet is allowed by its hash in the page's
``Content-Security-Policy`` (no inline ``style`` attributes, no ``'unsafe-inline'``). Data: the gateway's audit log (meetings over time, failures by
class, top organizers and consumers) and what ``meetgate monitor`` stored (open alerts, certificate
expiry, policy coverage).

The routes are in :mod:`meetgate.gateway.routers.admin`; this module reads the data and draws the page.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from html import escape
from typing import Annotated, Any

from fastapi import Query, Request

from meetgate.store import Store
from meetgate.store.monitoring import FAILURE_CLASSES, MonitorRepository, activity_figures

COLOURS = {
    "policy_403": "#c0392b",
    "auth_401": "#8e44ad",
    "throttled_429": "#d35400",
    "server_5xx": "#7f8c8d",
    "overreach": "#e67e22",
    "other_4xx": "#95a5a6",
}
SEVERITY_COLOURS = {"critical": "#b71c1c", "high": "#e53935", "warning": "#f9a825", "info": "#1e88e5"}


#: the dashboard's ``?hours=`` query parameter
Hours = Annotated[float, Query(gt=0, le=24 * 31, description="Hours back from now")]


class AdminAuthError(Exception):
    """The request to ``/admin/...`` came without the gateway's admin key (answered with the
    ``about:blank`` 401 of :func:`meetgate.gateway.problems.admin_key_problem`)."""


def hash_admin_key(key: str) -> str:
    """SHA-256 (hex) of an admin key: what ``GatewaySettings.admin_key_sha256`` holds."""
    return hashlib.sha256(key.encode()).hexdigest()


def presented_key(request: Request) -> str | None:
    """The admin key the request presents: ``X-Admin-Key``, ``Authorization: Bearer``, or the
    password of HTTP Basic (None: none)."""
    header = request.headers.get("x-admin-key")
    if header:
        return header
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value.strip()).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


def dashboard_data(store: Store, *, hours: float, now: dt.datetime | None = None) -> dict[str, Any]:
    """The dashboard's figures for the last ``hours``: the audit log's activity and what
    ``meetgate monitor`` stored (alerts, certificates, policy coverage)."""
    repo = MonitorRepository(store)
    now = now or dt.datetime.now(dt.UTC)
    since = now - dt.timedelta(hours=hours)
    bucket = 60 if hours > 6 else 10
    figures = activity_figures(
        repo.gateway_requests(since=since), since=since, until=now, bucket_minutes=bucket
    )
    status = repo.latest_any(source="status") or {}
    policy = repo.latest_any(source="policy") or {}
    return {
        "generatedAt": now.isoformat(),
        "gateway": figures,
        "alerts": repo.alerts(status="open")[:50],
        "certificates": status.get("certificates") or [],
        "hypercare": status.get("hypercare", False),
        "hypercareUntil": status.get("hypercareUntil"),
        "monitorLastRun": status.get("at"),
        "policy": policy.get("coverage"),
        "policyTakenAt": policy.get("takenAt"),
    }


# ---- SVG ------------------------------------------------------------------------------------------


def svg_bars(points: list[tuple[str, int]], *, title: str, colour: str = "#1e88e5", width: int = 560) -> str:
    """A vertical bar chart; one bar per point, labels under the first, middle and last."""
    height, pad = 180, 28
    peak = max((v for _, v in points), default=0) or 1
    n = max(1, len(points))
    step = (width - 2 * pad) / n
    bars = []
    for i, (label, value) in enumerate(points):
        h = (height - 2 * pad) * value / peak
        x = pad + i * step
        y = height - pad - h
        bars.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{max(1.0, step - 2):.1f}" height="{h:.1f}" '
            f'fill="{colour}" data-value="{value}"><title>{escape(label)}: {value}</title></rect>'
        )
    labels = []
    for i in sorted({0, n // 2, n - 1}):
        if i < len(points):
            labels.append(
                f'<text x="{pad + i * step:.1f}" y="{height - 8}" font-size="10">{escape(points[i][0])}</text>'
            )
    return (
        f'<svg role="img" aria-label="{escape(title)}" class="chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><text x="{pad}" y="16" font-size="12" font-weight="bold">'
        f"{escape(title)} (max {peak if any(v for _, v in points) else 0})</text>"
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#999"/>'
        + "".join(bars)
        + "".join(labels)
        + "</svg>"
    )


def svg_hbars(items: list[tuple[str, int, str]], *, title: str, width: int = 560) -> str:
    """Horizontal bars with their label and count (failures by class, top organizers)."""
    row, pad, label_w = 22, 8, 200
    height = pad * 2 + 20 + row * max(1, len(items))
    peak = max((v for _, v, _ in items), default=0) or 1
    parts = [f'<text x="{pad}" y="16" font-size="12" font-weight="bold">{escape(title)}</text>']
    if not items:
        parts.append(f'<text x="{pad}" y="40" font-size="11" fill="#777">no data</text>')
    for i, (label, value, colour) in enumerate(items):
        y = 24 + pad + i * row
        w = (width - label_w - 60) * value / peak
        parts.append(f'<text x="{pad}" y="{y + 13}" font-size="11">{escape(label[:28])}</text>')
        parts.append(
            f'<rect class="bar" x="{label_w}" y="{y}" width="{w:.1f}" height="{row - 6}" fill="{colour}" '
            f'data-value="{value}"><title>{escape(label)}: {value}</title></rect>'
        )
        parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 13}" font-size="11">{value}</text>')
    return (
        f'<svg role="img" aria-label="{escape(title)}" class="chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">' + "".join(parts) + "</svg>"
    )


def _severity_class(severity: object) -> str:
    """The class colouring a severity (the page's one stylesheet has them: no inline styles)."""
    return f"sev-{severity}" if severity in SEVERITY_COLOURS else "sev-other"


#: the page's whole stylesheet, allowed by its hash in the page's Content-Security-Policy
STYLESHEET = (
    """
body{font-family:system-ui,sans-serif;margin:16px;background:#fafafa;color:#222}
h1{font-size:20px} h2{font-size:15px;margin:4px 0}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(580px,1fr));gap:12px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px}
.kpi{display:inline-block;margin-right:24px;font-size:13px} .kpi b{font-size:22px;display:block}
table{border-collapse:collapse;font-size:12px;width:100%} td,th{border-bottom:1px solid #eee;padding:4px;text-align:left}
.bad{color:#b71c1c;font-weight:bold} .ok{color:#2e7d32} .hyper{color:#6a1b9a;font-weight:bold}
"""
    + "".join(f".sev-{name}{{color:{colour}}}\n" for name, colour in SEVERITY_COLOURS.items())
    + ".sev-other{color:#000}\n"
)


def _time_label(iso: str) -> str:
    return iso[11:16]


def dashboard_html(data: dict[str, Any], *, title: str = "meetgate dashboard") -> str:
    """The dashboard page for ``data`` (:func:`dashboard_data`): no script, one stylesheet."""
    gw = data["gateway"]
    created = svg_bars(
        [(_time_label(p["start"]), int(p["count"])) for p in gw["meetingsOverTime"]],
        title=f"Meetings created per {gw['bucketMinutes']} min",
    )
    failures = svg_hbars(
        [(c, int(gw["failuresByClass"].get(c, 0)), COLOURS[c]) for c in FAILURE_CLASSES],
        title="Failures by class",
    )
    organizers = svg_hbars(
        [(o["name"], int(o["count"]), "#43a047") for o in gw["topOrganizers"]], title="Top organizers"
    )
    consumers = svg_hbars(
        [(o["name"], int(o["count"]), "#00897b") for o in gw["topConsumers"]], title="Top consumers"
    )
    alert_rows = (
        "".join(
            f'<tr class="alert"><td class="{_severity_class(a.get("severity"))}">'
            f"<b>{escape(str(a.get('severity', '')).upper())}</b></td><td>{escape(str(a.get('title', '')))}</td>"
            f"<td>{escape(str(a.get('remedy', a.get('check', ''))))}</td><td>{escape(str(a.get('lastSeen', ''))[:19])}</td></tr>"
            for a in data["alerts"]
        )
        or '<tr><td colspan="4">no open alerts</td></tr>'
    )
    cert_rows = (
        "".join(
            f"<tr><td>{escape(c['thumbprint'][:16])}…</td><td>{escape(c['notAfter'][:10])}</td>"
            f'<td class="{"bad" if c["daysLeft"] < 30 else "ok"}">{c["daysLeft"]}</td></tr>'
            for c in data["certificates"]
        )
        or '<tr><td colspan="3">not reported yet (run meetgate monitor)</td></tr>'
    )
    policy = data.get("policy")
    if policy:
        approved = max(1, int(policy["approved"]))
        share = int(policy["holding"]) / approved
        coverage = (
            f'<svg class="chart" role="img" aria-label="Policy coverage" width="560" height="60" viewBox="0 0 560 60">'
            f'<rect x="8" y="10" width="540" height="18" fill="#eee"/>'
            f'<rect class="bar" x="8" y="10" width="{540 * share:.1f}" height="18" fill="#43a047" '
            f'data-value="{policy["holding"]}"/>'
            f'<text x="8" y="48" font-size="11">{policy["holding"]}/{policy["approved"]} approved organizers hold '
            f"the policy; {policy['beyondApproved']} beyond the list; "
            f"global grant: {'YES' if policy['global'] else 'no'}</text></svg>"
        )
    else:
        coverage = "<p>no policy snapshot yet (meetgate monitor report --policy-backend …)</p>"
    hyper = (
        f'<p class="hyper">Hypercare window until {escape(str(data["hypercareUntil"]))}: tighter thresholds</p>'
        if data.get("hypercare")
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<meta http-equiv="refresh" content="60">
<style>{STYLESHEET}</style></head><body>
<h1>{escape(title)}</h1>
<p>{escape(gw["since"][:16])} – {escape(gw["until"][:16])} UTC · monitor last run {escape(str(data.get("monitorLastRun") or "never"))}</p>
{hyper}
<div class="card"><span class="kpi" id="kpi-meetings"><b>{gw["meetingsCreated"]}</b>meetings created</span>
<span class="kpi"><b>{gw["requests"]}</b>requests</span>
<span class="kpi"><b>{sum(gw["failuresByClass"].values())}</b>failures</span>
<span class="kpi" id="kpi-alerts"><b>{len(data["alerts"])}</b>open alerts</span></div>
<div class="grid">
<div class="card" id="meetings">{created}</div>
<div class="card" id="failures">{failures}</div>
<div class="card" id="organizers">{organizers}</div>
<div class="card" id="consumers">{consumers}</div>
<div class="card" id="coverage"><h2>Policy coverage</h2>{coverage}</div>
<div class="card" id="certificates"><h2>Certificate expiry</h2><table><tr><th>thumbprint</th><th>not after</th><th>days left</th></tr>{cert_rows}</table></div>
</div>
<div class="card" id="alerts"><h2>Open alerts</h2><table><tr><th>severity</th><th>what happened</th><th>check first</th><th>last seen</th></tr>{alert_rows}</table></div>
<p><a href="dashboard.json">data as JSON</a></p>
</body></html>"""
