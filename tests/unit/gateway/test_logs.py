"""The gateway's JSON log lines: one object each, secrets redacted, no terminal colour codes."""

from __future__ import annotations

import io
import json
import logging

from meetgate.gateway.logs import configure_logging


def test_uvicorns_coloured_copy_of_the_message_is_left_out():
    stream = io.StringIO()
    configure_logging("INFO", stream)
    logging.getLogger("uvicorn.error").info(
        "Started server process [%d]",
        42,
        extra={"color_message": "Started server process [\x1b[36m%d\x1b[0m]"},
    )
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert line["msg"] == "Started server process [42]"
    assert "color_message" not in line and "\x1b" not in stream.getvalue()


def test_secret_extras_are_redacted():
    stream = io.StringIO()
    log = configure_logging("INFO", stream)
    log.info("call", extra={"authorization": "Bearer abc", "consumer": "crm"})
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert line["authorization"] == "***" and line["consumer"] == "crm"
