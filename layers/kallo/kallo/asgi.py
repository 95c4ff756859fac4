"""The Lambda entry point of an ASGI app (the compatibility surfaces, the console), apart from
`kallo.surfaces` so that a function serving only files does not load the surfaces' authentication,
quotas and store."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from mangum import Mangum
from starlette.types import ASGIApp

logger = Logger()


def lambda_handler_for_asgi(app: ASGIApp) -> Callable[[dict, Any], dict]:
    """Mangum turns the API Gateway proxy event into an ASGI request and the (whole, buffered) ASGI
    response into the proxy result. The event is never logged (its headers carry credentials).
    `asgi_app` lets the local stack serve the app itself, so that its event streams really stream, as
    behind the streaming Function URL."""
    adapter = Mangum(app, lifespan="off")

    @logger.inject_lambda_context(clear_state=True, log_event=False)
    def lambda_handler(event: dict, context: Any) -> dict:
        return adapter(event, context)

    lambda_handler.asgi_app = app  # type: ignore[attr-defined]
    return lambda_handler
