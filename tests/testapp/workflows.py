"""Code-first workflows the engine tests run (autodiscovered like any app's workflows.py)."""

import time
from datetime import timedelta

from pydantic import BaseModel

from automate_core.events import on_event, on_event_cancelled, on_event_created
from automate_core.workflows import (
    Retry,
    complete,
    event_workflow,
    fail,
    get_context,
    goto,
    sleep,
    step,
    wait,
    wait_for_event,
    workflow,
)

CALLS: list[str] = []  # side effects observed by tests


@workflow("three-steps")
class ThreeSteps:
    class Context(BaseModel):
        n: int = 0

    @step(start=True)
    def one(self):
        get_context().n += 1

    @step()
    def two(self):
        get_context().n += 10

    @step()
    def three(self):
        return complete(n=get_context().n)


@workflow("approval")
class Approval:
    class Context(BaseModel):
        user: str
        approved: bool = False
        note: str = ""

    @step(start=True)
    def ask(self):
        return wait("approved", timeout=timedelta(hours=1), on_timeout="expired", then="decide")

    @step()
    def decide(self):
        ctx = get_context()
        return complete(user=ctx.user, approved=ctx.approved, note=ctx.note)

    @step()
    def expired(self):
        return fail("nobody approved in time")


@workflow("nap")
class Nap:
    @step(start=True)
    def before(self):
        return sleep(timedelta(minutes=30), then="after")

    @step()
    def after(self):
        return complete(woke=True)


@workflow("flaky")
class Flaky:
    class Context(BaseModel):
        fail_times: int

    @step(start=True, retry=Retry(max_attempts=3, base_delay=60, jitter=0))
    def call_api(self):
        CALLS.append("call_api")
        if CALLS.count("call_api") <= get_context().fail_times:
            raise ConnectionError("upstream said 503 (api_key=sk-live-abcdefghijklmnop)")
        return complete(ok=True)


@workflow("loop")
class Loop:
    class Context(BaseModel):
        i: int = 0

    @step(start=True)
    def tick(self):
        ctx = get_context()
        ctx.i += 1
        return goto("tick") if ctx.i < 3 else complete(i=ctx.i)


@workflow("payment-wait")
class PaymentWait:
    class Context(BaseModel):
        order: str
        amount: int = 0

    @step(start=True)
    def await_payment(self):
        return wait_for_event(
            "payment.received",
            timeout=timedelta(days=1),
            match={"==": [{"var": "payload.order"}, get_context().order]},
            then="done",
        )

    @step()
    def done(self):
        return complete(amount=get_context().amount)


@event_workflow("subscription.renews", offset_minutes=-60)
class RenewalReminder:
    class Context(BaseModel):
        plan: str

    def create_context(self, event):
        return self.Context(plan=event.payload["plan"])

    @step(start=True)
    def remind(self):
        CALLS.append(f"remind:{get_context().plan}")
        return complete(reminded=get_context().plan)


@event_workflow("crash.tick", name="crash-three-steps")
class CrashThreeSteps:
    """Three steps that each take a little time, so kill -9 lands mid-step."""

    class Context(BaseModel):
        n: int = 0

    def create_context(self, event):
        return self.Context(n=event.payload["n"])

    @step(start=True)
    def one(self):
        time.sleep(0.002)

    @step()
    def two(self):
        time.sleep(0.002)

    @step()
    def three(self):
        return complete(n=get_context().n)


HOOKS: list[str] = []


@on_event("invoice.paid")
def record_paid(event):
    HOOKS.append(f"paid:{event.payload['pk']}")


@on_event_created("invoice.due")
def record_due_created(event):
    HOOKS.append(f"due-created:{event.payload['pk']}")


@on_event_cancelled("invoice.due")
def record_due_cancelled(event):
    HOOKS.append(f"due-cancelled:{event.payload['pk']}")


@on_event("invoice.due")
def record_due(event):
    HOOKS.append(f"due:{event.payload['pk']}")


@event_workflow("invoice.due", offset_minutes=-60, name="invoice-reminder")
class InvoiceReminder:
    @step(start=True)
    def remind(self):
        return complete(reminded=True)


@workflow("leaky")
class Leaky:
    """A careless step that returns the secret it resolved."""

    @step(start=True)
    def read(self):
        from automate_core.governance.secrets import resolve_secrets

        value = resolve_secrets({"$secret": "LEAKY_TOKEN"})
        return complete(token=value, note=f"used {value} to call the API")


@event_workflow("legacy.renews", name="legacy-context")
class LegacyContext:
    """Builds its Context with the dict form create_context received before the Event model."""

    class Context(BaseModel):
        plan: str

    def create_context(self, event):
        return self.Context(plan=event["payload"]["plan"])

    @step(start=True)
    def done(self):
        return complete(plan=get_context().plan)


@on_event(event_name="entity.touched", entity_type="testapp.Invoice")
def record_invoice_touched(event):
    HOOKS.append(f"invoice-touched:{event.object_id}")


@on_event(event_name="entity.touched")
def record_touched(event):
    HOOKS.append("touched")


@workflow("unserializable")
class Unserializable:
    """A step whose result cannot be stored as JSON."""

    @step(start=True)
    def finish(self):
        return complete(at=object())


@workflow("counted-retry")
class CountedRetry:
    """Fails its first attempt after counting it in the Context (the guide's pattern)."""

    class Context(BaseModel):
        attempts: int = 0

    @step(start=True, retry=Retry(max_attempts=3, base_delay=60, jitter=0))
    def call(self):
        ctx = get_context()
        ctx.attempts += 1
        if ctx.attempts < 2:
            raise RuntimeError("transient failure")
        return complete(attempts=ctx.attempts)


@workflow("egress-refused")
class EgressRefused:
    """A step whose outbound call the egress policy refuses (wrapped by a connector's error)."""

    @step(start=True, retry=Retry(max_attempts=3, base_delay=60, jitter=0))
    def call(self):
        from automate_core.governance.egress import EgressDenied

        CALLS.append("egress-refused")
        try:
            raise EgressDenied("refused: 10.0.0.1 is a private address")
        except EgressDenied as exc:
            raise RuntimeError("the connector could not call the service") from exc


@event_workflow("parcel.shipped", name="parcel-delivery")
class ParcelDelivery:
    """Waits for the parcel's delivery: by its entity (the default), by ``match`` on the
    payload's parcel number, or for any delivery (``broadcast``), as the event says."""

    class Context(BaseModel):
        mode: str = "entity"
        parcel: str = ""

    def create_context(self, event):
        return self.Context(**event.payload)

    @step(start=True)
    def await_delivery(self):
        ctx = get_context()
        match = {"==": [{"var": "payload.parcel"}, ctx.parcel]} if ctx.mode == "match" else None
        return wait_for_event(
            "parcel.delivered", match=match, broadcast=ctx.mode == "broadcast", then=self.done
        )

    @step()
    def done(self):
        return complete(delivered=True)
