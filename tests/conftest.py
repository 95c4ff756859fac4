"""Shared fixtures: a fresh moto account provisioned from template.yaml for every test that asks for
`aws`, and a counter of AWS API calls for call-count budgets."""

from __future__ import annotations

import os
from collections.abc import Iterator

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
