import asyncio
import logging

import httpx
import pytest
from graph_fakes import CLIENT_ID, FakeCloud, fake_jwt, private_key_pem, settings

from meetgate.graph.auth import StaticTokenProvider
from meetgate.graph.client import AsyncGraphClient, GraphClient
from meetgate.graph.errors import (
    AccessPolicyMissing,
    AuthorizationError,
    BadRequestError,
    DelegatedTokenError,
    GraphError,
    InvalidTokenError,
    ServiceError,
    ThrottledError,
    TransportError,
)
from meetgate.graph.http import GraphCallContext
from meetgate.graph.retry import RetryPolicy, no_jitter

FAST = RetryPolicy(max_attempts=4, max_total_seconds=30, jitter=no_jitter)


def client(cloud: FakeCloud, slept: list[float] | None = None, **kwargs) -> GraphClient:
    sink = [] if slept is None else slept
    return GraphClient(
        settings(), transport=cloud.transport(), retry=kwargs.pop("retry", FAST), sleep=sink.append, **kwargs
    )


def graph_requests(cloud: FakeCloud) -> list[httpx.Request]:
    return [r for r in cloud.requests if r.url.host == "graph.test"]


def throttled(after: str | None = None, status: int = 429) -> httpx.Response:
    headers = {"Retry-After": after} if after is not None else {}
    return httpx.Response(
        status,
        json={"error": {"code": "TooManyRequests", "message": "Please retry again later."}},
        headers=headers,
    )


def test_get_sends_auth_and_one_client_request_id_across_retries():
    cloud = FakeCloud(faults=[throttled("0.25"), httpx.Response(503), throttled("1")])
    user = cloud.add_user("alice@contoso.test")
    slept: list[float] = []
    with client(cloud, slept) as graph:
        data = graph.http.get(f"/users/{user}")
    assert data["id"] == user
    sent = graph_requests(cloud)
    assert len(sent) == 4
    ids = {r.headers["client-request-id"] for r in sent}
    assert len(ids) == 1
    assert all(r.headers["Authorization"].startswith("Bearer ") for r in sent)
    assert slept == [0.25, 1.0, 1.0]  # Retry-After as given; exponential backoff (attempt 2) without it


def test_throttling_exhausted_raises_throttled_error_with_retry_after():
    cloud = FakeCloud(faults=[throttled("2")] * 4)
    with client(cloud) as graph, pytest.raises(ThrottledError) as caught:
        graph.http.get("/users/x")
    err = caught.value
    assert err.status == 429 and err.retry_after == 2.0
    assert "wait 2 s" in err.remedy
    assert err.client_request_id


def test_server_errors_exhausted_raise_service_error():
    cloud = FakeCloud(faults=[httpx.Response(503)] * 4)
    with client(cloud) as graph, pytest.raises(ServiceError):
        graph.http.get("/users/x")
    assert len(graph_requests(cloud)) == 4


@pytest.mark.parametrize(
    ("answers", "maybe_applied"),
    [
        ([503] * 4, False),  # Graph said it did not process any attempt
        ([429] * 4, False),
        ([500, 503, 503, 503], True),  # the first attempt may have been carried out
        ([503, 503, 503, 504], True),
        ([400], False),
    ],
)
def test_a_final_error_says_whether_an_attempt_may_have_been_carried_out(answers, maybe_applied):
    cloud = FakeCloud(faults=[httpx.Response(status) for status in answers])
    with client(cloud) as graph, pytest.raises(GraphError) as caught:
        graph.http.patch("/users/x/onlineMeetings/m", json={"subject": "s"})
    assert caught.value.maybe_applied is maybe_applied


def test_a_connection_lost_after_sending_may_have_been_carried_out():
    request = httpx.Request("POST", "https://graph.test")
    lost = FakeCloud(faults=[httpx.ReadError("reset", request=request)])
    with client(lost) as graph, pytest.raises(TransportError) as caught:
        graph.http.post("/users/x/onlineMeetings", json={"subject": "s"})
    assert caught.value.maybe_applied is True
    never_sent = FakeCloud(faults=[httpx.ConnectError("refused", request=request)] * 4)
    with client(never_sent) as graph, pytest.raises(TransportError) as caught:
        graph.http.post("/users/x/onlineMeetings", json={"subject": "s"})
    assert caught.value.maybe_applied is False


def test_dropped_connections_are_retried_for_safe_requests():
    request = httpx.Request("GET", "https://graph.test")
    user_cloud = FakeCloud(
        faults=[httpx.ReadError("reset", request=request), httpx.ConnectError("refused", request=request)]
    )
    user = user_cloud.add_user("bob@contoso.test")
    with client(user_cloud) as graph:
        assert graph.http.get(f"/users/{user}")["id"] == user


def test_plain_post_is_not_repeated_after_the_request_may_have_arrived():
    request = httpx.Request("POST", "https://graph.test")
    cloud = FakeCloud(faults=[httpx.ReadError("reset", request=request)])
    with client(cloud) as graph, pytest.raises(TransportError) as caught:
        graph.http.post("/users/x/onlineMeetings", json={"subject": "s"})
    assert "not safe to repeat" in str(caught.value)
    assert len(graph_requests(cloud)) == 1


def test_plain_post_is_retried_when_the_connection_never_opened():
    request = httpx.Request("POST", "https://graph.test")
    cloud = FakeCloud(
        faults=[httpx.ConnectError("refused", request=request), httpx.Response(201, json={"ok": True})]
    )
    with client(cloud) as graph:
        assert graph.http.post("/x", json={}) == {"ok": True}


def test_401_refreshes_the_token_once_and_retries():
    cloud = FakeCloud()
    user = cloud.add_user("carol@contoso.test")
    with client(cloud) as graph:
        first = graph.tokens.get_token()
        cloud.rejected_tokens.add(first.token)
        assert graph.http.get(f"/users/{user}")["id"] == user
        assert graph.tokens.get_token().token != first.token
    assert len(cloud.issued) == 2


def test_401_twice_raises_invalid_token_error():
    cloud = FakeCloud(
        faults=[
            lambda r: httpx.Response(
                401,
                json={
                    "error": {
                        "code": "InvalidAuthenticationToken",
                        "message": "Access token has expired or is not yet valid.",
                    }
                },
            )
        ]
        * 2
    )
    with client(cloud) as graph, pytest.raises(InvalidTokenError) as caught:
        graph.http.get("/users/x")
    assert "clock" in caught.value.remedy
    assert len(cloud.issued) == 2


def test_policy_403_names_app_and_organizer_and_shows_the_grant_line():
    cloud = FakeCloud()
    organizer = cloud.add_user("dave@contoso.test", allowed=False)
    with client(cloud) as graph, pytest.raises(AccessPolicyMissing) as caught:
        graph.http.get(
            f"/users/{organizer}/onlineMeetings/abc", context=GraphCallContext(organizer="dave@contoso.test")
        )
    err = caught.value
    assert err.status == 403 and err.app_id == CLIENT_ID and err.organizer == "dave@contoso.test"
    assert (
        'Grant-CsApplicationAccessPolicy -PolicyName TeamsMeetingsIntegration -Identity "dave@contoso.test"'
        in err.remedy
    )
    assert CLIENT_ID in err.remedy
    assert "30 minutes" in err.remedy
    assert err.request_id == "req-1"


@pytest.mark.parametrize(
    "message",
    [
        "No application access policy found for this app",
        f"No application access policy found for this app {CLIENT_ID} on the user",
        f"App {CLIENT_ID} is not authorized to Create meeting on behalf of user 123",
    ],
)
def test_policy_403_variants_are_recognised(message):
    cloud = FakeCloud(faults=[httpx.Response(403, json={"error": {"code": "General", "message": message}})])
    with client(cloud) as graph, pytest.raises(AccessPolicyMissing):
        graph.http.get("/users/someone/onlineMeetings")


def test_other_403_is_a_plain_authorization_error():
    cloud = FakeCloud(faults=[httpx.Response(403, json={"error": {"code": "Forbidden", "message": ""}})])
    with client(cloud) as graph, pytest.raises(AuthorizationError) as caught:
        graph.http.get("/users/someone")
    assert type(caught.value) is AuthorizationError


def test_delegated_token_403_is_named():
    cloud = FakeCloud(faults=[httpx.Response(403, json={"error": {"code": "Forbidden", "message": ""}})])
    token = fake_jwt({"scp": "OnlineMeetings.ReadWrite", "upn": "u@x.test"})
    graph = GraphClient(settings(), transport=cloud.transport(), tokens=StaticTokenProvider(token))
    with pytest.raises(DelegatedTokenError) as caught:
        graph.http.get("/users/someone/onlineMeetings")
    assert "app-only" in caught.value.remedy


def test_400_is_bad_request_with_graph_message():
    cloud = FakeCloud(
        faults=[httpx.Response(400, json={"error": {"code": "BadRequest", "message": "Invalid field"}})]
    )
    with client(cloud) as graph, pytest.raises(BadRequestError, match="Invalid field"):
        graph.http.patch("/x", json={})


def test_non_json_error_bodies_are_tolerated():
    cloud = FakeCloud(faults=[httpx.Response(418, text="<html>teapot</html>")])
    with client(cloud) as graph, pytest.raises(GraphError) as caught:
        graph.http.get("/x")
    assert caught.value.status == 418


def test_next_links_to_foreign_hosts_are_refused():
    cloud = FakeCloud(
        faults=[
            httpx.Response(200, json={"value": [{"id": "1"}], "@odata.nextLink": "https://evil.test/steal"})
        ]
    )
    with client(cloud) as graph, pytest.raises(GraphError, match="foreign URL"):
        list(graph.http.iterate("/users"))


def test_paging_follows_next_link():
    cloud = FakeCloud(
        faults=[
            httpx.Response(
                200,
                json={
                    "value": [{"id": "1"}],
                    "@odata.nextLink": "https://graph.test/v1.0/users?$skiptoken=x",
                },
            ),
            httpx.Response(200, json={"value": [{"id": "2"}]}),
        ]
    )
    with client(cloud) as graph:
        assert [u.id for u in graph.directory.list_users()] == ["1", "2"]
    assert "skiptoken" in str(graph_requests(cloud)[1].url)


def test_async_client_behaves_the_same():
    cloud = FakeCloud(faults=[throttled("0.5"), httpx.Response(503)])
    user = cloud.add_user("erin@contoso.test")
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def main() -> str:
        async with AsyncGraphClient(
            settings(),
            transport=cloud.transport(),
            token_transport=cloud.transport(),
            retry=FAST,
            sleep=sleep,
        ) as graph:
            user_data = await graph.http.get(f"/users/{user}")
            return str(user_data["id"])

    assert asyncio.run(main()) == user
    assert slept == [0.5, 1.0]
    assert len({r.headers["client-request-id"] for r in graph_requests(cloud)}) == 1


def test_secrets_never_show_in_reprs_errors_or_logs(caplog):
    caplog.set_level(logging.DEBUG)
    cloud = FakeCloud(faults=[throttled("0")] * 4)
    graph = client(cloud)
    token = graph.tokens.get_token()
    with pytest.raises(ThrottledError) as caught:
        graph.http.get("/users/x")
    key_body = private_key_pem().decode().splitlines()[1]
    texts = [
        repr(graph),
        repr(graph.settings),
        repr(graph.settings.credential),
        str(graph.settings.credential),
        repr(token),
        repr(graph.tokens),
        str(caught.value),
        repr(caught.value),
        str(caught.value.to_dict()),
        caplog.text,
    ]
    for text in texts:
        assert token.token not in text
        assert key_body not in text
    graph.close()
