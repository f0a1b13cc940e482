"""MSAL's HTTP client, backed by httpx.

MSAL's default ``requests.Session`` takes its CA bundle from ``REQUESTS_CA_BUNDLE`` /
``CURL_CA_BUNDLE`` whenever those are set, whatever ``verify=`` says, so it cannot trust a private CA
such as the sandbox's on machines that set them. Handing MSAL this adapter puts TLS under our own
control (an explicit ``ssl.SSLContext``) and lets tests inject an ``httpx`` transport.

MSAL sends some form values (the client assertion) as ``bytes``; httpx would render them as
``"b'...'"``, so they are decoded here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx


class TokenServiceHttpError(RuntimeError):
    """An HTTP error status from the token service (MSAL's ``raise_for_status`` contract)."""


class MsalResponse:
    """The slice of a response MSAL reads: ``status_code``, ``text``, ``headers``."""

    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        self.text = response.text
        self.headers = dict(response.headers)

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise TokenServiceHttpError(f"HTTP {self.status_code} from the token service")

    def __repr__(self) -> str:  # never show a body: it may hold a token
        return f"<MsalResponse {self.status_code}>"


def _form(data: Mapping[str, Any] | None) -> dict[str, str] | None:
    if data is None:
        return None
    return {
        key: value.decode("ascii") if isinstance(value, bytes) else str(value)
        for key, value in data.items()
        if value is not None
    }


class MsalHttpxAdapter:
    """Implements MSAL's ``http_client`` interface (``post`` and ``get``) on an ``httpx.Client``."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def post(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> MsalResponse:
        timeout = kwargs.get("timeout")
        if isinstance(data, str | bytes):
            response = self._client.post(
                url, params=params, content=data, headers=headers, timeout=timeout or httpx.USE_CLIENT_DEFAULT
            )
        else:
            response = self._client.post(
                url,
                params=params,
                data=_form(data),
                headers=headers,
                timeout=timeout or httpx.USE_CLIENT_DEFAULT,
            )
        return MsalResponse(response)

    def get(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> MsalResponse:
        timeout = kwargs.get("timeout")
        response = self._client.get(
            url, params=params, headers=headers, timeout=timeout or httpx.USE_CLIENT_DEFAULT
        )
        return MsalResponse(response)

    def close(self) -> None:
        self._client.close()
