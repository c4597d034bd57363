"""Multi-process tests reuse the outbox suite's worker-process fixture."""

from tests.automate_core.outbox.conftest import worker_env  # noqa: F401  (a pytest fixture)
