"""Add a Team User: PUT /teams/{teamId}/users/{userId} → 200 teamUser (a new user becomes a `member`;
one who already holds a role keeps it)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.common import Id
from kallo.models.teams import TeamUser
from kallo.services import teams
from kallo.web import caller, create_app, lambda_handler_for, ok

app = create_app()


@app.put("/teams/<teamId>/users/<userId>", summary="Add a Team User", tags=["Teams"])
def add_team_user(
    teamId: Annotated[Id, Path(description="The team the user is added to")],
    userId: Annotated[Id, Path(description="The user added to the team")],
) -> Response[TeamUser]:
    return ok(teams.add_team_user(caller(app), teamId, userId))


lambda_handler = lambda_handler_for(app)
