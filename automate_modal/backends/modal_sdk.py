"""The ``modal`` backend: the official SDK, ``Function.from_name(...).with_options(gpu=...)``,
``.spawn()``, ``FunctionCall.from_id(id).get(timeout=0)`` and ``.cancel()``.

Credentials come from the endpoint's config, as SecretRefs (``token_id``, ``token_secret``),
and go into a ``modal.Client`` only; with none, the SDK's own configuration applies
(``MODAL_TOKEN_ID``/``MODAL_TOKEN_SECRET`` or ``~/.modal.toml``). ``environment`` picks the
Modal environment. The SDK is looked up as this module's ``modal`` attribute, which is where
:mod:`automate_modal.testing` puts its double.

How a finished call's exception is read: ``FunctionTimeoutError`` is ``timeout``;
``OutputExpiredError`` (a result older than 7 days) is ``permanent``; ``InternalFailure`` (the
container was lost) is ``preempted``; an exception whose type or message says it ran out of
memory (``MemoryError``, ``torch.cuda.OutOfMemoryError``, an OOM-killed container) is ``oom``;
anything else the function raised is ``permanent``. Errors reaching Modal at all raise
:class:`BackendUnavailable` (the poll is retried, the call is not given up).
"""

from __future__ import annotations

import re
from typing import Any

import modal
import modal.exception

from automate_modal.backends.base import (
    Backend,
    BackendUnavailable,
    Done,
    Failed,
    Outcome,
    Pending,
    SpawnFailed,
    automate_kwargs,
)

_OOM = re.compile(r"out of memory|outofmemory|\bOOM\b|oom[- ]?kill", re.IGNORECASE)


def _unreachable() -> tuple[type[Exception], ...]:
    """Errors of talking to Modal (as opposed to errors of the call)."""
    e = modal.exception
    return (e.ConnectionError, e.ServiceError, e.InternalError, OSError)


def _unreachable_or_unauthorised() -> tuple[type[Exception], ...]:
    return (*_unreachable(), modal.exception.AuthError)


def _unreachable_or_busy() -> tuple[type[Exception], ...]:
    """Spawn errors that may pass: Modal out of reach, or out of capacity for now."""
    return (*_unreachable(), modal.exception.ResourceExhaustedError)


class ModalBackend(Backend):
    def _client(self) -> Any:
        token_id, token_secret = self.config.get("token_id"), self.config.get("token_secret")
        if token_id and token_secret:
            return modal.Client.from_credentials(str(token_id), str(token_secret))
        return None

    def spawn(
        self, input: Any, *, gpu: str, idempotency_key: str, callback_url: str, job_id: str
    ) -> str:
        endpoint = self.endpoint
        try:
            function = modal.Function.from_name(
                endpoint.app_name,
                endpoint.function_name,
                environment_name=self.config.get("environment") or None,
                client=self._client(),
            ).with_options(gpu=gpu, timeout=endpoint.timeout)
            call = function.spawn(
                input,
                automate=automate_kwargs(
                    job_id=job_id, idempotency_key=idempotency_key, callback_url=callback_url
                ),
            )
        except _unreachable_or_busy() as exc:
            raise SpawnFailed(f"{type(exc).__name__}: {exc}", kind="transient") from exc
        except modal.exception.Error as exc:
            raise SpawnFailed(f"{type(exc).__name__}: {exc}") from exc
        return str(call.object_id)

    def poll(self, call_id: str) -> Outcome:
        e = modal.exception
        try:
            output = modal.FunctionCall.from_id(call_id, client=self._client()).get(timeout=0)
        except e.FunctionTimeoutError as exc:
            return Failed("timeout", str(exc) or "the function timed out")
        except e.OutputExpiredError as exc:
            return Failed("permanent", f"the call's output expired: {exc}")
        except e.TimeoutError:
            return Pending()
        except _unreachable_or_unauthorised() as exc:
            raise BackendUnavailable(f"{type(exc).__name__}: {exc}") from exc
        except e.InternalFailure as exc:
            return Failed("preempted", str(exc) or "the container was lost")
        except Exception as exc:  # what the function raised, re-raised by the SDK
            return classify(exc)
        return Done(output)

    def cancel(self, call_id: str) -> None:
        try:
            modal.FunctionCall.from_id(call_id, client=self._client()).cancel()
        except _unreachable_or_unauthorised() as exc:
            raise BackendUnavailable(f"{type(exc).__name__}: {exc}") from exc


def classify(exc: BaseException) -> Failed:
    """The failure kind of an exception a function raised."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, MemoryError) or _OOM.search(text):
        return Failed("oom", text)
    return Failed("permanent", text)
