"""Schemathesis against the OpenAPI schema, in process: no 5xx, and every response matches what
its operation declares. Run by ``make fuzz`` (FUZZ=1, schemathesis installed); bounded by
``FUZZ_EXAMPLES`` examples per operation."""

from __future__ import annotations

import os

import pytest

if not os.environ.get("FUZZ"):
    pytest.skip("schema fuzzing runs with make fuzz (FUZZ=1)", allow_module_level=True)

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
)

from automate_core.tenancy.models import APIKey  # noqa: E402

from .conftest import CASES  # noqa: E402

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))


@pytest.fixture
def api_schema(transactional_db):
    from automate_site.wsgi import application

    return schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture
def bearer(transactional_db) -> dict[str, str]:
    from automate_core.tenancy.models import Tenant

    tenant = Tenant.objects.create(name="Fuzz", slug="fuzz")
    _, raw = APIKey.issue(tenant=tenant, name="fuzz")
    return {"Authorization": f"Bearer {raw}"}


def no_internal_error(ctx, response, case) -> None:
    """A 500 is a bug. Other 5xx are failures unless the operation declares them: a 503
    ``llm_not_configured`` is the right answer for a tenant with no model provider."""
    status = response.status_code
    declared = case.operation.definition.raw.get("responses", {})
    if status >= 500 and (status == 500 or str(status) not in declared):
        raise AssertionError(f"{status} from {case.operation.label}: {response.text[:500]}")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_error_and_responses_match_their_schema(case, bearer):
    outcome = "failed"
    try:
        case.call_and_validate(
            headers=bearer,
            checks=[no_internal_error, response_schema_conformance, content_type_conformance],
        )
        outcome = "passed"
    finally:
        CASES[case.operation.label, outcome] += 1
