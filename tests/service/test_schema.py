"""Schemathesis over the OpenAPI schema: generated requests never break the service or its schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from service.app import create_app
from service.config import Settings

KEY = "test-key"


@pytest.mark.parametrize("keys", [(), (KEY,)], ids=["open", "with-api-keys"])
def test_generated_requests_get_documented_answers(artifact_dir: Path, keys: tuple[str, ...]) -> None:
    app = create_app(Settings(model_uri=str(artifact_dir), api_keys=keys))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = {"X-API-Key": KEY} if keys else None
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8

    for operation in operations:
        _checked(operation, headers)()


def _checked(operation: Any, headers: dict[str, str] | None) -> Any:
    """Return the property test of one operation."""
    # A rule's targets must exist in the catalog and its fields agree (a pin needs a position...):
    # beyond what a schema says, so a schema-valid rule may rightly be a 422 naming the field.
    semantic = [positive_data_acceptance] if operation.path == "/v1/admin/rules" else []

    @given(case=operation.as_strategy())
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    def check(case: Any) -> None:
        case.call_and_validate(headers=headers, excluded_checks=semantic)

    return check
