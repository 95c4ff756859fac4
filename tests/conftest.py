"""Shared fixtures: a fresh moto account provisioned from template.yaml for every test that asks for
`aws`, and a counter of AWS API calls for call-count budgets."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.aws import FAKE_CREDENTIALS, CallCounter, fresh_account

# Set before any boto3 client exists, so nothing can reach a real account.
# No metric lines (EMF) on stdout and no tracing in tests: tests/unit/test_metrics.py turns metrics on.
os.environ.update(
    FAKE_CREDENTIALS,
    POWERTOOLS_SERVICE_NAME="kallo-test",
    POWERTOOLS_LOG_LEVEL="WARNING",
    POWERTOOLS_METRICS_DISABLED="true",
    POWERTOOLS_TRACE_DISABLED="true",
)
os.environ.pop("AWS_ENDPOINT_URL", None)


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def pytest_make_parametrize_id(config: pytest.Config, val: Any, argname: str) -> str | None:
    """Test ids must be the same in every pytest-xdist worker, which collects the tests on its own:
    parameters made at collection (a random id, a zip with its timestamp) are named by what is stable
    in them (pytest numbers ids that come out the same)."""
    if isinstance(val, bytes):
        return f"{argname}-{len(val)}-bytes"
    if isinstance(val, str) and _UUID.search(val):
        return _UUID.sub("<id>", val)
    return None


@pytest.fixture
def aws() -> Iterator[dict[str, dict[str, str]]]:
    """A new, empty AWS account with the template's table, bucket, queues and secret."""
    with fresh_account() as physical:
        yield physical


@pytest.fixture
def aws_calls() -> Iterator[CallCounter]:
    counter = CallCounter()
    with counter.installed():
        yield counter
