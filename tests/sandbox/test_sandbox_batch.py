"""JSON batching: ``POST /v1.0/$batch`` serves each request through the same app, over real TLS.

What "Combine multiple HTTP requests using JSON batching" documents: up to 20 requests, unique ids,
``dependsOn`` (a failed dependency answers 424), relative urls, 200 for a batch it can read whatever
the inner statuses, 400 for one it cannot; each inner request authenticated with the batch's
token, checked against the access policy, throttled on its own (429 with its own ``Retry-After``)
and recorded in the activity log like a direct one.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import msal_app

EXTERNAL_ID = "7eb8263f-d0e0-4149-bb1c-1f0476083c56"


class Graph:
    def __init__(self, http: httpx.Client, base: str, token: str) -> None:
        self.http, self.base, self.token = http, base, token

    def batch(self, requests: Any, *, version: str = "v1.0", **headers: str) -> httpx.Response:
        sent = {"Authorization": f"Bearer {self.token}", **headers}
        return self.http.post(f"{self.base}/{version}/$batch", json={"requests": requests}, headers=sent)

    def responses(self, requests: Any, **kwargs: Any) -> dict[str, dict[str, Any]]:
        """The inner responses of a batch that must be read (200), by id."""
        response = self.batch(requests, **kwargs)
        assert response.status_code == 200, response.text
        return {r["id"]: r for r in response.json()["responses"]}


@pytest.fixture
def graph(sandbox, http, sandbox_app) -> Graph:
    credential = {
        "private_key": sandbox_app.private_key_path.read_text(),
        "public_certificate": sandbox_app.certificate_path.read_text(),
    }
    result = msal_app(
        sandbox, http, sandbox_app.tenant_id, sandbox_app.client_id, credential
    ).acquire_token_for_client(["https://graph.microsoft.com/.default"])
    assert "access_token" in result, result.get("error_description")
    return Graph(http, sandbox.info.graph_url, str(result["access_token"]))


@pytest.fixture
def pilot(sandbox_app) -> str:
    return str(sandbox_app.pilot_users[0].id)


@pytest.fixture
def outsider(sandbox_app) -> str:
    """An organizer the access policy is not granted to."""
    return str(sandbox_app.other_users[0].id)


def _meeting(owner: str, request_id: str, subject: str = "Batched", **extra: Any) -> dict[str, Any]:
    return {
        "id": request_id,
        "method": "POST",
        "url": f"/users/{owner}/onlineMeetings",
        "headers": {"Content-Type": "application/json"},
        "body": {
            "subject": subject,
            "startDateTime": "2031-05-01T09:00:00Z",
            "endDateTime": "2031-05-01T10:00:00Z",
            **extra,
        },
    }


def _error(entry: dict[str, Any]) -> tuple[str, str]:
    return entry["body"]["error"]["code"], entry["body"]["error"]["message"]


def test_mixed_successes_and_failures_answer_200_with_each_status(graph, pilot, outsider):
    response = graph.batch(
        [
            {"id": "user", "method": "GET", "url": f"/users/{pilot}?$select=id,displayName"},
            _meeting(pilot, "created"),
            _meeting(outsider, "no-policy"),
            {"id": "unknown", "method": "GET", "url": "/users/00000000-0000-0000-0000-000000000000"},
            {"id": "no-route", "method": "GET", "url": "/nowhere"},
            {
                "id": "count",
                "method": "GET",
                "url": "users/$count",
                "headers": {"ConsistencyLevel": "eventual"},
            },
        ],
        **{"client-request-id": "3f1c8e1e-4f1e-4a57-9d65-0c3d2b9f6a11"},
    )
    assert response.status_code == 200, response.text
    answers = {r["id"]: r for r in response.json()["responses"]}
    assert answers["user"]["status"] == 200
    assert answers["user"]["body"]["id"] == pilot
    assert set(answers["user"]["body"]) == {"@odata.context", "id", "displayName"}
    assert answers["user"]["headers"]["Content-Type"].startswith("application/json")
    created = answers["created"]
    assert created["status"] == 201
    assert created["body"]["joinWebUrl"].startswith("https://teams.microsoft.com/l/meetup-join/")
    assert answers["no-policy"]["status"] == 403
    assert _error(answers["no-policy"])[1] == "No application access policy found for this app"
    assert answers["unknown"]["status"] == 404
    assert _error(answers["unknown"])[0] == "Request_ResourceNotFound"
    assert answers["no-route"]["status"] == 400
    # a body that is not JSON comes back as base64 of its bytes
    assert answers["count"]["status"] == 200
    assert answers["count"]["headers"]["Content-Type"].startswith("text/plain")
    assert int(base64.b64decode(answers["count"]["body"])) > 0
    # every inner response has its own request id, under the batch's client-request-id
    ids = {entry["headers"]["request-id"] for entry in answers.values()}
    assert len(ids) == len(answers)
    assert {entry["headers"]["client-request-id"] for entry in answers.values()} == {
        response.headers["client-request-id"]
    }
    assert response.headers["client-request-id"] == "3f1c8e1e-4f1e-4a57-9d65-0c3d2b9f6a11"


def test_responses_keep_request_order_without_depends_on(graph, pilot):
    requests = [{"id": str(n), "method": "GET", "url": f"/users/{pilot}?$select=id"} for n in (3, 1, 2, 10)]
    response = graph.batch(requests)
    assert response.status_code == 200, response.text
    assert [r["id"] for r in response.json()["responses"]] == ["3", "1", "2", "10"]
    assert {r["status"] for r in response.json()["responses"]} == {200}


def test_depends_on_orders_the_requests_and_a_failed_dependency_answers_424(graph, pilot, outsider):
    response = graph.batch(
        [
            {"id": "read", "method": "GET", "url": f"/users/{pilot}", "dependsOn": ["create"]},
            _meeting(pilot, "create"),
            _meeting(outsider, "refused"),
            {"id": "after-refused", "method": "GET", "url": f"/users/{pilot}", "dependsOn": ["refused"]},
            {"id": "chain", "method": "GET", "url": f"/users/{pilot}", "dependsOn": ["after-refused"]},
        ]
    )
    assert response.status_code == 200, response.text
    entries = response.json()["responses"]
    assert [e["id"] for e in entries] == ["create", "read", "refused", "after-refused", "chain"]
    by_id = {e["id"]: e for e in entries}
    assert by_id["create"]["status"] == 201 and by_id["read"]["status"] == 200
    assert by_id["refused"]["status"] == 403
    for failed in ("after-refused", "chain"):
        assert by_id[failed]["status"] == 424
        assert _error(by_id[failed])[0] == "FailedDependency"


def test_create_or_get_twice_in_a_batch_is_idempotent(graph, pilot):
    def create_or_get(request_id: str, subject: str, *depends: str) -> dict[str, Any]:
        item = _meeting(pilot, request_id, subject, externalId=EXTERNAL_ID)
        item["url"] += "/createOrGet"
        if depends:
            item["dependsOn"] = list(depends)
        return item

    answers = graph.responses(
        [create_or_get("first", "Planning"), create_or_get("again", "Ignored on a retry", "first")]
    )
    assert answers["first"]["status"] == 201, answers["first"]
    assert answers["again"]["status"] == 200, answers["again"]
    assert answers["again"]["body"]["id"] == answers["first"]["body"]["id"]
    assert answers["again"]["body"]["subject"] == "Planning"
    # and a batch repeated whole (a client's retry) finds the same meeting
    retried = graph.responses([create_or_get("first", "Planning")])
    assert retried["first"]["status"] == 200
    assert retried["first"]["body"]["id"] == answers["first"]["body"]["id"]


def test_inner_requests_are_recorded_in_the_activity_log(graph, sandbox_app, pilot):
    answers = graph.responses(
        [
            {"id": "a", "method": "GET", "url": f"/users/{pilot}"},
            {"id": "b", "method": "GET", "url": "/users/00000000-0000-0000-0000-000000000000"},
        ]
    )
    log = sandbox_app.control.request_log(sandbox_app.tenant_id, app_id=sandbox_app.client_id)
    by_request_id = {r["requestId"]: r for r in log}
    for entry, path, status in (
        (answers["a"], f"/v1.0/users/{pilot}", 200),
        (answers["b"], "/v1.0/users/00000000-0000-0000-0000-000000000000", 404),
    ):
        record = by_request_id[entry["headers"]["request-id"]]
        assert (record["method"], record["path"], record["status"]) == ("GET", path, status)
        assert record["appId"] == sandbox_app.client_id
    assert any(r["path"] == "/v1.0/$batch" and r["method"] == "POST" for r in log)


@pytest.fixture
def throttled(sandbox_control) -> Iterator[None]:
    """A bucket of one request per (tenant, app) that refills in ten seconds (faults are server-wide)."""
    sandbox_control.set_faults(throttle_rps=0.1)
    try:
        yield
    finally:
        sandbox_control.clear_faults()


def test_each_inner_request_is_throttled_on_its_own_with_retry_after(graph, pilot, throttled):
    response = graph.batch([{"id": str(n), "method": "GET", "url": f"/users/{pilot}"} for n in range(4)])
    assert response.status_code == 200, response.text  # the batch itself takes no token
    entries = response.json()["responses"]
    assert [e["status"] for e in entries] == [200, 429, 429, 429]
    for entry in entries[1:]:
        assert _error(entry) == ("TooManyRequests", "Please retry again later.")
        assert 0 < float(entry["headers"]["Retry-After"]) <= 10


def test_the_beta_endpoint_batches_too(graph, pilot):
    answers = graph.responses([{"id": "1", "method": "GET", "url": f"/users/{pilot}"}], version="beta")
    assert answers["1"]["status"] == 200
    assert "/beta/$metadata#users" in answers["1"]["body"]["@odata.context"]


def test_a_batch_without_a_token_is_refused_whole(sandbox, http, pilot):
    response = http.post(
        f"{sandbox.info.graph_url}/v1.0/$batch",
        json={"requests": [{"id": "1", "method": "GET", "url": f"/users/{pilot}"}]},
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_more_than_twenty_requests_are_refused(graph, pilot):
    requests = [{"id": str(n), "method": "GET", "url": f"/users/{pilot}"} for n in range(21)]
    response = graph.batch(requests)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"
    assert "20" in response.json()["error"]["message"]
    assert graph.batch(requests[:20]).status_code == 200


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        ("not json", "Invalid batch payload format."),
        ({"requests": []}, "no requests"),
        ({"value": []}, "'requests' array"),
        ({"requests": [{"id": "1", "method": "GET"}]}, "no url"),
        (
            {"requests": [{"id": "1", "method": "GET", "url": "https://graph.microsoft.com/v1.0/me"}]},
            "relative",
        ),
        ({"requests": [{"id": "1", "method": "TRACE", "url": "/users"}]}, "method"),
        ({"requests": [{"method": "GET", "url": "/users"}]}, "no id"),
        (
            {
                "requests": [
                    {"id": "a", "method": "GET", "url": "/users"},
                    {"id": "A", "method": "GET", "url": "/me"},
                ]
            },
            "more than once",
        ),
        ({"requests": [{"id": "1", "method": "GET", "url": "/users", "dependsOn": ["2"]}]}, "depends on '2'"),
        (
            {
                "requests": [
                    {"id": "1", "method": "GET", "url": "/users", "dependsOn": ["2"]},
                    {"id": "2", "method": "GET", "url": "/users", "dependsOn": ["1"]},
                ]
            },
            "cycle",
        ),
        ({"requests": [{"id": "1", "method": "POST", "url": "/users", "body": {}}]}, "Content-Type"),
        ({"requests": [{"id": "1", "method": "POST", "url": "/$batch"}]}, "Nested"),
    ],
)
def test_a_malformed_batch_is_a_400(graph, payload, says):
    content = payload.encode() if isinstance(payload, str) else None
    response = graph.http.post(
        f"{graph.base}/v1.0/$batch",
        headers={"Authorization": f"Bearer {graph.token}", "Content-Type": "application/json"},
        content=content,
        json=None if content is not None else payload,
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "BadRequest"
    assert error["message"].startswith("Invalid batch payload format.")
    assert says in error["message"]


def test_a_batch_is_posted(graph):
    response = graph.http.get(f"{graph.base}/v1.0/$batch", headers={"Authorization": f"Bearer {graph.token}"})
    assert response.status_code == 405
