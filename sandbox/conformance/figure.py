"""Print the conformance figure: documented examples the sandbox passes / examples on those pages.

Runs ``tests/sandbox/test_conformance.py`` (one sandbox, a few seconds) and counts its outcomes:
passed examples, known gaps (strict xfails), failures (a regression, or a gap fixed but still listed)
and the exclusions (skips, each with its reason, listed below the figure and not counted).

Usage (from the repository root, with the sandbox and meetgate importable)::

    PYTHONPATH=src:sandbox/src python sandbox/conformance/figure.py [--gaps] [--failures]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests" / "sandbox" / "test_conformance.py"
PREFIX = "test_documented_example["


class Outcomes:
    """A pytest plugin that keeps each example's outcome and message."""

    def __init__(self) -> None:
        self.by_example: dict[str, tuple[str, str]] = {}

    def pytest_runtest_logreport(self, report: Any) -> None:
        name = report.nodeid.split("::")[-1]
        if not name.startswith(PREFIX):
            return
        example = name[len(PREFIX) : -1]
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            if hasattr(report, "wasxfail"):
                outcome, message = "gap", str(report.wasxfail)
            elif report.skipped:
                outcome = "excluded"
                message = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else ""
                message = message.removeprefix("Skipped: ")
            else:
                crash = getattr(report.longrepr, "reprcrash", None)
                outcome, message = report.outcome, str(crash.message if crash else report.longrepr or "")
            self.by_example[example] = (outcome, message)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the conformance figure")
    parser.add_argument("--gaps", action="store_true", help="list the known gaps too")
    parser.add_argument("--failures", action="store_true", help="print each failure's message")
    args = parser.parse_args(argv)
    outcomes = Outcomes()
    code = pytest.main(
        [str(TESTS), "-q", "-p", "no:cacheprovider", "--no-header", "-o", "addopts=", "-rN"],
        plugins=[outcomes],
    )
    counts = Counter(outcome for outcome, _ in outcomes.by_example.values())
    counted = counts["passed"] + counts["gap"] + counts["failed"]
    print()
    print(
        f"Conformance: {counts['passed']} / {counted} documented examples pass "
        f"({counts['gap']} known gaps, {counts['failed']} failing, {counts['excluded']} excluded)"
    )
    for title, kind in (("Excluded", "excluded"), ("Known gaps", "gap"), ("Failing", "failed")):
        if kind == "gap" and not args.gaps:
            continue
        rows = sorted((e, m) for e, (o, m) in outcomes.by_example.items() if o == kind)
        if rows:
            print(f"\n{title}:")
            for example, message in rows:
                lines = message.splitlines() or [""]
                print(f"- {example}: " + ("\n    ".join(lines) if args.failures else lines[0]))
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
