"""Delete a Team: DELETE /teams/{teamId} → 204 (the owner only; 409 `team_not_empty` while the team
still owns topics, convos, prompts or data sources)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.common import Id
from kallo.services import teams
from kallo.web import caller, create_app, lambda_handler_for, no_content

app = create_app()


@app.delete("/teams/<teamId>", summary="Delete a Team", tags=["Teams"], status_code=204)
def delete_team(teamId: Annotated[Id, Path()]) -> Response[None]:
    teams.delete_team(caller(app), teamId)
    return no_content()


lambda_handler = lambda_handler_for(app)
