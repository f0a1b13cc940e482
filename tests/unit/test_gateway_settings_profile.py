"""The gateway's limits in meetgate.toml (`gateway_*` keys): parsed and refused like every setting,
overridden by `meetgate serve`'s flags, and the ASGI factory that reads them."""

from __future__ import annotations

import pytest

from meetgate.composition.gateway import gateway_settings_from_profile
from meetgate.config import ConfigError, Profile, load_profile
from meetgate.gateway.settings import GatewaySettings


def _write(tmp_path, body: str):
    path = tmp_path / "meetgate.toml"
    path.write_text('default_profile = "p"\n[profiles.p]\ntenant_id = "contoso.onmicrosoft.com"\n' + body)
    return path


def test_the_profile_sets_the_limits_and_a_flag_overrides_them(tmp_path):
    path = _write(
        tmp_path,
        "gateway_default_consumer_rate_per_minute = 120\ngateway_organizer_daily_quota = 0\n"
        'gateway_graph_rate_per_second = 50.5\ngateway_forwarded_allow_ips = "10.0.0.0/8, 127.0.0.1"\n'
        "gateway_trust_forwarded_for = true\n",
    )
    profile = load_profile(path, environ={})
    settings = gateway_settings_from_profile(profile, organizer_rate_per_minute=7, graph_rate_per_second=None)
    assert settings.default_consumer_rate_per_minute == 120
    assert settings.organizer_daily_quota is None  # 0: no limit
    assert settings.organizer_rate_per_minute == 7  # the flag wins
    assert settings.graph_rate_per_second == 50.5  # a flag not given leaves the profile's value
    assert settings.trust_forwarded_for and settings.forwarded_allow_ips == ("10.0.0.0/8", "127.0.0.1/32")
    defaults = gateway_settings_from_profile(Profile())
    assert defaults.organizer_rate_per_minute == GatewaySettings().organizer_rate_per_minute


def test_environment_variables_set_them_too(tmp_path):
    path = _write(tmp_path, "")
    env = {"MEETGATE_GATEWAY_GRAPH_BURST": "40", "MEETGATE_GATEWAY_TRUST_FORWARDED_FOR": "no"}
    settings = gateway_settings_from_profile(load_profile(path, environ=env))
    assert settings.graph_burst == 40 and settings.trust_forwarded_for is False


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("gateway_organizer_rate_per_minute = -1", "must be 0 or more"),
        ("gateway_graph_burst = 2.5", "must be a whole number"),
        ('gateway_organizer_daily_quota = "lots"', "must be a whole number"),
        ('gateway_trust_forwarded_for = "maybe"', "must be true or false"),
    ],
)
def test_a_bad_value_is_refused_with_the_file_and_line(tmp_path, line, message):
    path = _write(tmp_path, f"{line}\n")
    with pytest.raises(ConfigError, match=message) as caught:
        load_profile(path, environ={})
    assert "line 4" in str(caught.value)


def test_untrusted_proxy_lists_are_refused_naming_both_sources(tmp_path):
    profile = load_profile(_write(tmp_path, 'gateway_forwarded_allow_ips = "not-an-ip"\n'), environ={})
    with pytest.raises(ConfigError, match="gateway_forwarded_allow_ips") as caught:
        gateway_settings_from_profile(profile)
    assert caught.value.remedy and "127.0.0.1,10.0.0.0/8" in caught.value.remedy


def test_the_profiles_artifacts_are_the_kinds_the_gateway_reads(tmp_path):
    path = _write(tmp_path, 'artifacts = ["attendance", "recordings"]\n')
    settings = gateway_settings_from_profile(load_profile(path, environ={}))
    assert settings.artifacts == ("attendance", "recordings")
    assert gateway_settings_from_profile(Profile()).artifacts == ()
