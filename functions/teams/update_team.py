"""Update a Team: PATCH /teams/{teamId} {name} → 200 team (admins and the owner)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.common import Id
from kallo.models.teams import Team, TeamUpdate
from kallo.services import teams
from kallo.web import caller, create_app, lambda_handler_for, ok

app = create_app()


@app.patch("/teams/<teamId>", summary="Update a Team", tags=["Teams"])
def update_team(teamId: Annotated[Id, Path()], body: TeamUpdate) -> Response[Team]:
    return ok(teams.update_team(caller(app), teamId, body))


lambda_handler = lambda_handler_for(app)
