"""Get Dashboard User Stats: GET /users/stats[?userId=] → 200 {convos, teams, sources}: how many convos,
teams and data sources the user (the caller by default) holds a direct grant on."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from kallo.models.common import Id
from kallo.models.users import UserStats
from kallo.services import users
from kallo.web import caller, create_app, lambda_handler_for, ok

app = create_app()


@app.get("/users/stats", summary="Get Dashboard User Stats", tags=["Users"])
def get_user_stats(
    userId: Annotated[Id | None, Query(description="The ID of the user (default: the caller)")] = None,
) -> Response[UserStats]:
    return ok(UserStats.model_validate(users.user_stats(caller(app), userId)))


lambda_handler = lambda_handler_for(app)
