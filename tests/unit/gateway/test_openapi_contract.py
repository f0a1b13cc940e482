"""The gateway's OpenAPI document is its contract with consuming apps: any change to it — a path, a
status, a schema, a description — must be deliberate. To accept one, regenerate the snapshot with
``MEETGATE_UPDATE_OPENAPI=1 pytest tests/unit/gateway/test_openapi_contract.py`` and review the diff."""

from __future__ import annotations

import json
import os
from pathlib import Path

from gateway_kit import make_gateway

SNAPSHOT = Path(__file__).with_name("openapi.json")


def test_the_openapi_document_is_unchanged(tmp_path):
    document = json.dumps(make_gateway(tmp_path).client.app.openapi(), indent=1, sort_keys=True) + "\n"
    if os.environ.get("MEETGATE_UPDATE_OPENAPI") == "1":
        SNAPSHOT.write_text(document)
    assert document == SNAPSHOT.read_text(), (
        "the gateway's OpenAPI document changed: if that is intended, regenerate "
        "tests/unit/gateway/openapi.json (see this module's docstring) and say so in docs/gateway.md"
    )
