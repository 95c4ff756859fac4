"""Remove Topic Prompt: DELETE /topics/{topicId}/prompt → 204, whether or not a prompt was set."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.common import Id
from kallo.services import topics
from kallo.web import caller, create_app, lambda_handler_for, no_content

app = create_app()


@app.delete("/topics/<topicId>/prompt", summary="Remove Topic Prompt", tags=["Topics"], status_code=204)
def remove_topic_prompt(topicId: Annotated[Id, Path()]) -> Response[None]:
    topics.remove_topic_prompt(caller(app), topicId)
    return no_content()


lambda_handler = lambda_handler_for(app)
