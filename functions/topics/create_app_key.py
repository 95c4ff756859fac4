"""Create App Key: POST /topics/{topicId}/app-keys {name} → 201 {id, name, key, createdAt, createdBy}
(the key shown once; it works on the compatibility surfaces only)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.app_keys import AppKeyCreate, NewAppKey
from kallo.models.common import Id
from kallo.services import app_keys
from kallo.web import caller, create_app, created, lambda_handler_for

app = create_app()


@app.post("/topics/<topicId>/app-keys", summary="Create App Key", tags=["Topics"], status_code=201)
def create_app_key(topicId: Annotated[Id, Path()], body: AppKeyCreate) -> Response[NewAppKey]:
    return created(app_keys.create_app_key(caller(app), topicId, body))


lambda_handler = lambda_handler_for(app)
