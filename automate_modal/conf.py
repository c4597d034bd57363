"""``AUTOMATE_MODAL`` settings with defaults (see docs/modal.md "Settings")."""

from __future__ import annotations

from automate_core.conf import AppSettings

modal_settings = AppSettings(
    "AUTOMATE_MODAL",
    defaults={
        # Per-second USD prices by GPU type, merged over the shipped table (automate_modal.pricing).
        "PRICING": {},
        # Where the completion callback is reached from the function's side: scheme and host
        # (e.g. "https://automate.example.com"). Empty: no callback URL is passed and jobs are
        # found by the reconcile poll alone.
        "CALLBACK_BASE_URL": "",
        # How long a callback URL stays valid past the endpoint's timeout, in seconds.
        "CALLBACK_GRACE_SECONDS": 3600,
        # Reconcile polls of a running call: first after this delay, then doubling up to the cap.
        "POLL_INITIAL_SECONDS": 5.0,
        "POLL_MAX_SECONDS": 300.0,
        # Wait before re-spawning after a transient failure, doubling per attempt up to the cap.
        "RETRY_BASE_SECONDS": 2.0,
        "RETRY_MAX_SECONDS": 120.0,
        # An attempt whose spawn was intended this long ago and has no recorded call id was
        # spawned (or not) by a worker that died: it is marked lost and spawned again.
        "ORPHAN_AFTER_SECONDS": 60.0,
        # A call still running this long past the endpoint's timeout is cancelled as timed out.
        "TIMEOUT_GRACE_SECONDS": 30,
        # A job output larger than this (as JSON, in bytes) is stored as a ModalArtifact
        # ("output.json", through Django's default storage) and the job's output references it.
        "OUTPUT_INLINE_MAX_BYTES": 256 * 1024,
        # Modules the local backend may run functions from: an endpoint's function_name (a
        # dotted path) must lie in one of them, so a tenant's endpoint cannot run arbitrary code.
        "LOCAL_MODULES": ["automate_modal.demo"],
        # Where the local backend keeps each call's input, process id and result; empty means
        # a directory under the system's temporary directory.
        "LOCAL_WORK_DIR": "",
    },
)
