"""A small httpx client of the sandbox's control API (tests, the demo and the CLI use it).

::

    control = SandboxControl(info.control_url, info.ca_bundle)
    tenant = control.create_tenant(users=10)
    app = control.register_app(tenant["tenantId"], "Booking", certificate_pem=pem, roles=["User.Read.All"])
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from meetgate.errors import MeetgateError


class SandboxControlError(MeetgateError, RuntimeError):
    """The control API answered an error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"sandbox control API: {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def ssl_context(ca_bundle: Path | str, *, system_cas: bool = True) -> ssl.SSLContext:
    """Trusts the sandbox CA (plus the system's CAs unless ``system_cas`` is false)."""
    context = ssl.create_default_context() if system_cas else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if not system_cas:
        context.check_hostname = True
        context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cafile=str(ca_bundle))
    return context


def _validity(start: str | None, end: str | None) -> dict[str, Any]:
    """The ``startDateTime`` / ``endDateTime`` fields of a credential request, those that are given."""
    body: dict[str, Any] = {}
    if start:
        body["startDateTime"] = start
    if end:
        body["endDateTime"] = end
    return body


class SandboxControl:
    def __init__(
        self,
        control_url: str,
        ca_bundle: Path | str,
        *,
        timeout: float = 15.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.control_url = control_url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.control_url,
            verify=ssl_context(ca_bundle, system_cas=False),
            timeout=timeout,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"SandboxControl({self.control_url!r})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> SandboxControl:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def request(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        """Any control call; returns the decoded JSON (None for 204)."""
        response = self._client.request(method, path, json=json, params=params)
        if response.status_code >= 400:
            try:
                error = response.json().get("error", {})
                code, message = str(error.get("code", "")), str(error.get("message", response.text))
            except ValueError:
                code, message = "", response.text
            raise SandboxControlError(response.status_code, code, message)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # --- tenants ---------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/health")
        return result

    def create_tenant(
        self, *, users: int = 50, domain: str | None = None, seed: int | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"users": users}
        if domain is not None:
            body["domain"] = domain
        if seed is not None:
            body["seed"] = seed
        result: dict[str, Any] = self.request("POST", "/tenants", json=body)
        return result

    def tenant(self, tenant_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/tenants/{tenant_id}")
        return result

    # --- apps ------------------------------------------------------------------------------------

    def register_app(
        self,
        tenant_id: str,
        display_name: str,
        *,
        certificate_pem: str | bytes | None = None,
        with_secret: bool = False,
        roles: Iterable[str] = (),
    ) -> dict[str, Any]:
        """``{"appId","objectId","servicePrincipalId", "clientSecret"?}`` of a new consented app."""
        body: dict[str, Any] = {"displayName": display_name, "withSecret": with_secret, "roles": list(roles)}
        if certificate_pem is not None:
            body["certificatePem"] = (
                certificate_pem.decode("ascii") if isinstance(certificate_pem, bytes) else certificate_pem
            )
        result: dict[str, Any] = self.request("POST", f"/tenants/{tenant_id}/apps", json=body)
        return result

    def app(self, tenant_id: str, app_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/tenants/{tenant_id}/apps/{app_id}")
        return result

    def update_app(
        self,
        tenant_id: str,
        app_id: str,
        *,
        account_enabled: bool | None = None,
        roles: Iterable[str] = (),
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"roles": list(roles)}
        if account_enabled is not None:
            body["accountEnabled"] = account_enabled
        result: dict[str, Any] = self.request("PATCH", f"/tenants/{tenant_id}/apps/{app_id}", json=body)
        return result

    def add_certificate(
        self,
        tenant_id: str,
        app_id: str,
        certificate_pem: str | bytes,
        *,
        start: str | None = None,
        end: str | None = None,
    ) -> dict[str, Any]:
        """Adds a key credential; ``start``/``end`` (ISO 8601) override the certificate's own dates."""
        pem = certificate_pem.decode("ascii") if isinstance(certificate_pem, bytes) else certificate_pem
        body: dict[str, Any] = {"certificatePem": pem, **_validity(start, end)}
        result: dict[str, Any] = self.request(
            "POST", f"/tenants/{tenant_id}/apps/{app_id}/certificates", json=body
        )
        return result

    def add_secret(
        self, tenant_id: str, app_id: str, *, start: str | None = None, end: str | None = None
    ) -> dict[str, Any]:
        """A new client secret; ``secretText`` in the answer is the only copy."""
        body = _validity(start, end)
        result: dict[str, Any] = self.request(
            "POST", f"/tenants/{tenant_id}/apps/{app_id}/secrets", json=body
        )
        return result

    def delegated_token(
        self, tenant_id: str, user: str, app_id: str, scopes: Iterable[str] = ("User.Read",)
    ) -> str:
        result = self.request(
            "POST",
            f"/tenants/{tenant_id}/users/{user}/delegated-token",
            json={"appId": app_id, "scopes": list(scopes)},
        )
        return str(result["access_token"])

    # --- policies (served by the policy engine) --------------------------------------------------

    def create_policy(
        self, tenant_id: str, identity: str, app_ids: Iterable[str], description: str = ""
    ) -> dict[str, Any]:
        body = {"identity": identity, "appIds": list(app_ids), "description": description}
        result: dict[str, Any] = self.request("POST", f"/tenants/{tenant_id}/policies", json=body)
        return result

    def policies(self, tenant_id: str) -> Any:
        """``{"value": [{"identity","policyName","appIds","description","policyId"}]}``."""
        return self.request("GET", f"/tenants/{tenant_id}/policies")

    def policy(self, tenant_id: str, identity: str) -> Any:
        return self.request("GET", f"/tenants/{tenant_id}/policies/{identity}")

    def update_policy(self, tenant_id: str, identity: str, **fields: Any) -> Any:
        return self.request("PATCH", f"/tenants/{tenant_id}/policies/{identity}", json=fields)

    def delete_policy(self, tenant_id: str, identity: str) -> Any:
        return self.request("DELETE", f"/tenants/{tenant_id}/policies/{identity}")

    def grant_policy(
        self,
        tenant_id: str,
        policy_name: str | None,
        *,
        user: str | None = None,
        group: str | None = None,
        rank: int | None = None,
        global_: bool = False,
    ) -> Any:
        """Grant (or with ``policy_name=None`` revoke) to a user, a group with a rank, or the tenant."""
        body: dict[str, Any] = {"policyName": policy_name}
        if user is not None:
            body["user"] = user
        if group is not None:
            body["group"] = group
            if rank is not None:
                body["rank"] = rank
        if global_:
            body["global"] = True
        return self.request("POST", f"/tenants/{tenant_id}/policy-grants", json=body)

    def policy_grants(self, tenant_id: str) -> Any:
        return self.request("GET", f"/tenants/{tenant_id}/policy-grants")

    def user_policy(self, tenant_id: str, user: str) -> Any:
        return self.request("GET", f"/tenants/{tenant_id}/users/{user}/policy")

    # --- server-wide -----------------------------------------------------------------------------

    def scope_mailboxes(
        self,
        tenant_id: str,
        app_id: str,
        service_principal_id: str,
        users: Sequence[str],
        *,
        scope: str = "meetgate organizers",
        attribute: str = "CustomAttribute7",
        tag: str = "meetgate",
        role: str = "Application Calendars.ReadWrite",
    ) -> dict[str, Any]:
        """What an Exchange administrator does to give an app calendar access to some mailboxes only
        (RBAC for Applications): tag the mailboxes of ``users`` (ids or UPNs) in ``attribute``, point
        at the app's service principal, a management scope over the tag, and one role assignment.
        Returns the role assignment."""
        base = f"/tenants/{tenant_id}/exchange"
        for user in users:
            self.request("PATCH", f"{base}/mailboxes/{user}", json={"customAttributes": {attribute: tag}})
        self.request(
            "POST", f"{base}/service-principals", json={"appId": app_id, "objectId": service_principal_id}
        )
        self.request(
            "POST",
            f"{base}/management-scopes",
            json={"name": scope, "recipientRestrictionFilter": f"{attribute} -eq '{tag}'"},
        )
        assignment: dict[str, Any] = self.request(
            "POST",
            f"{base}/role-assignments",
            json={"role": role, "app": app_id, "customResourceScope": scope},
        )
        return assignment

    def set_faults(
        self,
        *,
        error_rate: float = 0.0,
        latency_ms: float = 0.0,
        drop_rate: float = 0.0,
        lost_answer_rate: float = 0.0,
        throttle_rps: float | None = None,
        paths: str = "graph",
        seed: int | None = None,
    ) -> dict[str, Any]:
        """Replaces the server-wide faults (anything not given is off)."""
        body = {
            "errorRate": error_rate,
            "latencyMs": latency_ms,
            "dropRate": drop_rate,
            "lostAnswerRate": lost_answer_rate,
            "throttleRps": throttle_rps,
            "paths": paths,
            "seed": seed,
        }
        result: dict[str, Any] = self.request("PUT", "/faults", json=body)
        return result

    def clear_faults(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("PUT", "/faults", json={})
        return result

    def faults(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/faults")
        return result

    def set_settings(
        self,
        *,
        policy_delay_seconds: float | None = None,
        access_token_lifetime_seconds: int | None = None,
        clock_offset_seconds: float | None = None,
        policy_error_variant: str | None = None,
        upn_in_path: str | None = None,
        user_configuration_shape: str | None = None,
        attendee_without_upn: str | None = None,
        profile: str | None = None,
        time_compression: float | None = None,
        profile_seed: int | None = None,
        throttle_scale: float | None = None,
    ) -> dict[str, Any]:
        """Server-wide settings; the meeting switches and the profiles (``fast``, ``realistic``) are
        described in docs/sandbox.md. Only what is given changes."""
        body: dict[str, Any] = {}
        if policy_delay_seconds is not None:
            body["policyDelaySeconds"] = policy_delay_seconds
        if access_token_lifetime_seconds is not None:
            body["accessTokenLifetimeSeconds"] = access_token_lifetime_seconds
        if clock_offset_seconds is not None:
            body["clockOffsetSeconds"] = clock_offset_seconds
        for key, value in (
            ("policyErrorVariant", policy_error_variant),
            ("upnInPath", upn_in_path),
            ("userConfigurationShape", user_configuration_shape),
            ("attendeeWithoutUpn", attendee_without_upn),
            ("profile", profile),
            ("timeCompression", time_compression),
            ("profileSeed", profile_seed),
            ("throttleScale", throttle_scale),
        ):
            if value is not None:
                body[key] = value
        result: dict[str, Any] = self.request("PUT", "/settings", json=body)
        return result

    def realistic(
        self,
        *,
        seed: int | None = None,
        time_compression: float = 300.0,
        throttle_scale: float = 1.0,
    ) -> dict[str, Any]:
        """Switch the server to the realistic profile: documented propagation delays (divided by
        ``time_compression``), token lifetimes and throttling limits (times ``throttle_scale``);
        ``seed`` makes its draws reproducible (None: unpredictable)."""
        body = {
            "profile": "realistic",
            "timeCompression": time_compression,
            "profileSeed": seed,
            "throttleScale": throttle_scale,
        }
        result: dict[str, Any] = self.request("PUT", "/settings", json=body)
        return result

    def fast(self) -> dict[str, Any]:
        """Back to the fast profile (the settings ``policyDelaySeconds`` etc. apply again)."""
        return self.set_settings(profile="fast")

    def settings(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/settings")
        return result

    # --- meeting sessions and artifacts -----------------------------------------------------------

    def hold_meeting(
        self,
        tenant_id: str,
        meeting_id: str,
        participants: Iterable[Mapping[str, Any]],
        *,
        start: str | float | None = None,
        end: str | float | None = None,
        transcript: bool = True,
        recording: bool = True,
        artifact_delay_seconds: float = 0,
        transcript_lines: Iterable[Mapping[str, str]] | None = None,
    ) -> dict[str, Any]:
        """Hold the meeting once: ``participants`` ({"user"} or {"displayName","email"}, "role",
        "join"/"leave" or "intervals") join and leave, the meeting ends (docs/sandbox.md, "Meeting
        artifacts"). Returns the session with its report, transcript and recording ids."""
        body: dict[str, Any] = {
            "participants": [dict(p) for p in participants],
            "transcript": transcript,
            "recording": recording,
            "artifactDelaySeconds": artifact_delay_seconds,
        }
        if start is not None:
            body["start"] = start
        if end is not None:
            body["end"] = end
        if transcript_lines is not None:
            body["transcriptLines"] = [dict(line) for line in transcript_lines]
        result: dict[str, Any] = self.request(
            "POST", f"/tenants/{tenant_id}/meetings/{meeting_id}/sessions", json=body
        )
        return result

    def meeting_sessions(self, tenant_id: str, meeting_id: str) -> list[dict[str, Any]]:
        return list(self.request("GET", f"/tenants/{tenant_id}/meetings/{meeting_id}/sessions")["value"])

    def set_artifact_settings(self, tenant_id: str, **switches: Any) -> dict[str, Any]:
        """``graphTranscriptAccess``, ``speakerAttribution``, ``standaloneError``, ``notReady``."""
        result: dict[str, Any] = self.request(
            "PATCH", f"/tenants/{tenant_id}/meeting-artifacts/settings", json=switches
        )
        return result

    # --- logs ------------------------------------------------------------------------------------

    def request_log(
        self, tenant_id: str, *, app_id: str | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit}
        if app_id:
            params["appId"] = app_id
        return list(self.request("GET", f"/tenants/{tenant_id}/log/requests", params=params)["value"])

    def token_log(
        self, tenant_id: str, *, app_id: str | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit}
        if app_id:
            params["appId"] = app_id
        return list(self.request("GET", f"/tenants/{tenant_id}/log/tokens", params=params)["value"])

    # --- change notifications --------------------------------------------------------------------

    def subscriptions(self, tenant_id: str) -> list[dict[str, Any]]:
        """Every live Graph subscription of the tenant (any app's)."""
        return list(self.request("GET", f"/tenants/{tenant_id}/subscriptions")["value"])

    def notification_settings(self, tenant_id: str, **changes: Any) -> dict[str, Any]:
        """The tenant's delivery settings; camelCase ``changes`` (``allowHttpLoopback=True``,
        ``retryBaseSeconds=0.1`` …) are applied first when given."""
        if changes:
            result: dict[str, Any] = self.request(
                "PUT", f"/tenants/{tenant_id}/subscriptions/settings", json=changes
            )
        else:
            result = self.request("GET", f"/tenants/{tenant_id}/subscriptions/settings")
        return result

    def deliveries(self, tenant_id: str, subscription_id: str) -> list[dict[str, Any]]:
        """The notifications and lifecycle events sent for a subscription, with each attempt."""
        path = f"/tenants/{tenant_id}/subscriptions/{subscription_id}/deliveries"
        return list(self.request("GET", path)["value"])

    def send_lifecycle_event(self, tenant_id: str, subscription_id: str, event: str) -> dict[str, Any]:
        """Send ``reauthorizationRequired``, ``subscriptionRemoved`` (which removes the subscription)
        or ``missed`` to the subscription's lifecycleNotificationUrl; the delivery record."""
        path = f"/tenants/{tenant_id}/subscriptions/{subscription_id}/lifecycle"
        result: dict[str, Any] = self.request("POST", path, json={"event": event})
        return result

    def expire_subscription(self, tenant_id: str, subscription_id: str) -> None:
        """Let a subscription reach its expirationDateTime now (it stops; Graph deletes it)."""
        self.request("POST", f"/tenants/{tenant_id}/subscriptions/{subscription_id}/expire")

    def publish_change(
        self,
        tenant_id: str,
        *,
        change_type: str,
        resource: str,
        topics: Iterable[str],
        odata_type: str = "#Microsoft.Graph.entity",
        resource_data: dict[str, Any] | None = None,
        organizer_id: str | None = None,
    ) -> None:
        """Publish a change as a route module does (subscriptions watching one of ``topics`` get it)."""
        body = {
            "changeType": change_type,
            "resource": resource,
            "topics": list(topics),
            "odataType": odata_type,
            "resourceData": resource_data or {},
            "organizerId": organizer_id,
        }
        self.request("POST", f"/tenants/{tenant_id}/changes", json=body)
