"""Query Teams: GET /teams[?userId=] → 200 [team]: the teams the user (the caller, or a user it has
authority over) holds any role on, by id, paged with `limit` / `nextToken` (`x-next-token`)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from kallo.models.common import Id
from kallo.models.teams import Team
from kallo.paging import PAGE_LIMIT, PageLimit
from kallo.services import teams
from kallo.web import NextToken, caller, create_app, lambda_handler_for, ok

app = create_app()


@app.get("/teams", summary="Query Teams", tags=["Teams"])
def query_teams(
    userId: Annotated[
        Id | None, Query(description="The user whose teams are listed (default: the caller)")
    ] = None,
    limit: Annotated[PageLimit, Query(description="Page size")] = PAGE_LIMIT,
    nextToken: NextToken = None,
) -> Response[list[Team]]:
    found, next_token = teams.query_teams(caller(app), userId, limit=limit, next_token=nextToken)
    return ok(found, next_token=next_token)


lambda_handler = lambda_handler_for(app)
