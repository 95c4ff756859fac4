"""Get a Team's Users: GET /teams/{teamId}/users → 200 [teamUser], by user id, paged with `limit` /
`nextToken` (`x-next-token`)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from kallo.models.common import Id
from kallo.models.teams import TeamUser
from kallo.paging import PAGE_LIMIT, PageLimit
from kallo.services import teams
from kallo.web import NextToken, caller, create_app, lambda_handler_for, ok

app = create_app()


@app.get("/teams/<teamId>/users", summary="Get a Team's Users", tags=["Teams"])
def get_team_users(
    teamId: Annotated[Id, Path()],
    limit: Annotated[PageLimit, Query(description="Page size")] = PAGE_LIMIT,
    nextToken: NextToken = None,
) -> Response[list[TeamUser]]:
    found, next_token = teams.get_team_users(caller(app), teamId, limit=limit, next_token=nextToken)
    return ok(found, next_token=next_token)


lambda_handler = lambda_handler_for(app)
