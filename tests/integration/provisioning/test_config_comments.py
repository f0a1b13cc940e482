"""Every command that writes meetgate.toml edits it in place: the admin guide's own example file,
with its comments, survives `setup app`, `cert new --use`, `cert upload` and `cert rotate`."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from meetgate.cli.main import app
from meetgate.config import load_profile
from meetgate_sandbox.control import SandboxControl

GUIDE = Path(__file__).parents[3] / "docs" / "admin-guide.md"


def _guide_profile() -> str:
    """The admin guide's first meetgate.toml example (the one with `default_profile`)."""
    blocks = re.findall(r"```toml\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.S)
    example = next(b for b in blocks if "default_profile" in b and "[profiles." in b)
    assert "#" in example, "the guide's example should show comments"
    return example


def _comments(text: str) -> list[str]:
    return [line[line.index("#") :] for line in text.splitlines() if "#" in line]


def test_the_guides_commented_settings_file_survives_every_writing_command(sandbox, tmp_path):
    info = sandbox.info
    control = SandboxControl(info.control_url, info.ca_bundle)
    tenant = control.create_tenant(users=3)
    example = _guide_profile()
    name = re.search(r'default_profile = "([^"]+)"', example).group(1)
    example = re.sub(r'tenant_id = "[^"]+"', f'tenant_id = "{tenant["domain"]}"', example)
    config = tmp_path / "meetgate.toml"
    config.write_text(
        "# written by hand; meetgate must keep this line\n\n"
        + example
        + "# the sandbox stands in for Entra and Graph\n"
        + f'authority_url = "{info.authority_url}"  # sandbox authority\n'
        + f'graph_url = "{info.graph_url}"\n'
        + f"ca_bundle = '{info.ca_bundle}'  # the sandbox CA\n"
        + "\n# a second profile, untouched\n[profiles.other]\ntenant_id = 'other.example'  # keep me\n"
    )
    expected = _comments(config.read_text())
    assert len(expected) >= 6

    def run(*args: str) -> dict:
        result = CliRunner().invoke(app, ["--config", str(config), *args, "--json"], env={})
        assert result.exit_code == 0, (args, result.output, result.exception)
        return json.loads(result.stdout)

    try:
        for command in (
            ("setup", "app"),
            ("cert", "new", "--out", str(tmp_path / "keys"), "--use"),
            ("cert", "upload"),
            ("cert", "rotate", "--name", "second"),
        ):
            run(*command)
            text = config.read_text()
            assert _comments(text) == expected, (command, text)
            assert "ca_bundle = '" in text and "tenant_id = 'other.example'" in text, (command, text)
        profile = load_profile(config, environ={})
        assert profile.name == name and profile.tenant_id == tenant["tenantId"]
        assert profile.client_id and profile.certificate_path.name == "second.pem"
    finally:
        control.close()
