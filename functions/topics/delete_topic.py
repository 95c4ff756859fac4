"""Delete Topic: DELETE /topics/{topicId} → 204 (its convos, grants and links go through the purge
worker)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.common import Id
from kallo.services import topics
from kallo.web import caller, create_app, lambda_handler_for, no_content

app = create_app()


@app.delete("/topics/<topicId>", summary="Delete Topic", tags=["Topics"], status_code=204)
def delete_topic(topicId: Annotated[Id, Path()]) -> Response[None]:
    topics.delete_topic(caller(app), topicId)
    return no_content()


lambda_handler = lambda_handler_for(app)
