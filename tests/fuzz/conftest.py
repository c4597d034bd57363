"""The fuzz run's summary line: operations, test cases generated, passed and failed (the
Schemathesis pytest plugin reports subtests only)."""

from __future__ import annotations

from collections import Counter
from typing import Any

#: ``(operation label, "passed" | "failed")`` -> test cases run, over the whole session.
CASES: Counter[tuple[str, str]] = Counter()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not CASES:
        return
    operations = {label for label, _ in CASES}
    failed = {label for (label, outcome) in CASES if outcome == "failed"}
    passed = sum(n for (_, outcome), n in CASES.items() if outcome == "passed")
    terminalreporter.write_line(
        f"Schemathesis: {len(operations)} operations, {CASES.total()} test cases generated, "
        f"{passed} passed, {CASES.total() - passed} failed "
        f"({len(failed)} operations with failures)"
    )
