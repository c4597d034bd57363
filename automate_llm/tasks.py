"""Outbox handlers of the LLM app; the worker imports every app's ``tasks`` module.

``llm.record`` stores a successful call (``LLMRequest``, ``LLMUsage``, the ``llm.call`` audit
row, the run's usage roll-up). The job was queued by the call in the caller's transaction, so
it exists exactly when the call's charge committed; it runs in the transaction that completes
it, and a record already stored (same request id) is not written twice.
"""

from __future__ import annotations

from automate_core.outbox.handlers import outbox_handler
from automate_core.outbox.store import Lease
from automate_llm.metering import RECORD_JOB, CallRecord, write_record


@outbox_handler(RECORD_JOB)
def record_call(job: Lease) -> None:
    write_record(CallRecord.model_validate(job.payload))
