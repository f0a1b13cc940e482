"""The sandbox's signIn records: device details from the client, locations, event types, and the
user sign-in details the provisioning extension keeps (bounded, persisted)."""

from __future__ import annotations

import pytest

from meetgate_sandbox import directory_audit
from meetgate_sandbox.directory_audit import ProvisioningExtension, UserSignInDetail
from meetgate_sandbox.recording import TokenRecord
from meetgate_sandbox.sign_ins import device_detail, event_type, location_of


@pytest.mark.parametrize(
    ("user_agent", "client_os", "system", "browser"),
    [
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0.0.0 Safari/537.36",
            "",
            "Windows 10",
            "Chrome 120.0.0.0",
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
            "",
            "Linux",
            "Firefox 121.0",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 Version/17.2 Safari/605.1.15",
            "",
            "MacOs",
            "Safari 17.2",
        ),
        ("python-httpx/0.27.0", "linux", "Linux", "Rich Client"),
        ("", "win32", "Windows", "Rich Client"),
        ("", "", "", "Rich Client"),
    ],
)
def test_device_detail(user_agent, client_os, system, browser):
    detail = device_detail(user_agent, client_os)
    assert (detail["operatingSystem"], detail["browser"]) == (system, browser)
    assert detail["deviceId"] == "" and detail["isCompliant"] is None


def test_location_has_geo_coordinates():
    sydney = location_of("203.0.113.9")
    assert (sydney["city"], sydney["countryOrRegion"]) == ("Sydney", "AU")
    assert sydney["geoCoordinates"]["latitude"] < 0 < sydney["geoCoordinates"]["longitude"]
    assert location_of("10.1.2.3")["city"] == "Dublin"


def _record(grant_type: str, credential_type: str | None) -> TokenRecord:
    return TokenRecord(
        time="2026-01-01T00:00:00.000Z", tenant_id="t", app_id="a", success=True, grant_type=grant_type,
        credential_type=credential_type, key_id=None, thumbprint=None, error_code=None, error=None,
        client_ip="127.0.0.1", request_id="r", correlation_id="c",
    )  # fmt: skip


def test_event_types():
    assert event_type(_record("client_credentials", "certificate")) == "servicePrincipal"
    assert (
        event_type(_record("urn:ietf:params:oauth:grant-type:device_code", "delegated")) == "interactiveUser"
    )
    assert event_type(_record("refresh_token", "delegated")) == "nonInteractiveUser"


def test_user_sign_in_details_are_bounded_and_persisted(monkeypatch):
    monkeypatch.setattr(directory_audit, "MAX_USER_SIGN_INS", 3)
    ext = ProvisioningExtension()
    for n in range(5):
        ext.record_user_sign_in(UserSignInDetail(f"req-{n}", f"user-{n}", "agent", "linux"))
    assert list(ext.user_sign_ins) == ["req-2", "req-3", "req-4"]
    again = ProvisioningExtension.for_tenant(None, ext.to_dict())
    assert again.user_sign_ins == ext.user_sign_ins
    assert again.user_sign_ins["req-4"] == UserSignInDetail("req-4", "user-4", "agent", "linux")
    assert ProvisioningExtension.for_tenant(None, {"audits": []}).user_sign_ins == {}
