"""HTTP to Microsoft Graph: request building, retry and error mapping, sync and async.

The sync :class:`GraphHttp` and the async :class:`AsyncGraphHttp` are thin loops around one shared,
I/O-free :class:`CallPlan`: it builds each attempt's request, and turns each response or exception
into the next step (done, retry after a delay, refresh the token and retry, or raise). So both
flavours behave identically by construction.

One logical call keeps one ``client-request-id`` across all its attempts (Graph echoes it; support
asks for it). Foreign exceptions (httpx) are translated into :mod:`meetgate.graph.errors` here.
"""

from __future__ import annotations

import inspect
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from meetgate import __version__
from meetgate.graph.auth import AccessToken, TokenClaims, TokenSource, decode_claims
from meetgate.graph.errors import (
    GraphError,
    InvalidTokenError,
    TransportError,
)
from meetgate.graph.limiter import AdaptiveLimiter
from meetgate.graph.retry import (
    MAYBE_PROCESSED_STATUSES,
    MAYBE_SENT_ERRORS,
    RetryPolicy,
    parse_retry_after,
)
from meetgate.graph.settings import GraphSettings

log = logging.getLogger("meetgate.graph.http")

USER_AGENT = f"meetgate/{__version__}"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "PUT", "PATCH"})


@dataclass(frozen=True)
class GraphCallContext:
    """What a logical call is about, so errors can name it and say what to do."""

    #: short verb phrase for messages, e.g. "create a meeting"
    operation: str | None = None
    #: the organizer as the caller gave it (UPN or id)
    organizer: str | None = None
    #: the user looked up (directory calls)
    user: str | None = None
    #: the meeting id, when the call is about one meeting
    meeting_id: str | None = None
    #: the token must carry at least one of these roles
    required_roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class GraphResponse:
    """A successful response when the caller needs more than the body (status, headers)."""

    status: int
    body: Any
    headers: Mapping[str, str]
    client_request_id: str


@dataclass
class Step:
    """What to do after an attempt."""

    done: bool = False
    value: Any = None
    delay: float = 0.0
    refresh_token: bool = False


@dataclass
class CallPlan:
    """One logical call and its attempts: pure logic, no I/O (shared by sync and async)."""

    method: str
    url: str
    settings: GraphSettings
    retry: RetryPolicy
    params: Mapping[str, Any] | None = None
    json: Any = None
    headers: Mapping[str, str] | None = None
    safe: bool = True
    context: GraphCallContext = field(default_factory=GraphCallContext)
    #: return a GraphResponse (status, headers, body) instead of the body
    full: bool = False
    client_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    clock: Callable[[], float] = time.monotonic
    attempt: int = 0
    started: float = 0.0
    refreshed: bool = False
    maybe_applied: bool = False
    last_token: str | None = field(default=None, repr=False)

    def build(self, token: AccessToken) -> httpx.Request:
        if self.attempt == 0:
            self.started = self.clock()
        self.attempt += 1
        self.last_token = token.token
        headers = {
            "Authorization": f"Bearer {token.token}",
            "client-request-id": self.client_request_id,
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if self.headers:
            headers.update(self.headers)
        return httpx.Request(self.method, self.url, params=self.params, json=self.json, headers=headers)

    # -- outcomes --------------------------------------------------------------------------------

    def after_response(self, response: httpx.Response) -> Step:
        status = response.status_code
        if status < 300:
            body = _parse_body(response)
            if self.full:
                return Step(
                    done=True,
                    value=GraphResponse(status, body, response.headers, self.client_request_id),
                )
            return Step(done=True, value=body)
        if status == 404 and self.method == "DELETE" and self.maybe_applied:
            # an earlier attempt may have deleted it before its answer was lost: the state is reached
            return Step(done=True, value=None)
        if status == 401 and not self.refreshed:
            self.refreshed = True
            log.info(
                "401 from Graph; refreshing the token once (client-request-id %s)", self.client_request_id
            )
            return Step(refresh_token=True)
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        delay = self.retry.decide(self.attempt, status, retry_after, self.safe, self.clock() - self.started)
        if delay is not None:
            if status in MAYBE_PROCESSED_STATUSES:
                self.maybe_applied = True
            log.info(
                "%s %s -> %d; retry %d in %.3fs (client-request-id %s)",
                self.method,
                self._path(),
                status,
                self.attempt,
                delay,
                self.client_request_id,
            )
            return Step(delay=delay)
        error = self.error_for(response, retry_after)
        error.maybe_applied = self.maybe_applied or status in MAYBE_PROCESSED_STATUSES
        raise error

    def after_exception(self, exc: Exception) -> Step:
        if not isinstance(exc, httpx.TransportError):
            raise exc
        if isinstance(exc, MAYBE_SENT_ERRORS):
            self.maybe_applied = True
        delay = self.retry.decide(self.attempt, exc, None, self.safe, self.clock() - self.started)
        if delay is not None:
            log.info(
                "%s %s failed (%s); retry %d in %.3fs (client-request-id %s)",
                self.method,
                self._path(),
                type(exc).__name__,
                self.attempt,
                delay,
                self.client_request_id,
            )
            return Step(delay=delay)
        hint = (
            ""
            if self.safe or not isinstance(exc, MAYBE_SENT_ERRORS)
            else " (not retried: not safe to repeat)"
        )
        raise TransportError(
            f"{self.method} {self._path()} failed after {self.attempt} attempt(s): {type(exc).__name__}{hint}",
            client_request_id=self.client_request_id,
            method=self.method,
            path=self._path(),
            maybe_applied=self.maybe_applied,
        ) from None

    # -- error mapping ----------------------------------------------------------------------------

    def _path(self) -> str:
        base = self.settings.graph_url
        return self.url[len(base) :] if self.url.startswith(base) else self.url

    def _claims(self) -> TokenClaims | None:
        if not self.last_token:
            return None
        try:
            return decode_claims(self.last_token)
        except InvalidTokenError:
            return None

    def error_for(self, response: httpx.Response, retry_after: float | None = None) -> GraphError:
        """The error for Graph's refusal ``response`` to this call (:func:`~meetgate.graph.http_errors.error_for`)."""
        from meetgate.graph.http_errors import error_for

        return error_for(self, response, retry_after)


def _retry_after(response: httpx.Response) -> float | None:
    if response.status_code < 400:
        return None
    return parse_retry_after(response.headers.get("Retry-After"))


def _parse_body(response: httpx.Response) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    content_type = response.headers.get("content-type", "")
    if "json" in content_type:
        return response.json()
    return response.text


class _GraphHttpBase:
    """What the sync and async flavours share: URLs, defaults and the plan factory."""

    def __init__(
        self,
        settings: GraphSettings,
        tokens: TokenSource,
        retry: RetryPolicy | None,
        limiter: AdaptiveLimiter | None = None,
    ) -> None:
        self.settings = settings
        self.tokens = tokens
        self.retry = retry or RetryPolicy()
        #: paces every attempt when set (shared by every client handed the same limiter)
        self.limiter = limiter

    def url(self, path: str) -> str:
        if path.startswith(("https://", "http://")):
            if not path.startswith(self.settings.graph_url + "/"):
                raise GraphError(
                    f"refusing to send the access token to a foreign URL {path.split('?')[0]}",
                    remedy="Only follow links that point at graph_url.",
                )
            return path
        return f"{self.settings.base_url}/{path.lstrip('/')}"

    def plan(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        safe: bool | None = None,
        context: GraphCallContext | None = None,
        full: bool = False,
    ) -> CallPlan:
        method = method.upper()
        return CallPlan(
            method=method,
            url=self.url(path),
            settings=self.settings,
            retry=self.retry,
            params=params,
            json=json,
            headers=headers,
            safe=(method in SAFE_METHODS) if safe is None else safe,
            context=context or GraphCallContext(),
            full=full,
        )


def _streamed(plan: CallPlan, response: httpx.Response) -> bool:
    """Whether a streamed response's body goes to the sink: a success, or (for a ranged request) 416,
    whose ``Content-Range: bytes */total`` tells the caller what it already has."""
    ranged = any(key.lower() == "range" for key in (plan.headers or {}))
    return response.status_code < 300 or (response.status_code == 416 and ranged)


def _broken_off(plan: CallPlan, received: int, exc: Exception) -> TransportError:
    return TransportError(
        f"{plan.method} {plan._path().split('?')[0]} broke off after {received} byte(s): {type(exc).__name__}",
        client_request_id=plan.client_request_id,
        method=plan.method,
        path=plan._path(),
        remedy="Run the download again: it resumes from the bytes already written.",
    )


def _build_httpx_kwargs(settings: GraphSettings) -> dict[str, Any]:
    from meetgate.graph.auth import build_ssl_context

    return {
        "verify": build_ssl_context(settings.ca_bundle),
        "timeout": settings.timeout_seconds,
        "http2": settings.http2,
        "trust_env": False,
        "limits": httpx.Limits(max_connections=100, max_keepalive_connections=20),
    }


class GraphHttp(_GraphHttpBase):
    """Synchronous Graph HTTP: ``get``/``post``/``patch``/``delete`` return parsed JSON (or None)."""

    def __init__(
        self,
        settings: GraphSettings,
        tokens: TokenSource,
        *,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        limiter: AdaptiveLimiter | None = None,
    ) -> None:
        super().__init__(settings, tokens, retry, limiter)
        self._sleep = sleep
        if transport is not None:
            self._client = httpx.Client(transport=transport, timeout=settings.timeout_seconds)
        else:
            self._client = httpx.Client(**_build_httpx_kwargs(settings))

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        safe: bool | None = None,
        context: GraphCallContext | None = None,
        full: bool = False,
    ) -> Any:
        plan = self.plan(
            method, path, params=params, json=json, headers=headers, safe=safe, context=context, full=full
        )
        return self.run(plan)

    def run(self, plan: CallPlan) -> Any:
        refresh = False
        while True:
            if refresh:
                token = self.tokens.get_token(force_refresh=True, rejected=plan.last_token)
            else:
                token = self.tokens.get_token()
            request = plan.build(token)
            permit = self.limiter.acquire() if self.limiter is not None else None
            try:
                response = self._client.send(request)
            except httpx.TransportError as exc:
                if permit is not None and self.limiter is not None:
                    self.limiter.release(permit, exc)
                step = plan.after_exception(exc)
            else:
                if permit is not None and self.limiter is not None:
                    self.limiter.release(permit, response.status_code, _retry_after(response))
                if log.isEnabledFor(logging.DEBUG):
                    log.debug(
                        "%s %s -> %d (attempt %d, client-request-id %s)",
                        plan.method,
                        request.url.path,
                        response.status_code,
                        plan.attempt,
                        plan.client_request_id,
                    )
                step = plan.after_response(response)
            if step.done:
                return step.value
            refresh = step.refresh_token
            if step.delay > 0:
                self._sleep(step.delay)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.request("PATCH", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Any:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)

    def iterate(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        context: GraphCallContext | None = None,
        max_pages: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Items of ``value`` across pages, following ``@odata.nextLink``."""
        url: str | None = path
        query = params
        pages = 0
        while url:
            page = self.request("GET", url, params=query, headers=headers, context=context)
            pages += 1
            if not isinstance(page, dict):
                return
            yield from (item for item in page.get("value", []) if isinstance(item, dict))
            url = page.get("@odata.nextLink")
            query = None
            if max_pages is not None and pages >= max_pages:
                return

    def stream(
        self,
        path: str,
        sink: Callable[[bytes], None],
        *,
        headers: Mapping[str, str] | None = None,
        context: GraphCallContext | None = None,
        on_response: Callable[[int, Mapping[str, str]], None] | None = None,
    ) -> GraphResponse:
        """GET ``path`` and hand the body to ``sink`` chunk by chunk (never held in memory whole).

        Errors, retries and token refreshes are those of :meth:`request`; a ranged request (a ``Range``
        header) that Graph answers 416 returns that response (no body) instead of raising.
        ``on_response`` sees the status and headers before the first chunk. A body that
        breaks off is a :class:`TransportError` (not retried: the caller resumes with ``Range``)."""
        plan = self.plan("GET", path, headers=headers, context=context)
        refresh = False
        while True:
            if refresh:
                token = self.tokens.get_token(force_refresh=True, rejected=plan.last_token)
            else:
                token = self.tokens.get_token()
            request = plan.build(token)
            permit = self.limiter.acquire() if self.limiter is not None else None
            try:
                response = self._client.send(request, stream=True)
            except httpx.TransportError as exc:
                if permit is not None and self.limiter is not None:
                    self.limiter.release(permit, exc)
                step = plan.after_exception(exc)
            else:
                if permit is not None and self.limiter is not None:
                    self.limiter.release(permit, response.status_code, _retry_after(response))
                try:
                    if _streamed(plan, response):
                        if on_response is not None:
                            on_response(response.status_code, response.headers)
                        received = 0
                        try:
                            if response.status_code < 300:
                                for chunk in response.iter_bytes():
                                    received += len(chunk)
                                    sink(chunk)
                        except httpx.TransportError as exc:
                            raise _broken_off(plan, received, exc) from None
                        return GraphResponse(
                            response.status_code, None, response.headers, plan.client_request_id
                        )
                    response.read()
                    step = plan.after_response(response)
                finally:
                    response.close()
            refresh = step.refresh_token
            if step.delay > 0:
                self._sleep(step.delay)

    def close(self) -> None:
        self._client.close()


class AsyncGraphHttp(_GraphHttpBase):
    """Asynchronous Graph HTTP: the same plans as :class:`GraphHttp`, awaited."""

    def __init__(
        self,
        settings: GraphSettings,
        tokens: TokenSource,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        limiter: AdaptiveLimiter | None = None,
    ) -> None:
        import asyncio

        super().__init__(settings, tokens, retry, limiter)
        self._sleep = sleep or asyncio.sleep
        if transport is not None:
            self._client = httpx.AsyncClient(transport=transport, timeout=settings.timeout_seconds)
        else:
            self._client = httpx.AsyncClient(**_build_httpx_kwargs(settings))

    async def _token(self, refresh: bool, rejected: str | None) -> AccessToken:
        import asyncio

        if not refresh:
            cached = self.tokens.peek()
            if cached is not None:
                return cached
            return await asyncio.to_thread(self.tokens.get_token)
        return await asyncio.to_thread(lambda: self.tokens.get_token(True, rejected=rejected))

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        safe: bool | None = None,
        context: GraphCallContext | None = None,
        full: bool = False,
    ) -> Any:
        plan = self.plan(
            method, path, params=params, json=json, headers=headers, safe=safe, context=context, full=full
        )
        return await self.run(plan)

    async def run(self, plan: CallPlan) -> Any:
        refresh = False
        while True:
            token = await self._token(refresh, plan.last_token)
            request = plan.build(token)
            permit = await self.limiter.acquire_async(self._sleep) if self.limiter is not None else None
            try:
                response = await self._client.send(request)
            except httpx.TransportError as exc:
                if permit is not None and self.limiter is not None:
                    self.limiter.release(permit, exc)
                step = plan.after_exception(exc)
            else:
                if permit is not None and self.limiter is not None:
                    self.limiter.release(permit, response.status_code, _retry_after(response))
                step = plan.after_response(response)
            if step.done:
                return step.value
            refresh = step.refresh_token
            if step.delay > 0:
                await self._sleep(step.delay)

    async def get(self, path: str, **kwargs: Any) -> Any:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Any:
        return await self.request("POST", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> Any:
        return await self.request("PATCH", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> Any:
        return await self.request("PUT", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> Any:
        return await self.request("DELETE", path, **kwargs)

    async def iterate(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        context: GraphCallContext | None = None,
        max_pages: int | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        url: str | None = path
        query = params
        pages = 0
        while url:
            page = await self.request("GET", url, params=query, headers=headers, context=context)
            pages += 1
            if not isinstance(page, dict):
                return
            for item in page.get("value", []):
                if isinstance(item, dict):
                    yield item
            url = page.get("@odata.nextLink")
            query = None
            if max_pages is not None and pages >= max_pages:
                return

    async def stream(
        self,
        path: str,
        sink: Callable[[bytes], None] | Callable[[bytes], Awaitable[None]],
        *,
        headers: Mapping[str, str] | None = None,
        context: GraphCallContext | None = None,
        on_response: Callable[[int, Mapping[str, str]], None] | None = None,
    ) -> GraphResponse:
        """As :meth:`GraphHttp.stream`, awaited. An async ``sink`` is awaited for each chunk: the next
        one is read from Graph only once it returns (a slow reader slows the download, nothing piles up)."""
        plan = self.plan("GET", path, headers=headers, context=context)
        refresh = False
        while True:
            token = await self._token(refresh, plan.last_token)
            request = plan.build(token)
            permit = await self.limiter.acquire_async(self._sleep) if self.limiter is not None else None
            try:
                response = await self._client.send(request, stream=True)
            except httpx.TransportError as exc:
                if permit is not None and self.limiter is not None:
                    self.limiter.release(permit, exc)
                step = plan.after_exception(exc)
            else:
                if permit is not None and self.limiter is not None:
                    self.limiter.release(permit, response.status_code, _retry_after(response))
                try:
                    if _streamed(plan, response):
                        if on_response is not None:
                            on_response(response.status_code, response.headers)
                        received = 0
                        try:
                            if response.status_code < 300:
                                async for chunk in response.aiter_bytes():
                                    received += len(chunk)
                                    taken = sink(chunk)
                                    if inspect.isawaitable(taken):
                                        await taken
                        except httpx.TransportError as exc:
                            raise _broken_off(plan, received, exc) from None
                        return GraphResponse(
                            response.status_code, None, response.headers, plan.client_request_id
                        )
                    await response.aread()
                    step = plan.after_response(response)
                finally:
                    await response.aclose()
            refresh = step.refresh_token
            if step.delay > 0:
                await self._sleep(step.delay)

    async def aclose(self) -> None:
        await self._client.aclose()
