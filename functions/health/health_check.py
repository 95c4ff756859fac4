"""Health Check: GET /health/{apiName} (no credentials) → 200 {apiName, status, version, time}."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.services import health
from kallo.web import create_app, lambda_handler_for, ok

app = create_app()


@app.get("/health/<apiName>", summary="Health Check", tags=["Health"])
def health_check(apiName: Annotated[health.ApiName, Path()]) -> Response[dict]:
    return ok(health.check(apiName))


lambda_handler = lambda_handler_for(app)
