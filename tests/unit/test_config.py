from pathlib import Path

import pytest

from meetgate.config import SETTING_KEYS, ConfigError, load_profile, save_profile_values


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "meetgate.toml"
    path.write_text(text)
    return path


def test_missing_file_gives_defaults(tmp_path):
    profile = load_profile(tmp_path / "none.toml", environ={})
    assert profile.name == "default"
    assert profile.graph_url == "https://graph.microsoft.com"
    assert profile.tenant_id is None


def test_profile_selection_and_relative_paths(tmp_path):
    path = write(
        tmp_path,
        'default_profile = "a"\n[profiles.a]\ntenant_id = "a.example"\nprivate_key_path = "keys/k.pem"\n'
        '[profiles.b]\ntenant_id = "b.example"\n',
    )
    assert load_profile(path, environ={}).tenant_id == "a.example"
    assert load_profile(path, environ={}).private_key_path == tmp_path / "keys" / "k.pem"
    assert load_profile(path, "b", environ={}).tenant_id == "b.example"
    assert load_profile(path, environ={"MEETGATE_PROFILE": "b"}).tenant_id == "b.example"


def test_environment_overrides_file(tmp_path):
    path = write(tmp_path, '[profiles.default]\ntenant_id = "file.example"\ntimeout_seconds = 5\n')
    profile = load_profile(
        path, environ={"MEETGATE_TENANT_ID": "env.example", "MEETGATE_TIMEOUT_SECONDS": "2.5"}
    )
    assert profile.tenant_id == "env.example"
    assert profile.timeout_seconds == 2.5


def test_unknown_profile_is_refused_with_the_known_ones(tmp_path):
    path = write(tmp_path, '[profiles.a]\ntenant_id = "x.example"\n')
    with pytest.raises(ConfigError, match=r"profile 'zzz' is not in .* \(profiles: a\)"):
        load_profile(path, "zzz", environ={})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[profiles.default]\ntimeout_seconds = -1\n", "must be positive"),
        ('[profiles.default]\ngraph_url = "graph.microsoft.com"\n', "must be a URL"),
        ("[profiles.default\n", "not valid TOML"),
        ("[profiles.default]\ntenant_id = 3\n", "must be a string"),
    ],
)
def test_invalid_values_are_refused(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_profile(write(tmp_path, text), environ={})


def test_require_names_missing_keys_and_env_vars(tmp_path):
    profile = load_profile(tmp_path / "none.toml", environ={})
    with pytest.raises(ConfigError, match="tenant_id \\(or MEETGATE_TENANT_ID\\), client_id"):
        profile.require("tenant_id", "client_id")


def test_save_merges_values(tmp_path):
    path = tmp_path / "meetgate.toml"
    save_profile_values(path, "demo", {"tenant_id": "t.example", "client_id": "c"})
    save_profile_values(path, "demo", {"client_id": "c2", "ca_bundle": Path("/x/ca.pem")})
    profile = load_profile(path, environ={})
    assert (profile.name, profile.tenant_id, profile.client_id) == ("demo", "t.example", "c2")
    assert profile.ca_bundle == Path("/x/ca.pem")
    with pytest.raises(ConfigError):
        save_profile_values(path, "demo", {"private_key": "nope"})


def test_secrets_come_from_environment_only():
    assert "client_secret" not in SETTING_KEYS
    profile = load_profile("/nonexistent.toml", environ={})
    assert profile.client_secret({"MEETGATE_CLIENT_SECRET": "s3"}) == "s3"
    assert profile.passphrase({"MEETGATE_KEY_PASSPHRASE": "pw"}) == b"pw"


def test_a_missing_profile_or_file_is_named_when_keys_are_missing(tmp_path):
    # a typo in $MEETGATE_PROFILE or --config must not read as "this profile needs `setup app`"
    path = write(tmp_path, '[profiles.prod]\ntenant_id = "t.example"\nclient_id = "c"\n')
    profile = load_profile(path, environ={"MEETGATE_PROFILE": "prd"})
    with pytest.raises(ConfigError, match=r"has no profile 'prd' \(profiles: prod\)"):
        profile.require("tenant_id", "client_id")
    missing_file = load_profile(tmp_path / "meetgat.toml", environ={})
    with pytest.raises(ConfigError, match=r"there is no settings file .*meetgat\.toml"):
        missing_file.require("tenant_id")
    load_profile(path, environ={"MEETGATE_PROFILE": "prod"}).require("tenant_id", "client_id")


COMMENTED = """\
# meetgate settings for the Contoso rollout (kept by every command that writes this file)

[profiles.contoso]
tenant_id = "contoso.onmicrosoft.com"      # the tenant GUID or a verified domain
policy_file = "policy.toml"                # written in step 4
timeout_seconds = 30.0

# the monitoring reader, registered by hand
[profiles.reader]
tenant_id = 'contoso.onmicrosoft.com'
"""


def test_save_keeps_comments_order_quoting_and_other_profiles(tmp_path):
    path = tmp_path / "meetgate.toml"
    path.write_text(COMMENTED)
    save_profile_values(
        path,
        "contoso",
        {"tenant_id": "00000000-0000-0000-0000-000000000000", "client_id": "c", "policy_file": None},
    )
    text = path.read_text()
    assert text == (
        "# meetgate settings for the Contoso rollout (kept by every command that writes this file)\n"
        "\n"
        'default_profile = "contoso"\n'
        "\n"
        "[profiles.contoso]\n"
        'tenant_id = "00000000-0000-0000-0000-000000000000"      # the tenant GUID or a verified domain\n'
        "timeout_seconds = 30.0\n"
        'client_id = "c"\n'
        "\n"
        "# the monitoring reader, registered by hand\n"
        "[profiles.reader]\n"
        "tenant_id = 'contoso.onmicrosoft.com'\n"
    )
    # a second write changes only what it names
    save_profile_values(path, "reader", {"client_id": "r"})
    assert path.read_text() == text + 'client_id = "r"\n'
    assert load_profile(path, "reader", environ={}).client_id == "r"


def test_save_refuses_a_broken_file_and_leaves_it_alone(tmp_path):
    path = tmp_path / "meetgate.toml"
    path.write_text("[profiles.demo\ntenant_id = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        save_profile_values(path, "demo", {"client_id": "c"})
    assert path.read_text() == "[profiles.demo\ntenant_id = 1\n"
