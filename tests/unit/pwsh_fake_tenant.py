"""`pwsh` for CLI tests without a sandbox server: the real stand-in interpreter over an in-memory
control API whose state lives in a JSON file (argv[1]); the remaining arguments are pwsh's."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pwsh_control_fake import InMemoryControl

from meetgate_sandbox.pwsh import main


class _Response:
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status_code, self._body, self.text = status, body, json.dumps(body)

    def json(self) -> dict[str, Any]:
        return self._body


class _TokenEndpoint:
    """Accepts a client assertion only when its x5t#S256 is the registered certificate's."""

    def __init__(self, thumbprint: str) -> None:
        self.thumbprint = thumbprint

    def post(self, url: str, data: dict[str, str]) -> _Response:
        import jwt

        header = jwt.get_unverified_header(data["client_assertion"])
        if header.get("x5t#S256") != self.thumbprint:
            return _Response(
                401, {"error_description": "AADSTS700027: Client assertion contains an invalid signature."}
            )
        return _Response(200, {"access_token": "x"})


def run(argv: list[str]) -> int:
    state_file = Path(argv[0])
    data = json.loads(state_file.read_text())
    control = InMemoryControl(users=0)
    control.users, control.policies, control.direct = data["users"], data["policies"], data["direct"]
    control.global_, control.group = data.get("global"), data.get("group", [])
    control.http = _TokenEndpoint(data.get("thumbprint", ""))  # type: ignore[attr-defined]
    try:
        return main(argv[1:], tenant_factory=lambda: control)  # type: ignore[arg-type,return-value]
    finally:
        data.update(
            users=control.users, policies=control.policies, direct=control.direct, group=control.group
        )
        data["global"] = control.global_
        state_file.write_text(json.dumps(data))


if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1:]))
