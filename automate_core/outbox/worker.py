"""The outbox worker: threads that claim batches and run handlers until told to stop.

A :class:`Worker` runs ``concurrency`` executor threads (each claims a batch, runs its jobs one by
one), a maintenance thread (heartbeats the leases it holds, re-queues expired leases, prunes old
jobs and runs the tasks apps register in :mod:`automate_core.outbox.maintenance`, such as
releasing expired budget holds) and, on Postgres, a LISTEN connection whose notifications wake
idle threads. Idle threads also wake when the next scheduled job is due (``available_at``) and,
failing both, every poll interval; the database is the only timer.

What is guaranteed:

- :func:`run_job` runs the handler and the completion in one transaction: an attempt whose lease
  was taken over raises LeaseLost and its writes roll back.
- Stopping (SIGTERM/SIGINT or :meth:`Worker.stop`) lets each thread finish the job it is running,
  hands back the jobs it claimed but has not started (:func:`store.release`) and exits. Nothing is
  left half done; a second signal exits at once, and the reaper re-queues what was held.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from types import FrameType
from typing import Any

from django.db import DEFAULT_DB_ALIAS, close_old_connections, connections, transaction

from automate_core.conf import automate_settings
from automate_core.outbox import maintenance, store
from automate_core.outbox.handlers import commits_itself, get_handler
from automate_core.outbox.store import Lease, LeaseLost
from automate_core.tracing import trace

logger = logging.getLogger("automate.outbox")

# Shortest idle wait: a due job that could not be claimed is locked by someone finishing a claim.
MIN_IDLE_WAIT = 0.05


class JobOutcome(StrEnum):
    DONE = "done"
    RETRY = "retry"
    DEAD = "dead"
    LOST = "lost"


def run_job(lease: Lease) -> JobOutcome:
    """Run one claimed job: handler and completion commit together, or not at all.

    A handler exception rolls back its writes and records the failure (retry or dead). LeaseLost
    (the job was taken over) rolls back too and records nothing: the new owner decides.
    """
    with trace(lease.trace_id or lease.job_id.hex):
        try:
            handler = get_handler(lease.kind)
            if commits_itself(handler):
                handler(lease)  # commits step by step, completing the job in its last step
            else:
                with transaction.atomic():
                    handler(lease)
                    store.complete(lease)
        except LeaseLost:
            logger.warning(
                "job %s (%s) attempt %d: lease taken over; rolled back", *_describe(lease)
            )
            return JobOutcome.LOST
        except Exception as exc:
            return _record_failure(lease, exc)
        return JobOutcome.DONE


def _record_failure(lease: Lease, exc: Exception) -> JobOutcome:
    error = "".join(traceback.format_exception(exc))
    try:
        status = store.fail(lease, error)
    except LeaseLost:
        logger.warning("job %s (%s) attempt %d failed after losing its lease", *_describe(lease))
        return JobOutcome.LOST
    if status == store.Status.DEAD:
        logger.error(
            "job %s (%s) attempt %d failed; no attempts left, dead: %s",
            *_describe(lease),
            _summary(exc),
        )
        return JobOutcome.DEAD
    logger.warning(
        "job %s (%s) attempt %d failed, will retry: %s", *_describe(lease), _summary(exc)
    )
    return JobOutcome.RETRY


def _describe(lease: Lease) -> tuple[uuid.UUID, str, int]:
    return lease.job_id, lease.kind, lease.attempt


def _counts(counts: Counter[str]) -> str:
    return ", ".join(f"{name}={n}" for name, n in sorted(counts.items())) or "nothing"


def _summary(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class LeaseKeeper:
    """Keeps a set of leases alive with periodic heartbeats and notes those taken over."""

    def __init__(self, lease_seconds: float) -> None:
        self.lease_seconds = lease_seconds
        self._leases: dict[uuid.UUID, Lease] = {}
        self._lost: set[uuid.UUID] = set()
        self._lock = threading.Lock()

    def add(self, leases: Iterable[Lease]) -> None:
        with self._lock:
            self._leases.update((lease.job_id, lease) for lease in leases)

    def drop(self, leases: Iterable[Lease]) -> None:
        with self._lock:
            for lease in leases:
                self._leases.pop(lease.job_id, None)
                self._lost.discard(lease.job_id)

    def is_lost(self, lease: Lease) -> bool:
        with self._lock:
            return lease.job_id in self._lost

    def beat(self) -> None:
        """One heartbeat for every lease held; leases no longer held are marked lost."""
        with self._lock:
            leases = list(self._leases.values())
        if not leases:
            return
        lost = store.heartbeat(leases, self.lease_seconds)
        if lost:
            logger.warning("%d lease(s) taken over: %s", len(lost), sorted(map(str, lost)))
            with self._lock:
                self._lost |= lost & set(self._leases)

    @contextmanager
    def beating(self, leases: Sequence[Lease], interval: float | None = None) -> Iterator[None]:
        """Hold ``leases`` and heartbeat them from a background thread while the block runs."""
        interval = interval or self.lease_seconds / 3
        done = threading.Event()

        def loop() -> None:
            try:
                while not done.wait(interval):
                    try:
                        self.beat()
                    except Exception:
                        logger.exception("heartbeat failed")
                        close_old_connections()
            finally:
                connections.close_all()

        self.add(leases)
        thread = threading.Thread(target=loop, name="outbox-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
            self.drop(leases)


class _Wakeup:
    """Idle threads wait here; a notification, a stop or a due timer moves them."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.generation = 0
        self.waiting = 0

    def fire(self) -> None:
        with self._cond:
            self.generation += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float) -> None:
        """Return when fired after ``seen`` was read (no lost wake-ups), or after ``timeout``."""
        with self._cond:
            self.waiting += 1
            try:
                self._cond.wait_for(lambda: self.generation != seen, timeout)
            finally:
                self.waiting -= 1


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """Claims and runs outbox jobs with ``concurrency`` threads until stopped.

    ``once`` exits when no due job is left; ``max_jobs`` exits after that many claims. With
    ``dispatch``, claimed leases are handed to it (the Celery relay) instead of being run here,
    and keeping them alive is the receiver's job.
    """

    def __init__(
        self,
        *,
        concurrency: int | None = None,
        batch_size: int | None = None,
        lease_seconds: float | None = None,
        poll_interval: float | None = None,
        reap_interval: float | None = None,
        worker_id: str | None = None,
        once: bool = False,
        max_jobs: int | None = None,
        listen: bool = True,
        dispatch: Callable[[Lease], str] | None = None,
    ) -> None:
        s = automate_settings
        self.concurrency = concurrency or s.OUTBOX_WORKER_CONCURRENCY
        self.batch_size = batch_size or s.OUTBOX_BATCH_SIZE
        self.lease_seconds = lease_seconds or s.OUTBOX_LEASE_SECONDS
        self.poll_interval = poll_interval or s.OUTBOX_POLL_INTERVAL_MS / 1000
        self.reap_interval = reap_interval or s.OUTBOX_REAP_INTERVAL_SECONDS
        self.prune_interval: float | None = s.OUTBOX_PRUNE_INTERVAL_SECONDS
        self.worker_id = worker_id or default_worker_id()
        self.once = once
        self.listen = listen and not once
        self._dispatch = dispatch
        self._budget = max_jobs
        self._budget_lock = threading.Lock()
        self._keeper = LeaseKeeper(self.lease_seconds)
        self._wakeup = _Wakeup()
        self._stopping = threading.Event()
        self._maintenance_stop = threading.Event()
        self.listening = threading.Event()
        self.outcomes: Counter[str] = Counter()

    @property
    def idle(self) -> bool:
        """True while every executor thread is waiting for work."""
        return self._wakeup.waiting == self.concurrency

    def stop(self) -> None:
        """Ask the threads to finish the job in hand, release the rest and exit."""
        self._stopping.set()
        self._wakeup.fire()

    def run(self, *, handle_signals: bool = False) -> Counter[str]:
        """Run until stopped (or drained with ``once`` / ``max_jobs``); returns outcome counts.

        ``handle_signals`` installs SIGTERM/SIGINT handlers (main thread only): the first stops
        gracefully, the second exits the process at once.
        """
        previous = self._install_signal_handlers() if handle_signals else {}
        background = [threading.Thread(target=self._maintain, name="outbox-maintenance")]
        if self.listen:
            background.append(threading.Thread(target=self._listen, name="outbox-listen"))
        executors = [
            threading.Thread(target=self._execute, args=(n,), name=f"outbox-{n}")
            for n in range(self.concurrency)
        ]
        logger.info(
            "outbox worker %s: %d thread(s), batch %d, lease %ss%s",
            self.worker_id,
            self.concurrency,
            self.batch_size,
            self.lease_seconds,
            " (relay)" if self._dispatch else "",
        )
        try:
            for thread in background + executors:
                thread.start()
            for thread in executors:
                while thread.is_alive():  # short joins keep the main thread free for signals
                    thread.join(timeout=0.2)
        finally:
            self._stopping.set()
            self._maintenance_stop.set()
            for thread in background:
                thread.join()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        logger.info("outbox worker %s stopped: %s", self.worker_id, _counts(self.outcomes))
        return self.outcomes

    # Executor threads.

    def _execute(self, number: int) -> None:
        owner = f"{self.worker_id}/{number}"
        failures = 0
        try:
            while not self._stopping.is_set():
                seen = self._wakeup.generation
                want = self._reserve(self.batch_size)
                if not want:
                    break
                try:
                    close_old_connections()
                    leases = store.claim_batch(owner, want, self.lease_seconds)
                    self._unreserve(want - len(leases))
                    if leases:
                        self._run_batch(owner, leases)
                    elif self.once:
                        break
                    else:
                        self._idle_wait(seen)
                    failures = 0
                except Exception:
                    failures += 1
                    logger.exception("outbox thread %s: error, retrying", owner)
                    close_old_connections()
                    self._stopping.wait(min(30.0, 0.1 * 2**failures))
        finally:
            connections.close_all()
            self._wakeup.fire()  # threads waiting on a shared budget re-check it

    def _run_batch(self, owner: str, leases: list[Lease]) -> None:
        started = time.monotonic()
        counts: Counter[str] = Counter()
        if self._dispatch is None:
            self._keeper.add(leases)
        try:
            for index, lease in enumerate(leases):
                if self._stopping.is_set():
                    counts["released"] += store.release(leases[index:])
                    break
                if self._keeper.is_lost(lease):
                    counts[JobOutcome.LOST] += 1
                    continue
                try:
                    if self._dispatch is not None:
                        outcome = self._dispatch(lease)
                    else:
                        outcome = self._run_here(owner, lease, counts)
                except Exception:
                    self._release_quietly(leases[index:])
                    raise
                counts[outcome] += 1
                self._keeper.drop([lease])
        finally:
            self._keeper.drop(leases)
            with self._budget_lock:
                self.outcomes.update(counts)
            logger.debug(
                "%s: batch of %d in %.1f ms: %s",
                owner,
                len(leases),
                (time.monotonic() - started) * 1000,
                _counts(counts),
            )

    def _run_here(self, owner: str, lease: Lease, counts: Counter[str]) -> JobOutcome:
        """Run ``lease``, then the jobs its transaction handed to this worker (a run's first
        step job, see :func:`store.receiving_handoffs`), depth first, each under heartbeats.
        Returns the outcome of ``lease``; those of the handed jobs go to ``counts``."""
        with store.receiving_handoffs(owner, self.lease_seconds) as handed:
            outcome = run_job(lease)
        while handed:
            received = handed.pop(0)
            if self._stopping.is_set():
                counts["released"] += store.release([received, *handed])
                break
            self._keeper.add([received])
            try:
                with store.receiving_handoffs(owner, self.lease_seconds) as more:
                    counts[run_job(received)] += 1
                handed.extend(more)
            except Exception:
                self._release_quietly(handed)
                raise
            finally:
                self._keeper.drop([received])
        return outcome

    def _release_quietly(self, leases: Sequence[Lease]) -> None:
        try:
            store.release(leases)
        except Exception:
            logger.warning("could not release %d lease(s); they will expire", len(leases))

    def _idle_wait(self, seen: int) -> None:
        due = store.next_due_in()
        timeout = self.poll_interval if due is None else min(self.poll_interval, due)
        self._wakeup.wait(seen, max(timeout, MIN_IDLE_WAIT))

    def _reserve(self, wanted: int) -> int:
        if self._budget is None:
            return wanted
        with self._budget_lock:
            granted = min(wanted, self._budget)
            self._budget -= granted
            return granted

    def _unreserve(self, unused: int) -> None:
        if self._budget is not None and unused:
            with self._budget_lock:
                self._budget += unused

    # Background threads.

    def _maintain(self) -> None:
        """Heartbeat held leases, reap expired ones, prune old jobs and run the apps'
        maintenance tasks, each on its own period. An action returning True has work left and
        runs again after the reap interval instead of its full period."""
        periods: dict[str, float] = {
            "heartbeat": self.lease_seconds / 3,
            "reap": self.reap_interval,
        }
        actions: dict[str, Callable[[], Any]] = {
            "heartbeat": self._keeper.beat,
            "reap": self._reap,
        }
        if self.prune_interval:
            periods["prune"] = self.prune_interval
            actions["prune"] = store.prune
        for task in maintenance.tasks():
            period = self.prune_interval if task.every == "prune" else self.reap_interval
            if period:
                periods[task.name], actions[task.name] = period, task.run
        due = dict.fromkeys(periods, time.monotonic())
        due["heartbeat"] += periods["heartbeat"]
        try:
            while True:
                now = time.monotonic()
                for name, at in due.items():
                    if at <= now:
                        due[name] = now + periods[name]
                        try:
                            close_old_connections()
                            if actions[name]() is True:
                                due[name] = time.monotonic() + self.reap_interval
                        except Exception:
                            logger.exception("outbox %s failed", name)
                if self._maintenance_stop.wait(max(0.0, min(due.values()) - time.monotonic())):
                    return
        finally:
            connections.close_all()

    def _reap(self) -> None:
        reaped = store.reap_expired()
        if reaped:
            logger.warning("re-queued %d job(s) whose lease expired", reaped)
            self._wakeup.fire()

    def _listen(self) -> None:
        """LISTEN on a dedicated connection; each notification wakes the idle threads."""
        import psycopg
        from psycopg import sql

        params = connections[DEFAULT_DB_ALIAS].get_connection_params()
        channel = automate_settings.OUTBOX_NOTIFY_CHANNEL
        failures = 0
        while not self._stopping.is_set():
            try:
                with psycopg.connect(**params, autocommit=True) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    self.listening.set()
                    failures = 0
                    self._wakeup.fire()  # jobs may have arrived while not listening
                    while not self._stopping.is_set():
                        for _ in conn.notifies(timeout=0.25):
                            self._wakeup.fire()
            except psycopg.Error as exc:
                self.listening.clear()
                failures += 1
                logger.warning("outbox LISTEN connection failed (%s); polling meanwhile", exc)
                self._stopping.wait(min(30.0, 0.5 * 2**failures))
        self.listening.clear()

    def _install_signal_handlers(self) -> dict[int, Any]:
        def on_signal(signum: int, frame: FrameType | None) -> None:
            if self._stopping.is_set():
                logger.warning("second %s: exiting now", signal.Signals(signum).name)
                os._exit(1)
            logger.info("%s: finishing running jobs, then stopping", signal.Signals(signum).name)
            self.stop()

        return {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
