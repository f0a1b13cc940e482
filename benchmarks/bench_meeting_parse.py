"""CPU to read one onlineMeeting answer into ``GraphOnlineMeeting``, beside an earlier revision's models.

The client reads every documented shape of the resource (keys in either casing, e.g. the docs'
``audioConferencing.ConferenceId``). This measures what that costs where it runs on every answer:
the sandbox's own rendering of a created meeting is parsed N times by this tree's models and, in the
same run and interleaved, by the models of ``--against REV`` (loaded from git), and by this tree's
models on the same answer with one key in the other casing (the slow path)::

    .venv/bin/python benchmarks/bench_meeting_parse.py --against 468e19c
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from meetgate.graph import models
from meetgate_sandbox.meetings import MeetingStore
from meetgate_sandbox.meetings_model import Organizer
from meetgate_sandbox.meetings_render import render_meeting


def _models_at(revision: str) -> Any:
    source = subprocess.run(
        ["git", "show", f"{revision}:src/meetgate/graph/models.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "models_then.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("models_then", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["models_then"] = module
    spec.loader.exec_module(module)
    return module


def _answer() -> dict[str, Any]:
    store = MeetingStore("tenant-id", seed=1)
    body = {
        "subject": "Interview",
        "startDateTime": "2026-12-08T10:00:00Z",
        "endDateTime": "2026-12-08T11:00:00Z",
        "participants": {"attendees": [{"upn": f"a{i}@contoso.test", "role": "attendee"} for i in range(3)]},
    }
    organizer = Organizer("0b6a5e1c-6c2e-4f1e-9d7c-3f1f3a1b2c3d", "org@contoso.test", "Organizer")
    meeting = store.create(organizer, body, now=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    return render_meeting(meeting, "tenant-id")


def _cpu_us(model: Any, answer: dict[str, Any], count: int) -> float:
    started = time.process_time()
    for _ in range(count):
        model.model_validate(answer)
    return (time.process_time() - started) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", default="HEAD", help="git revision whose models are the peer")
    parser.add_argument("--count", type=int, default=5000)
    args = parser.parse_args()
    then = _models_at(args.against)
    answer = _answer()
    other_casing = copy.deepcopy(answer)
    other_casing["audioConferencing"]["ConferenceId"] = other_casing["audioConferencing"].pop("conferenceId")
    rows: dict[str, list[float]] = {
        f"models at {args.against}": [],
        "this tree": [],
        "this tree, ConferenceId": [],
    }
    for _ in range(3):  # interleaved, best of three
        rows[f"models at {args.against}"].append(_cpu_us(then.GraphOnlineMeeting, answer, args.count))
        rows["this tree"].append(_cpu_us(models.GraphOnlineMeeting, answer, args.count))
        rows["this tree, ConferenceId"].append(_cpu_us(models.GraphOnlineMeeting, other_casing, args.count))
    print(f"load average {os.getloadavg()[0]:.2f}; {args.count} parses of one created meeting's answer")
    for name, values in rows.items():
        print(f"  {name:<32} {min(values):6.1f} µs CPU per answer")


if __name__ == "__main__":
    main()
