"""Where alerts go: a JSON lines file, a generic webhook, a Teams incoming webhook card, SMTP email.

(The console sink is the CLI's: only ``cli/`` prints.) Every sink takes a list of alerts and raises
:class:`SinkError` (with a remedy) when it cannot deliver; secrets in URLs never reach messages.
"""

from __future__ import annotations

import json
import smtplib
import ssl
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol

import httpx

from meetgate.admin.monitoring.model import Alert, MonitorError

SEVERITY_COLOURS = {"critical": "attention", "high": "attention", "warning": "warning", "info": "accent"}


class SinkError(MonitorError):
    """An alert sink could not deliver; ``remedy`` says what to do."""


class AlertSink(Protocol):
    name: str

    def send(self, alerts: Sequence[Alert]) -> None: ...


def _safe_url(url: str) -> str:
    """Scheme, host and path only (webhook URLs carry secrets in their query and path tails)."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}/…"


def check_webhook_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        # never echo the URL: a malformed one still carries its secret path or query
        raise SinkError(
            f"not a webhook URL (scheme {parts.scheme or 'missing'!r}, host {parts.hostname or 'missing'!r})",
            "give an https:// URL",
        )
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SinkError(
            f"refusing to send alerts over plain HTTP to {parts.hostname}",
            "use https:// (http only for 127.0.0.1)",
        )
    return url


@dataclass
class JsonLinesSink:
    path: Path
    name: str = "jsonl"

    def send(self, alerts: Sequence[Alert]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as out:
                for alert in alerts:
                    out.write(json.dumps(alert.to_dict(), sort_keys=True) + "\n")
        except OSError as exc:
            raise SinkError(
                f"cannot append alerts to {self.path}: {exc.strerror}", "check the path"
            ) from None


@dataclass
class _HttpSink:
    url: str = field(repr=False)  # webhook URLs are credentials
    client: httpx.Client | None = None
    timeout: float = 10.0

    def __post_init__(self) -> None:
        check_webhook_url(self.url)

    def _post(self, body: Any) -> None:
        client = self.client or httpx.Client(timeout=self.timeout, trust_env=False)
        try:
            response = client.post(self.url, json=body)
        except httpx.HTTPError as exc:
            raise SinkError(
                f"webhook {_safe_url(self.url)} unreachable: {type(exc).__name__}",
                "check the URL and network",
            ) from None
        finally:
            if self.client is None:
                client.close()
        if response.status_code >= 300:
            raise SinkError(
                f"webhook {_safe_url(self.url)} answered {response.status_code}",
                "check that the webhook still exists and accepts JSON posts",
            )


@dataclass
class WebhookSink(_HttpSink):
    """POSTs ``{"source": "meetgate", "alerts": [...]}``."""

    name: str = "webhook"

    def send(self, alerts: Sequence[Alert]) -> None:
        if alerts:
            self._post({"source": "meetgate", "alerts": [a.to_dict() for a in alerts]})


def teams_card(alerts: Sequence[Alert]) -> dict[str, Any]:
    """An Adaptive Card message as Teams incoming webhooks (and Workflows) accept it."""
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "size": "Large",
            "weight": "Bolder",
            "text": f"meetgate: {len(alerts)} alert(s)",
        }
    ]
    for alert in alerts:
        body += [
            {
                "type": "TextBlock",
                "wrap": True,
                "weight": "Bolder",
                "color": SEVERITY_COLOURS[alert.severity],
                "text": f"[{alert.severity.upper()}] {alert.title}",
            },
            {
                "type": "FactSet",
                "facts": [
                    {"title": "Rule", "value": alert.rule},
                    {"title": "Check first", "value": alert.remedy},
                    *({"title": "Evidence", "value": e} for e in alert.evidence[:3]),
                ],
            },
        ]
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": body,
                },
            }
        ],
    }


@dataclass
class TeamsSink(_HttpSink):
    name: str = "teams"

    def send(self, alerts: Sequence[Alert]) -> None:
        if alerts:
            self._post(teams_card(alerts))


def email_text(alerts: Sequence[Alert]) -> str:
    lines = []
    for alert in alerts:
        lines += [f"[{alert.severity.upper()}] {alert.title}", f"  check first: {alert.remedy}"]
        lines += [f"  evidence: {e}" for e in alert.evidence]
        lines.append("")
    return "\n".join(lines)


@dataclass
class SmtpSink:
    """Plain SMTP (``starttls`` when asked); ``password`` comes from the environment, never a file."""

    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    starttls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 10.0
    name: str = "email"

    def send(self, alerts: Sequence[Alert]) -> None:
        if not alerts:
            return
        message = EmailMessage()
        worst = alerts[0].severity
        message["Subject"] = f"[meetgate] {len(alerts)} alert(s), worst {worst}: {alerts[0].title[:80]}"
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message.set_content(email_text(alerts))
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username and self.password:
                    smtp.login(self.username, self.password)
                smtp.send_message(message)
        except smtplib.SMTPNotSupportedError:
            raise SinkError(
                f"{self.host}:{self.port} offers no SMTP AUTH, so the credentials cannot be used"
                + ("" if self.starttls else " (servers often offer it only after STARTTLS)"),
                "add --starttls if the server needs it, or unset MEETGATE_SMTP_USERNAME and "
                "MEETGATE_SMTP_PASSWORD for a relay that takes mail without a login",
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise SinkError(
                f"cannot send alert email through {self.host}:{self.port}: {type(exc).__name__}",
                "check the SMTP host, port, TLS and credentials",
            ) from None
