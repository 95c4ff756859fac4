"""Create a Convo: POST /convos[?topicId= | teamId= | userId=] → 201 convo.

The owner is the topic or team named (the caller needs can_chat on it, and also becomes the convo's
admin), the user named (one the caller has authority over), or else the caller.
"""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from kallo.models.common import Id
from kallo.models.convos import Convo, ConvoCreate
from kallo.services import convos
from kallo.web import caller, create_app, created, lambda_handler_for

app = create_app()


@app.post("/convos", summary="Create a Convo", tags=["Convos"], status_code=201)
def create_convo(
    # Every field is optional, so is the body: `POST /convos` alone starts an unnamed convo.
    body: Annotated[ConvoCreate | None, Body()] = None,
    topicId: Annotated[Id | None, Query(description="The topic that will own the convo")] = None,
    teamId: Annotated[Id | None, Query(description="The team that will own the convo")] = None,
    userId: Annotated[Id | None, Query(description="The user that will own the convo")] = None,
) -> Response[Convo]:
    return created(
        convos.create_convo(
            caller(app), body or ConvoCreate(), topic_id=topicId, team_id=teamId, user_id=userId
        )
    )


lambda_handler = lambda_handler_for(app)
