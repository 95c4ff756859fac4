"""A fresh moto account provisioned from template.yaml, with the functions' environment applied.
Used by the `aws` test fixture and by bench/aws_calls.py."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import botocore.client
from moto import mock_aws

from kallo import aws as kallo_aws
from kallo import realtime, websocket
from kallo.auth import authenticate, tokens
from kallo.settings import get_settings
from local import resources, template

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
TEMPLATE = template.load()


def reset_caches() -> None:
    get_settings.cache_clear()
    kallo_aws.reset_clients()
    tokens.signing_key.cache_clear()
    authenticate.forget_cached_credentials()
    # What WebSocket handlers keep in the process: connection items, verdicts, connection lists.
    websocket.forget_connections()
    realtime.reset()


@contextmanager
def fresh_account() -> Iterator[dict[str, dict[str, str]]]:
    """Yields the physical ids of the provisioned resources; restores the environment afterwards."""
    saved = dict(os.environ)
    os.environ.update(FAKE_CREDENTIALS)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        with mock_aws():
            physical = resources.provision(TEMPLATE)
            os.environ.update(template.function_environment(TEMPLATE, template.Resolver(TEMPLATE, physical)))
            reset_caches()
            yield physical
    finally:
        os.environ.clear()
        os.environ.update(saved)
        reset_caches()


class CallCounter:
    """Counts AWS API calls (`service:Operation`) made through any botocore client while installed."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def reset(self) -> None:
        self.calls.clear()

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def __getitem__(self, operation: str) -> int:
        return self.calls[operation]

    @contextmanager
    def installed(self) -> Iterator[CallCounter]:
        original = botocore.client.BaseClient._make_api_call
        counter = self

        def counting(client: botocore.client.BaseClient, operation_name: str, api_params: dict) -> dict:
            counter.calls[f"{client.meta.service_model.service_name}:{operation_name}"] += 1
            return original(client, operation_name, api_params)

        botocore.client.BaseClient._make_api_call = counting
        try:
            yield self
        finally:
            botocore.client.BaseClient._make_api_call = original


def s3_versions(prefix: str) -> list[str]:
    """The keys of every version and delete marker under a prefix of the uploads bucket."""
    from kallo.store import blobs

    listed = kallo_aws.client("s3").list_object_versions(Bucket=blobs.bucket(), Prefix=prefix)
    return [v["Key"] for v in [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])]]
