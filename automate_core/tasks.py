"""Outbox handlers of the core app; the worker imports every app's ``tasks`` module."""

from automate_core.events import scheduling  # noqa: F401  registers event.due and event.hook
from automate_core.workflows import engine  # noqa: F401  registers workflow.* and event.occurred
