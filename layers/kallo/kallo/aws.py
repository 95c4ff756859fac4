"""boto3 clients, created lazily once per container so cold starts only pay for what a function uses.

The endpoint comes from the standard `AWS_ENDPOINT_URL` variable, which is how the local stack points
every function at the embedded AWS services.
"""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10)
    if service == "s3":
        # boto3 would presign with the deprecated Signature Version 2 in us-east-1 (`Expires`, the
        # secret key's whole scope); version 4 bounds a URL's life (`X-Amz-Expires`, at most 7 days).
        config = config.merge(Config(signature_version="s3v4"))
    return boto3.session.Session().client(service, config=config)


def reset_clients() -> None:
    """Forget cached clients (tests start every case with fresh ones)."""
    client.cache_clear()
