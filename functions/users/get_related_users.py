"""Get Related Users: GET /users/{userId}/related → 200 [user]: the users who are grantees of the same
teams, topics or convos as the user, ordered by id, paged with `limit` / `nextToken`."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from kallo.models.common import Id
from kallo.models.users import User
from kallo.paging import PAGE_LIMIT, PageLimit
from kallo.services import users
from kallo.web import NextToken, caller, create_app, lambda_handler_for, ok

app = create_app()


@app.get("/users/<userId>/related", summary="Get Related Users", tags=["Users"])
def get_related_users(
    userId: Annotated[Id, Path(description="The ID of the user")],
    limit: Annotated[PageLimit, Query(description="Page size")] = PAGE_LIMIT,
    nextToken: NextToken = None,
) -> Response[list[User]]:
    found, next_token = users.related_users(caller(app), userId, limit=limit, next_token=nextToken)
    return ok([User.model_validate(u) for u in found], next_token=next_token)


lambda_handler = lambda_handler_for(app)
