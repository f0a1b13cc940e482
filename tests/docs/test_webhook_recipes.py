"""The integrator guide's signature-verification recipes (Python and Node.js) accept what the gateway
signs — with one secret, and with two during a rotation — and refuse a tampered body, a wrong secret
and an old timestamp."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from meetgate.gateway.webhooks import signing

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "integrator-guide.md"
BODY = (
    b'{"id":"evt_1","type":"meeting.updated","time":"2030-12-01T08:15:02.120Z","meetingId":"mtg_1","data":{}}'
)


def _block(lang: str, needle: str) -> str:
    text = GUIDE.read_text(encoding="utf-8")
    for chunk in text.split(f"```{lang}\n")[1:]:
        code = chunk.split("```", 1)[0]
        if needle in code:
            return code
    raise AssertionError(f"no {lang} block with {needle} in the integrator guide")


def _cases() -> list[tuple[str, bytes, str, bool]]:
    old, new = signing.new_secret(), signing.new_secret()
    now = int(time.time())
    one = signing.sign([new], now, BODY)
    both = signing.sign([new, old], now, BODY)
    stale = signing.sign([new], now - 400, BODY)
    return [
        (one, BODY, new, True),
        (both, BODY, old, True),
        (both, BODY, new, True),
        (one, BODY.replace(b"mtg_1", b"mtg_2"), new, False),
        (one, BODY, old, False),
        (stale, BODY, new, False),
        ("v1=" + one.split("v1=")[1], BODY, new, False),
    ]


def test_the_python_recipe():
    namespace: dict[str, object] = {}
    exec(compile(_block("python", "def verify_meetgate_signature"), "guide", "exec"), namespace)
    verify = namespace["verify_meetgate_signature"]
    for header, body, secret, expected in _cases():
        assert verify(header, body, secret) is expected, (header, expected)  # type: ignore[operator]


def test_the_node_recipe(tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    (tmp_path / "verify.js").write_text(_block("js", "verifyMeetgateSignature"), encoding="utf-8")
    cases = [{"header": h, "body": b.decode(), "secret": s, "expected": e} for h, b, s, e in _cases()]
    (tmp_path / "cases.json").write_text(json.dumps(cases), encoding="utf-8")
    (tmp_path / "run.js").write_text(
        'const { verifyMeetgateSignature } = require("./verify.js");\n'
        'const cases = require("./cases.json");\n'
        "console.log(JSON.stringify(cases.map((c) => verifyMeetgateSignature(c.header, Buffer.from(c.body), c.secret))));\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [node, "run.js"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(done.stdout) == [c["expected"] for c in cases]
