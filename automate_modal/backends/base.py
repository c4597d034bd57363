"""The contract every Modal backend implements, and how a backend is found.

A backend is bound to one endpoint (its app, function and resolved config) and does three
things: ``spawn`` the function (never waiting for it), ``poll`` a call once without blocking,
and ``cancel`` a call. What a poll returns is a value, not an exception: :class:`Pending`,
:class:`Done` or :class:`Failed` with a ``kind`` the services act on (``oom`` and ``preempted``
escalate to the next GPU, ``transient`` retries after a backoff, ``timeout`` and ``permanent``
end the job). A backend that cannot reach its service at all raises :class:`BackendUnavailable`
(the reconcile job is retried later; the call itself is not assumed lost).

Backends are plugins: ``[project.entry-points."django_automate.modal.backends"]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from automate_core import plugins
from automate_core.errors import AutomateError

if TYPE_CHECKING:
    from automate_modal.models import ModalEndpoint

PLUGIN_KIND = "modal.backends"

FailureKind = Literal["oom", "preempted", "transient", "timeout", "permanent"]
FAILURE_KINDS: tuple[str, ...] = ("oom", "preempted", "transient", "timeout", "permanent")


@dataclass(frozen=True)
class Pending:
    """The call is still running (or queued)."""


@dataclass(frozen=True)
class Done:
    """The call returned ``output``."""

    output: Any


@dataclass(frozen=True)
class Failed:
    """The call ended without an output; ``kind`` says whether trying again may help."""

    kind: FailureKind
    message: str


Outcome = Pending | Done | Failed


class SpawnFailed(AutomateError):
    """The function could not be spawned; ``kind`` is ``transient`` when trying later may work."""

    status_code = 503
    code = "modal_spawn_failed"
    default_message = "The GPU function could not be started."

    def __init__(self, message: str, *, kind: FailureKind = "permanent") -> None:
        self.kind = kind
        super().__init__(message, details={"kind": kind})


class BackendUnavailable(AutomateError):
    """The backend's service could not be reached to poll or cancel; try again later."""

    status_code = 503
    code = "modal_unavailable"
    default_message = "The GPU backend could not be reached."


class Backend:
    """Runs one endpoint's function. ``config`` is the endpoint's config with its SecretRefs
    resolved (values are registered with the redactor; never log them)."""

    def __init__(self, endpoint: ModalEndpoint, config: Mapping[str, Any]) -> None:
        self.endpoint = endpoint
        self.config = config

    def spawn(
        self, input: Any, *, gpu: str, idempotency_key: str, callback_url: str, job_id: str
    ) -> str:
        """Start the function on ``input`` on a ``gpu`` and return the call id at once. The
        function receives ``automate={"job_id", "idempotency_key", "callback_url"}``."""
        raise NotImplementedError

    def poll(self, call_id: str) -> Outcome:
        """The call's state now, without waiting."""
        raise NotImplementedError

    def cancel(self, call_id: str) -> None:
        """Stop the call; cancelling a call that already ended does nothing."""
        raise NotImplementedError


def backend_class(name: str) -> type[Backend]:
    cls: type[Backend] = plugins.load(PLUGIN_KIND, name)
    return cls


def backend_for(endpoint: ModalEndpoint) -> Backend:
    """The endpoint's backend, its config's SecretRefs resolved for the endpoint's tenant."""
    from automate_core.governance.secrets import resolve_secrets

    config = resolve_secrets(endpoint.config or {}, endpoint.tenant)
    return backend_class(endpoint.backend)(endpoint, config)


def automate_kwargs(*, job_id: str, idempotency_key: str, callback_url: str) -> dict[str, str]:
    """What every backend passes the function as its ``automate`` keyword argument."""
    return {"job_id": job_id, "idempotency_key": idempotency_key, "callback_url": callback_url}
