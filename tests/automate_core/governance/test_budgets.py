"""Budgets: reservations are all-or-nothing conditional UPDATEs, settled to the actual usage."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.utils import timezone

from automate_core.governance import budgets
from automate_core.governance.models import Budget, BudgetReservation
from automate_core.tenancy.models import Tenant

KEY = ("api_key", "key-1")
USER = ("end_user", "user-1")


@pytest.fixture(autouse=True, params=["one_statement", "unprepared"])
def implementation(request, settings) -> str:
    """Every test runs on the one-statement moves, prepared and with prepared statements
    turned off for a pooler."""
    if request.param == "unprepared":
        settings.AUTOMATE = {**settings.AUTOMATE, "PREPARED_STATEMENTS": False}
    return request.param


def make_budget(tenant: Tenant, scope=KEY, **fields) -> Budget:
    fields.setdefault("period", Budget.Period.TOTAL)
    return Budget.objects.create(tenant=tenant, scope_type=scope[0], scope_id=scope[1], **fields)


def counters(budget: Budget) -> tuple[int, Decimal, int, Decimal]:
    budget.refresh_from_db()
    return budget.spent_tokens, budget.spent_cost, budget.reserved_tokens, budget.reserved_cost


@pytest.mark.django_db
def test_reservation_within_the_limit_is_held(tenant):
    budget = make_budget(tenant, limit_tokens=1000, limit_cost=Decimal("1.00"))

    held = budgets.reserve(tenant, [KEY], tokens=400, cost="0.40", ref="call-1")

    assert len(held.ids) == 1
    assert counters(budget) == (0, Decimal("0"), 400, Decimal("0.40"))


@pytest.mark.django_db
def test_reservation_over_the_limit_is_refused_and_holds_nothing(tenant):
    budget = make_budget(tenant, limit_tokens=1000)
    budgets.reserve(tenant, [KEY], tokens=800)

    with pytest.raises(budgets.BudgetExceeded) as refused:
        budgets.reserve(tenant, [KEY], tokens=201)

    assert refused.value.status_code == 402
    assert refused.value.code == "budget_exceeded"
    assert refused.value.details["scope_id"] == "key-1"
    assert "1000 tokens" in refused.value.message
    assert counters(budget)[2] == 800
    assert BudgetReservation.objects.count() == 1


@pytest.mark.django_db
def test_cost_limit_refuses_independently_of_tokens(tenant):
    make_budget(tenant, limit_cost=Decimal("0.50"))

    with pytest.raises(budgets.BudgetExceeded, match=r"cost 0\.50"):
        budgets.reserve(tenant, [KEY], tokens=10**9, cost="0.51")


@pytest.mark.django_db
def test_settle_charges_the_actual_amount_and_drops_the_hold(tenant):
    budget = make_budget(tenant, limit_tokens=1000, limit_cost=Decimal("1"))
    held = budgets.reserve(tenant, [KEY], tokens=500, cost="0.50")

    assert budgets.settle(held, actual_tokens=120, actual_cost="0.12") == 1
    assert budgets.settle(held, actual_tokens=120, actual_cost="0.12") == 0  # once only

    assert counters(budget) == (120, Decimal("0.12"), 0, Decimal("0"))
    row = BudgetReservation.objects.get(pk=held.ids[0])
    assert (row.status, row.actual_tokens) == ("settled", 120)


@pytest.mark.django_db
def test_settle_above_the_reservation_may_overrun_the_limit_by_that_call_only(tenant):
    budget = make_budget(tenant, limit_tokens=100)
    held = budgets.reserve(tenant, [KEY], tokens=90)

    budgets.settle(held, actual_tokens=130, actual_cost=0)

    assert counters(budget)[0] == 130
    with pytest.raises(budgets.BudgetExceeded):
        budgets.reserve(tenant, [KEY], tokens=0)


@pytest.mark.django_db
def test_release_on_failure_frees_the_hold_without_charging(tenant):
    budget = make_budget(tenant, limit_tokens=100)
    held = budgets.reserve(tenant, [KEY], tokens=100)

    assert budgets.release(held) == 1
    assert budgets.release(held) == 0

    assert counters(budget) == (0, Decimal("0"), 0, Decimal("0"))
    budgets.reserve(tenant, [KEY], tokens=100)  # the room is back


@pytest.mark.django_db
def test_expired_holds_of_a_dead_worker_are_released_by_the_reaper(tenant):
    budget = make_budget(tenant, limit_tokens=100)
    dead = budgets.reserve(tenant, [KEY], tokens=60, ttl_seconds=30)
    alive = budgets.reserve(tenant, [KEY], tokens=40, ttl_seconds=3600)

    later = timezone.now() + dt.timedelta(seconds=60)
    assert budgets.release_expired(now=later) == 1

    assert counters(budget)[2] == 40
    assert BudgetReservation.objects.get(pk=dead.ids[0]).status == "released"
    assert BudgetReservation.objects.get(pk=alive.ids[0]).status == "reserved"
    # The worker was only slow: its late settle still charges the usage, once.
    assert budgets.settle(dead, actual_tokens=55, actual_cost=0) == 1
    assert counters(budget)[:3] == (55, Decimal("0"), 40)


@pytest.mark.django_db
def test_several_scopes_are_reserved_all_or_nothing(tenant):
    key_budget = make_budget(tenant, KEY, limit_tokens=1000)
    user_budget = make_budget(tenant, USER, limit_tokens=100)
    tenant_budget = make_budget(tenant, ("tenant", str(tenant.pk)), limit_tokens=None)
    scopes = [("tenant", str(tenant.pk)), KEY, USER]

    with pytest.raises(budgets.BudgetExceeded) as refused:
        budgets.reserve(tenant, scopes, tokens=150)

    assert refused.value.details["scope_type"] == "end_user"
    assert [counters(b)[2] for b in (key_budget, user_budget, tenant_budget)] == [0, 0, 0]

    held = budgets.reserve(tenant, scopes, tokens=100)
    assert len(held.ids) == 3
    assert [counters(b)[2] for b in (key_budget, user_budget, tenant_budget)] == [100] * 3


@pytest.mark.django_db
def test_scopes_without_a_budget_are_unlimited(tenant):
    held = budgets.reserve(tenant, [KEY], tokens=10**12)

    assert held.ids == ()
    assert budgets.settle(held, actual_tokens=1, actual_cost=0) == 0


@pytest.mark.django_db
def test_reserving_again_with_the_same_ref_holds_once(tenant):
    budget = make_budget(tenant, limit_tokens=100)

    first = budgets.reserve(tenant, [KEY], tokens=60, ref="retry-me")
    again = budgets.reserve(tenant, [KEY], tokens=60, ref="retry-me")

    assert again.ids == first.ids
    assert counters(budget)[2] == 60


@pytest.mark.django_db
def test_a_daily_template_creates_one_budget_per_day(tenant):
    make_budget(tenant, period=Budget.Period.DAY, limit_tokens=100)
    today = dt.datetime(2026, 3, 10, 15, 0, tzinfo=dt.UTC)
    tomorrow = today + dt.timedelta(days=1)

    budgets.reserve(tenant, [KEY], tokens=100, now=today)
    with pytest.raises(budgets.BudgetExceeded):
        budgets.reserve(tenant, [KEY], tokens=1, now=today)
    budgets.reserve(tenant, [KEY], tokens=100, now=tomorrow)

    days = Budget.objects.filter(period="day", period_start__isnull=False).order_by("period_start")
    assert [(b.period_start.day, b.reserved_tokens) for b in days] == [(10, 100), (11, 100)]
    template = Budget.objects.get(period="day", period_start__isnull=True)
    assert template.reserved_tokens == 0


def test_period_starts_are_utc_midnight_and_first_of_month():
    now = dt.datetime(2026, 3, 10, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))

    assert budgets.period_start("day", now) == dt.datetime(2026, 3, 11, tzinfo=dt.UTC)
    assert budgets.period_start("month", now) == dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    assert budgets.period_start("total", now) is None


# -- concurrency ---------------------------------------------------------------------------------

THREADS = 16
PROCESSES = 2
CALLS_PER_WORKER = 40
LIMIT_TOKENS = 5_000


def race(tenant_id: str, seed: int, calls: int) -> tuple[list[int], int]:
    """Reserve random amounts and settle each to a random actual usage up to the reservation."""
    from automate_core.governance import budgets

    tenant = Tenant.objects.get(pk=tenant_id)
    rng = random.Random(seed)
    admitted: list[int] = []
    refused = 0
    for _ in range(calls):
        want = rng.randint(1, 200)
        try:
            held = budgets.reserve(tenant, [KEY], tokens=want, cost=Decimal(want) / 100)
        except budgets.BudgetExceeded:
            refused += 1
            continue
        actual = rng.randint(0, want)
        budgets.settle(held, actual_tokens=actual, actual_cost=Decimal(actual) / 100)
        admitted.append(actual)
    return admitted, refused


# Run by each subprocess: its own interpreter and connection to the test database (argv[1]);
# it says "ready" once set up and starts racing when the test writes a line to its stdin.
PROCESS_WORKER = """
import json, sys
import django
django.setup()
from django.db import connection, transaction
connection.settings_dict["NAME"] = sys.argv[1]
from tests.automate_core.governance.test_budgets import race
connection.ensure_connection()
print("ready", flush=True)
sys.stdin.readline()
admitted, refused = race(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
print(json.dumps({"admitted": admitted, "refused": refused}), flush=True)
"""


def start_process(tenant: Tenant, seed: int) -> subprocess.Popen[str]:
    args = [connection.settings_dict["NAME"], str(tenant.pk), str(seed), str(CALLS_PER_WORKER)]
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", PROCESS_WORKER, *args],
        cwd=Path(__file__).resolve().parents[3],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("implementation", ["one_statement"], indirect=True)
def test_concurrent_reserve_and_settle_never_spend_past_the_limit(implementation):
    """16 threads (own connections) and 2 processes race reserve+settle on one budget."""
    tenant = Tenant.objects.create(name="Race", slug="race")
    budget = make_budget(tenant, limit_tokens=LIMIT_TOKENS, limit_cost=Decimal("50"))
    lock = threading.Lock()
    admitted: list[int] = []
    refused = errors = 0
    start = threading.Barrier(THREADS + 1)

    def worker(seed: int) -> None:
        nonlocal refused, errors
        try:
            start.wait()
            mine, no = race(str(tenant.pk), seed, CALLS_PER_WORKER)
            with lock:
                admitted.extend(mine)
                refused += no
        except Exception:
            with lock:
                errors += 1
            raise
        finally:
            connection.close()

    processes = [start_process(tenant, 1000 + n) for n in range(PROCESSES)]
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for proc in processes:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    start.wait()
    for thread in threads:
        thread.join()
    for proc in processes:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        result = json.loads(out.strip().splitlines()[-1])
        admitted.extend(result["admitted"])
        refused += result["refused"]

    spent_tokens, spent_cost, reserved_tokens, reserved_cost = counters(budget)
    attempted = (THREADS + PROCESSES) * CALLS_PER_WORKER
    print(
        f"\nbudget race ({THREADS} threads + {PROCESSES} processes): attempted={attempted} "
        f"admitted={len(admitted)} refused={refused} errors={errors} "
        f"spent={spent_tokens}/{LIMIT_TOKENS} tokens, cost {spent_cost}/50"
    )
    assert errors == 0
    assert len(admitted) + refused == attempted
    assert refused > 0, "the race should have reached the limit"
    assert spent_tokens == sum(admitted) <= LIMIT_TOKENS
    assert spent_cost == Decimal(sum(admitted)) / 100 <= Decimal("50")
    assert (reserved_tokens, reserved_cost) == (0, Decimal("0"))


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_concurrent_reservations_over_overlapping_scopes_neither_deadlock_nor_overspend(
    implementation,
):
    """Threads race on three scope sets that share budgets ({key}, {user}, {key, user}): a
    reservation holds all its budgets or none, and no budget passes its limit."""
    tenant = Tenant.objects.create(name="Overlap", slug="overlap")
    limits = {KEY: 3_000, USER: 2_000}
    rows = {
        scope: make_budget(tenant, scope, limit_tokens=limit) for scope, limit in limits.items()
    }
    choices = [[KEY], [USER], [KEY, USER]]
    lock = threading.Lock()
    spent = dict.fromkeys(limits, 0)
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        try:
            start.wait()
            for _ in range(CALLS_PER_WORKER):
                scopes = rng.choice(choices)
                want = rng.randint(1, 150)
                try:
                    held = budgets.reserve(tenant, scopes, tokens=want)
                except budgets.BudgetExceeded:
                    continue
                actual = rng.randint(0, want)
                budgets.settle(held, actual_tokens=actual, actual_cost=0)
                with lock:
                    for scope in scopes:
                        spent[scope] += actual
        except BaseException as exc:  # a deadlock would surface here as an OperationalError
            with lock:
                errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    for scope, row in rows.items():
        spent_tokens, _, reserved_tokens, _ = counters(row)
        assert spent_tokens == spent[scope] <= limits[scope], scope
        assert reserved_tokens == 0, scope
    assert spent[USER] > limits[USER] - 150, "the race should have reached the user's limit"


@pytest.mark.django_db
def test_a_refusal_inside_a_transaction_keeps_the_callers_other_writes(tenant):
    budget = make_budget(tenant, limit_tokens=100)

    with transaction.atomic():
        other = Tenant.objects.create(name="Written before", slug="written-before")
        with pytest.raises(budgets.BudgetExceeded):
            budgets.reserve(tenant, [KEY], tokens=101)
        held = budgets.reserve(tenant, [KEY], tokens=100)  # the transaction is still usable

    assert Tenant.objects.filter(pk=other.pk).exists()
    assert counters(budget)[2] == 100 and len(held.ids) == 1


@pytest.mark.django_db
def test_a_hold_inside_a_transaction_keeps_the_callers_commit_durable(tenant):
    budget = make_budget(tenant, limit_tokens=100)

    with transaction.atomic():
        budgets.reserve(tenant, [KEY], tokens=40)
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            assert cursor.fetchone()[0] == "on"  # the caller's commit stays durable

    assert counters(budget)[2] == 40


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_hold_made_outside_a_transaction_is_seen_by_other_connections_at_once(implementation):
    tenant = Tenant.objects.create(name="Seen", slug="seen")
    budget = make_budget(tenant, limit_tokens=100)

    budgets.reserve(tenant, [KEY], tokens=70)

    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"  # only the hold's own commit skipped the flush
    seen: list[int] = []

    def other_connection() -> None:
        try:
            seen.append(Budget.objects.get(pk=budget.pk).reserved_tokens)
            with pytest.raises(budgets.BudgetExceeded):
                budgets.reserve(tenant, [KEY], tokens=31)
        finally:
            connection.close()

    thread = threading.Thread(target=other_connection)
    thread.start()
    thread.join()
    assert seen == [70]


@pytest.mark.django_db
def test_open_hold_finds_a_reserved_ref_by_prefix_but_not_a_settled_one(tenant):
    make_budget(tenant, limit_tokens=1000)
    applicable = budgets.current_budgets(tenant, [KEY])
    done = budgets.reserve(tenant, [KEY], tokens=10, ref="llm:exec-1:ask#a")
    budgets.settle(done, actual_tokens=10, actual_cost=0)
    assert budgets.open_hold(applicable, "llm:exec-1:ask#") is None

    budgets.reserve(tenant, [KEY], tokens=10, ref="llm:exec-1:ask#b")
    budgets.reserve(tenant, [KEY], tokens=10, ref="llm:exec-1:askother#c")

    assert budgets.open_hold(applicable, "llm:exec-1:ask#") == "llm:exec-1:ask#b"
    assert budgets.open_hold([], "llm:exec-1:ask#") is None


@pytest.mark.django_db
def test_settling_a_released_hold_charges_without_touching_the_other_holds(tenant):
    budget = make_budget(tenant, limit_tokens=1000)
    key_and_user = make_budget(tenant, USER, limit_tokens=1000)
    first = budgets.reserve(tenant, [KEY, USER], tokens=100)
    budgets.reserve(tenant, [KEY, USER], tokens=50)
    budgets.release(first)

    assert budgets.settle(first, actual_tokens=30, actual_cost="0.5") == 2

    assert counters(budget) == (30, Decimal("0.5"), 50, Decimal("0"))
    assert counters(key_and_user) == (30, Decimal("0.5"), 50, Decimal("0"))


@pytest.mark.django_db
def test_budget_api_shows_limits_spent_and_held(api_client, tenant):
    from automate_core.governance import budgets as ledger

    Budget.objects.create(
        tenant=tenant,
        scope_type="tenant",
        scope_id=str(tenant.pk),
        period="total",
        limit_tokens=1000,
    )
    hold = ledger.reserve(tenant, [("tenant", str(tenant.pk))], tokens=300, ref="api-view")
    ledger.settle(hold, actual_tokens=120, actual_cost=0)
    ledger.reserve(tenant, [("tenant", str(tenant.pk))], tokens=50, ref="in-flight")
    [row] = api_client.get("/api/v1/budgets?scope_type=tenant").json()["results"]
    assert (row["limit_tokens"], row["spent_tokens"], row["reserved_tokens"]) == (1000, 120, 50)
