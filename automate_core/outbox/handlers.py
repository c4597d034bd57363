"""Outbox handlers: the function that runs each job kind.

``@outbox_handler("kind")`` registers ``fn(job: Lease) -> None``. The handler runs inside the
transaction that completes the job, so its database writes commit only if the attempt still holds
the lease. Raising an exception fails the attempt (retried with backoff, then dead). Jobs run at
least once: side effects outside the database should be keyed on ``job.idempotency_key`` or
``job.job_id`` so a re-run does not repeat them.

Handlers live in an app's ``tasks.py``; the worker imports those modules when it starts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import autodiscover_modules

from automate_core.errors import AutomateError

if TYPE_CHECKING:
    from automate_core.outbox.store import Lease

Handler = Callable[["Lease"], None]
H = TypeVar("H", bound=Handler)

_handlers: dict[str, Handler] = {}


class UnknownJobKind(AutomateError):
    code = "unknown_job_kind"
    default_message = "No outbox handler is registered for this job kind."


def outbox_handler(kind: str, *, commits: bool = False) -> Callable[[H], H]:
    """Register the decorated function as the handler of jobs of ``kind``.

    A kind has one handler; registering a different function under a taken kind is refused.
    With ``commits=True`` the handler runs outside a transaction and commits its own work in
    steps: each step's transaction must call :func:`store.advance` (or, for the last,
    :func:`store.complete`) so that a worker that lost its lease commits nothing.
    """

    def register(fn: H) -> H:
        existing = _handlers.get(kind)
        if existing is not None and _name(existing) != _name(fn):
            raise ImproperlyConfigured(
                f"Outbox kind {kind!r} is already handled by {_name(existing)}; "
                f"refusing to register {_name(fn)} too."
            )
        _handlers[kind] = fn
        fn.__outbox_commits__ = commits  # type: ignore[attr-defined]
        return fn

    return register


def get_handler(kind: str) -> Handler:
    try:
        return _handlers[kind]
    except KeyError:
        raise UnknownJobKind(
            f"No outbox handler is registered for kind {kind!r} in this worker. Register one "
            f"with @outbox_handler({kind!r}) in an app's tasks.py, or import its module with "
            f"automate_worker --include. Known kinds: {', '.join(sorted(_handlers)) or 'none'}.",
            details={"kind": kind},
        ) from None


def commits_itself(handler: Handler) -> bool:
    return bool(getattr(handler, "__outbox_commits__", False))


def registered_kinds() -> list[str]:
    return sorted(_handlers)


def autodiscover() -> None:
    """Import every installed app's ``tasks`` module so their handlers register."""
    autodiscover_modules("tasks")


def _name(fn: Handler) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
