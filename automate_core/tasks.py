"""Outbox handlers and maintenance tasks of the core app; the worker imports every app's
``tasks`` module."""

from automate_core.events import scheduling  # noqa: F401  registers event.due and event.hook
from automate_core.executions.retention import prune_a_few
from automate_core.governance.budgets import release_expired
from automate_core.outbox import maintenance
from automate_core.workflows import engine  # noqa: F401  registers workflow.* and event.occurred

# Budget holds of workers that died are released like their leases.
maintenance.register("budgets", release_expired, every="reap")
maintenance.register("executions", prune_a_few, every="prune")
