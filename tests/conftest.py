"""Shared fixtures: a fresh moto account provisioned from template.yaml for every test that asks for
`aws`, and a counter of AWS API calls for call-count budgets."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator

import botocore.client
import pytest

os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    POWERTOOLS_SERVICE_NAME="kallo-test",
    POWERTOOLS_LOG_LEVEL="WARNING",
)
os.environ.pop("AWS_ENDPOINT_URL", None)

from moto import mock_aws

from kallo import aws as kallo_aws
from kallo.auth import authenticate, tokens
from kallo.settings import get_settings
from local import resources, template

TEMPLATE = template.load()


def reset_caches() -> None:
    get_settings.cache_clear()
    kallo_aws.reset_clients()
    tokens.signing_key.cache_clear()
    authenticate.forget_cached_credentials()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, dict[str, str]]]:
    """A new, empty AWS account with the template's table, bucket, queues and secret."""
    with mock_aws():
        physical = resources.provision(TEMPLATE)
        environment = template.function_environment(TEMPLATE, template.Resolver(TEMPLATE, physical))
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        reset_caches()
        yield physical
    reset_caches()


class CallCounter:
    """Counts AWS API calls (service:Operation) made through any botocore client."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def reset(self) -> None:
        self.calls.clear()

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def __getitem__(self, operation: str) -> int:
        return self.calls[operation]


@pytest.fixture
def aws_calls(monkeypatch: pytest.MonkeyPatch) -> CallCounter:
    counter = CallCounter()
    original = botocore.client.BaseClient._make_api_call

    def counting(self: botocore.client.BaseClient, operation_name: str, api_params: dict) -> dict:
        counter.calls[f"{self.meta.service_model.service_name}:{operation_name}"] += 1
        return original(self, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
    return counter
