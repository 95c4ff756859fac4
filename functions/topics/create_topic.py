"""Create New Topic: POST /topics[?userId= | teamId=] → 201 topic."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from kallo.models.common import Id
from kallo.models.topics import Topic, TopicCreate
from kallo.services import topics
from kallo.web import caller, create_app, created, lambda_handler_for

app = create_app()


@app.post("/topics", summary="Create New Topic", tags=["Topics"], status_code=201)
def create_topic(
    body: TopicCreate,
    userId: Annotated[Id | None, Query(description="The user that will own the topic")] = None,
    teamId: Annotated[Id | None, Query(description="The team that will own the topic")] = None,
) -> Response[Topic]:
    return created(topics.create_topic(caller(app), body, user_id=userId, team_id=teamId))


lambda_handler = lambda_handler_for(app)
