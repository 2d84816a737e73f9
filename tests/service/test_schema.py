"""Schemathesis over the OpenAPI schema: generated requests never break the service or its schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

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

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def check(case: Any) -> None:
            case.call_and_validate(headers=headers)

        check()
