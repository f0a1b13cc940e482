"""Secrets never leak: logs (DEBUG, every logger), exception strings and reprs are scanned for the
private key, the client secret and every access token used in a run that also fails in many ways."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from meetgate.composition import graph_settings_from_profile
from meetgate.graph.auth import StaticTokenProvider
from meetgate.graph.client import GraphClient
from meetgate.graph.credentials import ClientSecretCredential
from meetgate.graph.errors import GraphError
from meetgate.graph.models import MeetingRequest


def test_no_key_secret_or_token_in_logs_errors_or_reprs(sandbox_app, sandbox_control, caplog):
    caplog.set_level(logging.DEBUG)
    settings = graph_settings_from_profile(sandbox_app.profile(), environ={})
    key_lines = [
        line
        for line in sandbox_app.private_key_path.read_text().splitlines()
        if line and not line.startswith("-----")
    ]
    secret_app = sandbox_control.register_app(
        sandbox_app.tenant_id, "Secret app", with_secret=True, roles=["OnlineMeetings.ReadWrite.All"]
    )
    secret = secret_app["clientSecret"]
    tokens: list[str] = []
    texts: list[str] = []
    errors: list[GraphError] = []

    def attempt(fn):
        try:
            return fn()
        except GraphError as exc:
            errors.append(exc)
            return None

    organizer = sandbox_app.pilot_users[0]
    outsider = sandbox_app.other_users[0]
    with GraphClient(settings) as graph:
        tokens.append(graph.tokens.get_token().token)
        graph.meetings.create(organizer.upn, MeetingRequest(subject="s"))
        attempt(lambda: graph.meetings.create(outsider.upn, MeetingRequest(subject="s")))
        attempt(lambda: graph.meetings.get(organizer.id, "nope"))
        attempt(lambda: graph.http.get(f"/users/{organizer.upn}/onlineMeetings/x"))
        texts += [repr(graph), repr(graph.tokens), repr(graph.tokens.get_token()), repr(graph.settings)]
        texts += [repr(graph.settings.credential), str(graph.settings.credential), repr(graph.token_claims())]
    secret_settings = replace(
        settings, client_id=secret_app["appId"], credential=ClientSecretCredential(secret)
    )
    with GraphClient(secret_settings) as graph:
        tokens.append(graph.tokens.get_token().token)
        attempt(lambda: graph.meetings.create(outsider.id, MeetingRequest(subject="s")))
        texts += [repr(graph.settings), repr(secret_settings.credential)]
    wrong = replace(secret_settings, credential=ClientSecretCredential(secret + "x"))
    with GraphClient(wrong) as graph:
        attempt(graph.tokens.get_token)
    delegated = sandbox_control.delegated_token(sandbox_app.tenant_id, organizer.id, sandbox_app.client_id)
    tokens.append(delegated)
    with GraphClient(settings, tokens=StaticTokenProvider(delegated)) as graph:
        attempt(lambda: graph.meetings.get(organizer.id, "x"))
        texts.append(repr(graph.tokens))
    assert len(errors) >= 5
    for exc in errors:
        texts += [str(exc), repr(exc), str(exc.to_dict()), exc.remedy]
    texts.append(caplog.text)
    texts += [record.getMessage() for record in caplog.records]
    haystack = "\n".join(texts)
    assert "HTTP Request" in caplog.text or caplog.records  # the run really logged
    for token in tokens:
        assert token not in haystack
        assert token.split(".")[2] not in haystack  # not even the signature part
    assert secret not in haystack
    for line in key_lines:
        assert line not in haystack
    with pytest.raises(AssertionError):  # the scan itself can fail: a planted token is found
        assert tokens[0] not in haystack + tokens[0]
