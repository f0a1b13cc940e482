"""Structured JSON logs: one object per line, with the request id. Secrets are never passed in."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any

LOGGER_NAME = "meetgate.gateway"
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
#: extras other libraries attach that are no use in JSON (uvicorn's copy of the message with ANSI colours)
_DROP = {"color_message"}
_REDACT = {"authorization", "api_key", "x-api-key", "token", "access_token", "client_secret", "password"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key in _STANDARD or key in _DROP or key.startswith("_"):
                continue
            data[key] = "***" if key.lower() in _REDACT else value
        if record.exc_info and record.exc_info[0] is not None:
            data["error"] = record.exc_info[0].__name__
        return json.dumps(data, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO", stream: Any = None) -> logging.Logger:
    """Send the gateway's and uvicorn's logs to ``stream`` (stderr) as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in (LOGGER_NAME, "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
    logging.getLogger("uvicorn.access").disabled = True  # the gateway logs each request itself
    return logging.getLogger(LOGGER_NAME)
