"""Remove a Team User: DELETE /teams/{teamId}/users/{userId} → 204 (409 `owner_cannot_be_removed` for
the owner)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.common import Id
from kallo.services import teams
from kallo.web import caller, create_app, lambda_handler_for, no_content

app = create_app()


@app.delete("/teams/<teamId>/users/<userId>", summary="Remove a Team User", tags=["Teams"], status_code=204)
def remove_team_user(
    teamId: Annotated[Id, Path(description="The team the user is removed from")],
    userId: Annotated[Id, Path(description="The user removed from the team")],
) -> Response[None]:
    teams.remove_team_user(caller(app), teamId, userId)
    return no_content()


lambda_handler = lambda_handler_for(app)
