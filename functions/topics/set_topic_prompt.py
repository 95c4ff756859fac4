"""Set Topic Prompt: PUT /topics/{topicId}/prompts/{promptId} → 204 (idempotent)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.common import Id
from kallo.services import topics
from kallo.web import caller, create_app, lambda_handler_for, no_content

app = create_app()


@app.put("/topics/<topicId>/prompts/<promptId>", summary="Set Topic Prompt", tags=["Topics"], status_code=204)
def set_topic_prompt(topicId: Annotated[Id, Path()], promptId: Annotated[Id, Path()]) -> Response[None]:
    topics.set_topic_prompt(caller(app), topicId, promptId)
    return no_content()


lambda_handler = lambda_handler_for(app)
