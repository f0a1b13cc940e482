"""Alert sinks against real local servers: an HTTP server on 127.0.0.1, an aiosmtpd SMTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from meetgate.admin.monitoring.model import Alert
from meetgate.admin.monitoring.sinks import JsonLinesSink, SinkError, SmtpSink, TeamsSink, WebhookSink

ALERTS = [
    Alert("new_client_secret", "critical", "A client secret was added", ("audit 1",), "Ask why", "a1"),
    Alert("sign_in_new_ip", "warning", "New IP 203.0.113.9", ("sign-in 2",), "Confirm the IP", "203.0.113.9"),
]


class Receiver:
    def __init__(self) -> None:
        self.posts: list[tuple[str, dict]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                receiver.posts.append((self.path, json.loads(self.rfile.read(length))))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def test_jsonl_appends_one_line_per_alert(tmp_path):
    sink = JsonLinesSink(tmp_path / "alerts" / "a.jsonl")
    sink.send(ALERTS)
    sink.send(ALERTS[:1])
    lines = [json.loads(x) for x in (tmp_path / "alerts" / "a.jsonl").read_text().splitlines()]
    assert [x["rule"] for x in lines] == ["new_client_secret", "sign_in_new_ip", "new_client_secret"]
    assert lines[0]["key"] == ALERTS[0].key and lines[0]["remedy"] == "Ask why"


def test_webhook_posts_the_alerts(receiver):
    WebhookSink(receiver.url("/hook/secret-token")).send(ALERTS)
    ((path, body),) = receiver.posts
    assert path == "/hook/secret-token" and body["source"] == "meetgate"
    assert [a["severity"] for a in body["alerts"]] == ["critical", "warning"]


def test_teams_card_shape(receiver):
    TeamsSink(receiver.url("/webhookb2/x")).send(ALERTS)
    ((_, body),) = receiver.posts
    card = body["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    texts = [b.get("text", "") for b in card["content"]["body"]]
    assert "[CRITICAL] A client secret was added" in texts and card["content"]["type"] == "AdaptiveCard"


def test_webhook_failure_hides_the_url_secret(receiver):
    receiver.status = 410
    with pytest.raises(SinkError, match="answered 410") as info:
        WebhookSink(receiver.url("/hook/secret-token")).send(ALERTS)
    assert "secret-token" not in str(info.value) and info.value.remedy


def test_plain_http_only_to_loopback():
    with pytest.raises(SinkError, match="plain HTTP"):
        WebhookSink("http://hooks.example.com/x")
    with pytest.raises(SinkError, match="not a webhook URL"):
        TeamsSink("ftp://x")


def test_smtp_delivers_to_a_local_server():
    from aiosmtpd.controller import Controller

    received: list[bytes] = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append(envelope.content)
            return "250 OK"

    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        SmtpSink("127.0.0.1", port, "meetgate@contoso.test", ("secops@contoso.test",)).send(ALERTS)
    finally:
        controller.stop()
    (raw,) = received
    message = message_from_bytes(raw)
    assert message["To"] == "secops@contoso.test"
    assert "worst critical" in message["Subject"]
    assert "check first: Confirm the IP" in message.get_payload()


def test_smtp_unreachable_says_what_to_check():
    with pytest.raises(SinkError, match="cannot send alert email") as info:
        SmtpSink("127.0.0.1", 9, "a@b", ("c@d",), timeout=2).send(ALERTS)
    assert "SMTP host" in (info.value.remedy or "")


@pytest.mark.parametrize(
    "url", ["hooks.example.com/hook/s3cr3t-t0ken", "https:/hooks.example.com/s3cr3t-t0ken"]
)
def test_a_malformed_webhook_url_is_refused_without_echoing_it(url):
    with pytest.raises(SinkError, match="not a webhook URL") as info:
        WebhookSink(url)
    assert "s3cr3t" not in str(info.value)


def test_webhook_sink_repr_hides_the_url():
    sink = TeamsSink("https://contoso.webhook.office.com/webhookb2/s3cr3t-t0ken")
    assert "s3cr3t" not in repr(sink)


def test_smtp_credentials_for_a_server_without_auth_say_so():
    """aiosmtpd offers no AUTH by default: logging in cannot work, and the message says why."""
    import socket

    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        sink = SmtpSink("127.0.0.1", port, "a@b", ("c@d",), username="alerts", password="s3cret-pw")
        with pytest.raises(SinkError, match="offers no SMTP AUTH") as info:
            sink.send(ALERTS)
    finally:
        controller.stop()
    assert "--starttls" in (info.value.remedy or "") and "s3cret-pw" not in str(info.value)
