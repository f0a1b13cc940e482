"""MSAL's HTTP client, backed by httpx.

MSAL's default ``requests.Session`` takes its CA bundle from ``REQUESTS_CA_BUNDLE`` /
``CURL_CA_BUNDLE`` whenever those are set, whatever ``verify=`` says, so it cannot trust a private CA
such as the sandbox's on machines that set them. Handing MSAL this adapter puts TLS under our own
control (an explicit ``ssl.SSLContext``) and lets tests inject an ``httpx`` transport.

MSAL sends some form values (the client assertion) as ``bytes``; httpx would render them as
``"b'...'"``, so they are decoded here.

Every request to the identity platform (tenant discovery, the token request) is retried here under
the same :class:`~meetgate.graph.retry.RetryPolicy` as Graph calls: 429, 5xx and connection failures,
``Retry-After`` honoured, bounded in attempts and time. Both requests are safe to repeat (a discovery
read; a client-credentials grant that only issues another token). Retrying *below* MSAL matters: MSAL
caches a 429/5xx answer for its ``Retry-After`` (5 s by default) and would hand the cached failure to a
retry made above it. The last answer's status and ``Retry-After`` are kept in :attr:`last_failure` so the
token provider can say what failed when the retries ran out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from meetgate.graph.retry import RetryPolicy, parse_retry_after


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


@dataclass(frozen=True)
class TokenServiceFailure:
    """The identity platform's last failing answer: its status (0: no answer) and ``Retry-After``."""

    status: int
    retry_after: float | None
    url: str


def _is_retry_status(status: int) -> bool:
    return status == 429 or status >= 500


class MsalHttpxAdapter:
    """Implements MSAL's ``http_client`` interface (``post`` and ``get``) on an ``httpx.Client``."""

    def __init__(
        self,
        client: httpx.Client,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._monotonic = monotonic
        #: the last request's failure after its retries, None when it succeeded
        self.last_failure: TokenServiceFailure | None = None

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        started = self._monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                delay = self._retry.decide(attempt, exc, None, True, self._monotonic() - started)
                if delay is None:
                    self.last_failure = TokenServiceFailure(0, None, url)
                    raise
                self._sleep(delay)
                continue
            if not _is_retry_status(response.status_code):
                self.last_failure = None
                return response
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            delay = self._retry.decide(
                attempt, response.status_code, retry_after, True, self._monotonic() - started
            )
            if delay is None:
                self.last_failure = TokenServiceFailure(response.status_code, retry_after, url)
                return response
            self._sleep(delay)

    def post(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> MsalResponse:
        timeout = kwargs.get("timeout") or httpx.USE_CLIENT_DEFAULT
        if isinstance(data, str | bytes):
            response = self._send("POST", url, params=params, content=data, headers=headers, timeout=timeout)
        else:
            response = self._send(
                "POST", url, params=params, data=_form(data), headers=headers, timeout=timeout
            )
        return MsalResponse(response)

    def get(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> MsalResponse:
        timeout = kwargs.get("timeout") or httpx.USE_CLIENT_DEFAULT
        response = self._send("GET", url, params=params, headers=headers, timeout=timeout)
        return MsalResponse(response)

    def close(self) -> None:
        self._client.close()
