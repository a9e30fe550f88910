"""Property: whatever a client sends to any operation of the OpenAPI schema, valid or
not, the API never answers 5xx and every answer matches what the schema documents."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from {{ cookiecutter.package_name }}.api import (
    create_api,
)
from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_gets_a_server_error(local_app: ProjectCelery, mode: GenerationMode) -> None:
    # The embedded broker is a broker that is up: valid requests really enqueue.
    api = create_api(local_app.settings, local_app)
    schema = schemathesis.openapi.from_asgi("/openapi.json", api)

    @given(case=schema.as_strategy(mode))
    # The number of examples comes from the Hypothesis profile (tests/conftest.py).
    @settings(suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate()

    check()
