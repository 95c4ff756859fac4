"""Revoke App Key: DELETE /topics/{topicId}/app-keys/{appKeyId} → 204; the key is refused everywhere
within a minute."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.common import Id
from kallo.services import app_keys
from kallo.web import caller, create_app, lambda_handler_for, no_content

app = create_app()


@app.delete(
    "/topics/<topicId>/app-keys/<appKeyId>", summary="Revoke App Key", tags=["Topics"], status_code=204
)
def revoke_app_key(topicId: Annotated[Id, Path()], appKeyId: Annotated[Id, Path()]) -> Response[None]:
    app_keys.revoke_app_key(caller(app), topicId, appKeyId)
    return no_content()


lambda_handler = lambda_handler_for(app)
