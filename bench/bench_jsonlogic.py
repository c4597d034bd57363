"""JSON Logic: our compiled engine against json-logic-qubit, same rules, same data, same process.

The workload is (1) workflow-trigger conditions over event payloads, the way the rules app uses
the engine, and (2) every conformance case both engines answer correctly (json-logic-qubit
passes about 760 of the 1138), so neither side is timed on rules it gets wrong. Before timing,
the bench checks that both engines return the same results on the whole workload.

Three ways of evaluating are timed in interleaved rounds, with the garbage collector off:

* ``compiled``: ``compile(rule)`` once, then ``f(data)``: how the runtime evaluates a published
  RuleSpec version against each incoming event.
* ``apply``: ``apply(rule, data)``: the one-call API; every call pays for the canonical JSON
  key of the rule before the cache hit.
* ``peer``: ``json_logic.jsonLogic(rule, data)``, the peer's only API.

Run: ``.venv/bin/python bench/bench_jsonlogic.py [--rounds 9] [--evaluations 40000]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from automate_core.rules import jsonlogic  # noqa: E402

try:
    from json_logic import jsonLogic as peer_apply
except ImportError:  # pragma: no cover - the message is the point
    sys.exit("json-logic-qubit is not installed: .venv/bin/pip install 'json-logic-qubit>=0.9.1'")

Case = tuple[Any, Any]  # (rule, data)


def _event(kind: str, **payload: Any) -> dict[str, Any]:
    return {
        "event": {"type": kind, "source": "shop", "payload": payload},
        "tenant": {"plan": payload.pop("plan", "pro"), "region": "eu"},
    }


EVENTS: list[dict[str, Any]] = [
    _event(
        "order.created",
        total=250,
        currency="EUR",
        country="DE",
        customer={"tier": "enterprise", "email": "ops@example.com", "orders": 14},
        items=[
            {"sku": "GPU-A100", "category": "gpu", "qty": 2, "price": 90.0},
            {"sku": "CBL-01", "category": "cable", "qty": 5, "price": 4.0},
            {"sku": "SSD-2T", "category": "storage", "qty": 1, "price": 50.0},
        ],
        subject="Urgent: refund for order 1042",
        hour=14,
        tags=["b2b", "priority"],
    ),
    _event(
        "order.created",
        total=40,
        currency="USD",
        country="US",
        customer={"tier": "free", "email": "", "orders": 1},
        items=[{"sku": "CBL-01", "category": "cable", "qty": 1, "price": 4.0}],
        subject="question about shipping",
        hour=3,
        tags=[],
        plan="free",
    ),
    _event(
        "ticket.opened",
        total=0,
        country="GB",
        customer={"tier": "pro", "email": "a@example.org", "orders": 3},
        items=[],
        subject="Login broken after update",
        hour=22,
        tags=["bug"],
        priority="high",
        sentiment=-0.7,
    ),
    _event("user.signed_up", country="FR", customer={"tier": "free", "orders": 0}, hour=9),
]

TRIGGER_RULES: list[Any] = [
    # Large orders from selected countries.
    {
        "and": [
            {"==": [{"var": "event.type"}, "order.created"]},
            {">=": [{"var": "event.payload.total"}, 100]},
            {"in": [{"var": "event.payload.country"}, ["DE", "FR", "GB", "NL", "US"]]},
        ]
    },
    # Escalate tickets: high priority, or an unhappy enterprise customer.
    {
        "or": [
            {"==": [{"var": "event.payload.priority"}, "high"]},
            {
                "and": [
                    {"==": [{"var": "event.payload.customer.tier"}, "enterprise"]},
                    {"<": [{"var": ["event.payload.sentiment", 0]}, -0.3]},
                ]
            },
        ]
    },
    # Required fields before a workflow may start.
    {"!": {"missing": ["event.payload.customer.email", "event.payload.country"]}},
    # Any GPU line with more than one unit (some/all/none need an array: default to []).
    {
        "some": [
            {"var": ["event.payload.items", []]},
            {
                "and": [
                    {"==": [{"var": "category"}, "gpu"]},
                    {">": [{"var": "qty"}, 1]},
                ]
            },
        ]
    },
    # Order value recomputed from the lines.
    {
        ">": [
            {
                "reduce": [
                    {"var": "event.payload.items"},
                    {
                        "+": [
                            {"var": "accumulator"},
                            {"*": [{"var": "current.qty"}, {"var": "current.price"}]},
                        ]
                    },
                    0,
                ]
            },
            150,
        ]
    },
    # Routing label.
    {
        "if": [
            {">": [{"var": "event.payload.total"}, 1000]},
            "vip",
            {">": [{"var": "event.payload.total"}, 100]},
            "standard",
            {"==": [{"var": "tenant.plan"}, "free"]},
            "self-serve",
            "low",
        ]
    },
    # Business hours, as a chained comparison.
    {"<=": [8, {"var": "event.payload.hour"}, 18]},
    # Keyword in the subject line.
    {
        "or": [
            {"in": ["Urgent", {"var": "event.payload.subject"}]},
            {"in": ["refund", {"var": "event.payload.subject"}]},
        ]
    },
    # Returning customer with a non-empty tag list.
    {
        "and": [
            {">=": [{"var": "event.payload.customer.orders"}, 2]},
            {"!!": [{"var": "event.payload.tags"}]},
        ]
    },
    # A message built for a notification step.
    {
        "cat": [
            "Order from ",
            {"var": ["event.payload.country", "??"]},
            " (",
            {"var": "event.payload.customer.tier"},
            ")",
        ]
    },
    # SKUs of items that need shipping insurance.
    {
        "map": [
            {"filter": [{"var": "event.payload.items"}, {">=": [{"var": "price"}, 50]}]},
            {"var": "sku"},
        ]
    },
    # Missing-some: at least one contact channel.
    {"missing_some": [1, ["event.payload.customer.email", "event.payload.phone"]]},
]


def _same(expected: Any, actual: Any) -> bool:
    """JSON equality that tells booleans from numbers (Python's ``True == 1`` would not)."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if expected is None or actual is None:
        return expected is actual
    if isinstance(expected, int | float):
        return isinstance(actual, int | float) and expected == actual
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(_same(e, a) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and expected.keys() == actual.keys()
            and all(_same(expected[k], actual[k]) for k in expected)
        )
    return bool(expected == actual)


def _shared_dir() -> Path:
    override = os.environ.get("AUTOMATE_SHARED_DIR")
    return Path(override) if override else REPO_ROOT.parent / "shared"


def conformance_cases() -> list[Case]:
    """Conformance cases with an expected result that both engines get right."""
    suites = _shared_dir() / "conformance" / "jsonlogic"
    if not suites.is_dir():
        sys.exit(f"Conformance suites not found at {suites} (set AUTOMATE_SHARED_DIR).")
    cases: list[Case] = []
    for path in sorted(suites.rglob("*.json")):
        if path.name == "index.json":
            continue
        for case in json.loads(path.read_text()):
            if not isinstance(case, dict) or "result" not in case:
                continue
            rule, data = case["rule"], case.get("data")
            try:
                peer_ok = _same(case["result"], peer_apply(rule, data))
                ours_ok = _same(case["result"], jsonlogic.apply(rule, data))
            except Exception:  # a peer crash just means "not supported"
                continue
            if peer_ok and ours_ok:
                cases.append((rule, data))
    return cases


def trigger_cases() -> list[Case]:
    return [(rule, event) for rule in TRIGGER_RULES for event in EVENTS]


def check_agreement(cases: list[Case]) -> None:
    for rule, data in cases:
        ours, theirs = jsonlogic.apply(rule, data), peer_apply(rule, data)
        if not _same(ours, theirs):
            sys.exit(f"Engines disagree on {json.dumps(rule)}: ours={ours!r} peer={theirs!r}")


def _runner(kind: str, cases: list[Case]) -> Callable[[], None]:
    if kind == "compiled":
        compiled = [(jsonlogic.compile(rule), data) for rule, data in cases]

        def run() -> None:
            for evaluate, data in compiled:
                evaluate(data)

    elif kind == "apply":
        apply = jsonlogic.apply

        def run() -> None:
            for rule, data in cases:
                apply(rule, data)

    else:

        def run() -> None:
            for rule, data in cases:
                peer_apply(rule, data)

    return run


def measure(cases: list[Case], rounds: int, evaluations: int) -> dict[str, list[float]]:
    """Seconds per evaluation, one figure per round, engines interleaved within each round.

    Each round makes at least ``evaluations`` calls per engine (whole passes over ``cases``),
    long enough for the timer and short enough for the rounds to see the same machine.
    """
    kinds = ("compiled", "apply", "peer")
    repeat = max(1, -(-evaluations // len(cases)))
    runners = {kind: _runner(kind, cases) for kind in kinds}
    for run in runners.values():  # warm caches and the interpreter's specialisations
        run()
    samples: dict[str, list[float]] = {kind: [] for kind in kinds}
    evaluations = len(cases) * repeat
    for _ in range(rounds):
        for kind in kinds:
            run = runners[kind]
            gc.disable()
            try:
                start = time.perf_counter()
                for _ in range(repeat):
                    run()
                elapsed = time.perf_counter() - start
            finally:
                gc.enable()
            samples[kind].append(elapsed / evaluations)
    return samples


def report(title: str, cases: list[Case], samples: dict[str, list[float]]) -> None:
    median = {kind: statistics.median(values) for kind, values in samples.items()}
    print(f"\n{title}: {len(cases)} (rule, data) pairs")
    print(f"  {'engine':<34}{'median us/eval':>16}{'min':>10}{'max':>10}")
    labels = {
        "compiled": "ours, compile() once then f(data)",
        "apply": "ours, apply(rule, data)",
        "peer": "json-logic-qubit jsonLogic()",
    }
    for kind, values in samples.items():
        print(
            f"  {labels[kind]:<34}{median[kind] * 1e6:>16.3f}"
            f"{min(values) * 1e6:>10.3f}{max(values) * 1e6:>10.3f}"
        )
    print(f"  speed-up, compiled vs peer: {median['peer'] / median['compiled']:.1f}x")
    print(f"  speed-up, apply    vs peer: {median['peer'] / median['apply']:.1f}x")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="timed rounds (median reported)")
    parser.add_argument(
        "--evaluations", type=int, default=40000, help="evaluations per engine and round"
    )
    options = parser.parse_args(argv)

    import json_logic

    peer_version = getattr(json_logic, "__version__", None)
    if peer_version is None:
        from importlib.metadata import version

        peer_version = version("json-logic-qubit")
    print(f"Python {sys.version.split()[0]}, json-logic-qubit {peer_version}")
    print(
        f"{options.rounds} rounds of >= {options.evaluations} evaluations per engine;"
        " figures are per evaluation, median (min, max) over rounds"
    )

    triggers = trigger_cases()
    conformance = conformance_cases()
    check_agreement(triggers)
    workloads = [
        ("Workflow triggers", triggers),
        ("Conformance sample (cases both engines pass)", conformance),
        ("All of the above", triggers + conformance),
    ]
    for title, cases in workloads:
        report(title, cases, measure(cases, options.rounds, options.evaluations))


if __name__ == "__main__":
    main()
