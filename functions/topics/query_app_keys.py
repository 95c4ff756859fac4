"""Query App Keys: GET /topics/{topicId}/app-keys → 200 [{id, name, keyPrefix, createdAt, createdBy,
lastUsedAt?}] (never the keys themselves)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.app_keys import AppKeySummary
from kallo.models.common import Id
from kallo.services import app_keys
from kallo.web import caller, create_app, lambda_handler_for, ok

app = create_app()


@app.get("/topics/<topicId>/app-keys", summary="Query App Keys", tags=["Topics"])
def query_app_keys(topicId: Annotated[Id, Path()]) -> Response[list[AppKeySummary]]:
    return ok(app_keys.query_app_keys(caller(app), topicId))


lambda_handler = lambda_handler_for(app)
