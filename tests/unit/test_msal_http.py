import httpx
import pytest

from meetgate.graph.msal_http import MsalHttpxAdapter, TokenServiceHttpError


def test_bytes_form_values_are_sent_as_text():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["body"] = request.content.decode()
        return httpx.Response(200, json={"ok": True}, headers={"x-ms-request-id": "r"})

    adapter = MsalHttpxAdapter(httpx.Client(transport=httpx.MockTransport(handler)))
    resp = adapter.post(
        "https://login.example/t/oauth2/v2.0/token", data={"client_assertion": b"abc.def", "n": None}
    )
    assert seen["body"] == "client_assertion=abc.def"
    assert resp.status_code == 200 and '"ok"' in resp.text
    assert resp.headers["x-ms-request-id"] == "r"
    resp.raise_for_status()


def test_errors_raise_and_repr_hides_body():
    adapter = MsalHttpxAdapter(
        httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(401, text="secret-token-body")))
    )
    resp = adapter.get("https://login.example/x")
    assert "secret-token-body" not in repr(resp)
    with pytest.raises(TokenServiceHttpError, match="401"):
        resp.raise_for_status()
