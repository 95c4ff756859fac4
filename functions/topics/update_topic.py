"""Update Topic: PATCH /topics/{topicId} {name?, description?, config?, dataSourceIds?} → 200 topic."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.common import Id
from kallo.models.topics import Topic, TopicUpdate
from kallo.services import topics
from kallo.web import caller, create_app, lambda_handler_for, ok

app = create_app()


@app.patch("/topics/<topicId>", summary="Update Topic", tags=["Topics"])
def update_topic(topicId: Annotated[Id, Path()], body: TopicUpdate) -> Response[Topic]:
    return ok(topics.update_topic(caller(app), topicId, body))


lambda_handler = lambda_handler_for(app)
