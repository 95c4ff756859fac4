"""The handlers' entry points never log their event: its query string and headers carry credentials (a
browser's WebSocket `?token=`, x-api-key, Authorization), and POWERTOOLS_LOGGER_LOG_EVENT, set to debug
something, must not write them to CloudWatch."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

import pytest
from aws_lambda_powertools import Logger

from kallo import web, websocket
from kallo.models.common import ApiModel
from tests.support.api import LambdaContext, sample_event
from tests.support.ws import sample_event as ws_sample_event

SECRET = "query-secret-0123456789"
HEADER_SECRET = "kallo_header-secret-0123456789"


class Pong(ApiModel):
    pong: bool


@pytest.fixture
def log(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> Callable[[Logger], None]:
    """Asks Powertools to log every event (the variable is read when a handler is decorated), and
    captures what a module's logger writes, at every level."""
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")

    def capture(logger: Logger) -> None:
        caplog.set_level(logging.DEBUG, logger=logger.name)

    return capture


def _with_credentials(event: dict[str, Any]) -> dict[str, Any]:
    event["queryStringParameters"] = {**(event.get("queryStringParameters") or {}), "token": SECRET}
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in event["queryStringParameters"].items()}
    event["headers"] = {**(event.get("headers") or {}), "x-api-key": HEADER_SECRET}
    event["multiValueHeaders"] = {k: [v] for k, v in event["headers"].items()}
    return event


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)


def test_the_rest_entry_point_never_logs_the_query_string(log, caplog) -> None:
    log(web.logger)
    app = web.create_app()

    @app.get("/health/core-api")
    def ping() -> Pong:
        web.logger.info("handled")  # proves the capture sees what the handler logs
        return Pong(pong=True)

    handler = web.lambda_handler_for(app)  # decorated now, with POWERTOOLS_LOGGER_LOG_EVENT set
    response = handler(_with_credentials(sample_event("health.health_check")), LambdaContext())
    assert response["statusCode"] == 200
    logged = _logged(caplog)
    assert "handled" in logged
    assert SECRET not in logged and HEADER_SECRET not in logged


@pytest.mark.usefixtures("aws")
def test_the_websocket_entry_point_never_logs_the_connect_query_string(log, caplog) -> None:
    log(websocket.logger)
    handler = websocket.lambda_handler_for(websocket.connect)
    response = handler(_with_credentials(ws_sample_event("connect")), LambdaContext())
    assert response["statusCode"] == 401  # the token is not a JWT of ours
    logged = _logged(caplog)
    assert SECRET not in logged and HEADER_SECRET not in logged


@pytest.mark.usefixtures("aws")
def test_the_authorizer_never_logs_the_credentials(log, caplog) -> None:
    authorizer = importlib.reload(
        importlib.import_module("auth.authorizer")
    )  # decorated with the variable set
    log(authorizer.logger)
    with pytest.raises(Exception, match="Unauthorized"):
        authorizer.lambda_handler(_with_credentials(sample_event("auth.authorizer")), LambdaContext())
    logged = _logged(caplog)
    assert "refused credentials" in logged  # the refusal is logged, its credentials are not
    assert SECRET not in logged and HEADER_SECRET not in logged
