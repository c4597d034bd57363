"""Every case of the JSON Logic compat-tables suites, one test per case.

The suites live outside the repository, in ``<repo>/../shared/conformance/jsonlogic`` (or
``$AUTOMATE_SHARED_DIR/conformance/jsonlogic``). A missing folder is a failure, never a skip:
the rules engine is only correct as far as these suites say it is.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from automate_core.rules.jsonlogic import JSONLogicError, apply

#: json-logic-qubit passes 759 of these; we must pass them all.
EXPECTED_MINIMUM_CASES = 1138
_NO_RESULT = object()


def suites_dir() -> Path:
    shared = os.environ.get("AUTOMATE_SHARED_DIR")
    base = Path(shared) if shared else Path(__file__).resolve().parents[3].parent / "shared"
    return base / "conformance" / "jsonlogic"


@dataclass(frozen=True)
class ConformanceCase:
    suite: str
    index: int
    description: str
    rule: Any
    data: Any
    result: Any
    error: Any

    @property
    def test_id(self) -> str:
        return f"{self.suite}#{self.index} {self.description}"


def load_cases(root: Path) -> list[ConformanceCase]:
    """Cases are the objects in each suite's top-level array; strings there are headings."""
    cases = []
    for path in sorted(root.rglob("*.json")):
        if path.name == "index.json":
            continue
        suite = path.relative_to(root).as_posix()
        entries = json.loads(path.read_text(encoding="utf-8"))
        for index, entry in enumerate(item for item in entries if isinstance(item, dict)):
            cases.append(
                ConformanceCase(
                    suite=suite,
                    index=index,
                    description=str(entry.get("description", "")),
                    rule=entry["rule"],
                    data=entry.get("data"),
                    result=entry.get("result", _NO_RESULT),
                    error=entry.get("error"),
                )
            )
    return cases


SUITES = suites_dir()
CASES = load_cases(SUITES) if SUITES.is_dir() else []
MISSING_SUITES = (
    f"JSON Logic conformance suites not found at {SUITES}. They ship in the shared/ folder next "
    "to the repository; point AUTOMATE_SHARED_DIR at that shared/ folder if it lives elsewhere."
)


def same_json(expected: Any, actual: Any) -> bool:
    """JSON equality that tells ``true`` from ``1`` (Python's ``True == 1`` would not);
    ``2`` and ``2.0`` are the same JSON number."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if expected is None or actual is None:
        return expected is actual
    if isinstance(expected, int | float):
        return isinstance(actual, int | float) and expected == actual
    if isinstance(expected, str):
        return isinstance(actual, str) and expected == actual
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(same_json(e, a) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and expected.keys() == actual.keys()
            and all(same_json(expected[key], actual[key]) for key in expected)
        )
    return False


def _params() -> list[Any]:
    if not CASES:
        return [pytest.param(None, id="conformance-suites-missing")]
    return [pytest.param(case, id=case.test_id) for case in CASES]


@pytest.mark.parametrize("case", _params())
def test_conformance_case(case: ConformanceCase | None) -> None:
    if case is None:
        pytest.fail(MISSING_SUITES)
    if case.error is not None:
        with pytest.raises(JSONLogicError) as raised:
            apply(case.rule, case.data)
        assert raised.value.type == case.error["type"], (
            f"rule {json.dumps(case.rule)} raised {raised.value.type!r}"
        )
        return
    assert case.result is not _NO_RESULT, f"{case.test_id} has neither result nor error"
    actual = apply(case.rule, case.data)
    assert same_json(case.result, actual), (
        f"rule {json.dumps(case.rule)} with data {json.dumps(case.data)}: "
        f"expected {json.dumps(case.result)}, got {actual!r}"
    )


def test_all_suite_cases_are_collected() -> None:
    assert SUITES.is_dir(), MISSING_SUITES
    assert len(CASES) >= EXPECTED_MINIMUM_CASES, (
        f"only {len(CASES)} conformance cases found under {SUITES}"
    )
