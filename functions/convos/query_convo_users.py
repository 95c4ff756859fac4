"""Query Convo Users: GET /convos/{convoId}/users[?contributors=1 | all=1] → 200 [userId]."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from kallo.models.common import Id
from kallo.models.convos import Flag
from kallo.services import convos
from kallo.web import caller, create_app, lambda_handler_for, ok

app = create_app()


@app.get("/convos/<convoId>/users", summary="Query Convo Users", tags=["Convos"])
def query_convo_users(
    convoId: Annotated[Id, Path()],
    contributors: Annotated[
        Flag | None, Query(description="Any non-empty value: the users who wrote at least one step")
    ] = None,
    everyone: Annotated[
        Flag | None,
        Query(
            alias="all",
            description="Any non-empty value: the convo's direct grantees, the members of the team "
            "that owns it, the direct grantees of the topic that owns it and the members of that "
            "topic's team",
        ),
    ] = None,
) -> Response[list[str]]:
    users = convos.query_convo_users(
        caller(app), convoId, contributors=bool(contributors), everyone=bool(everyone)
    )
    return ok(users)


lambda_handler = lambda_handler_for(app)
