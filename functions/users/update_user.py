"""Update a User: PATCH /users/{userId} {displayName?, photoUrl?} → 200 user (the user itself, or the
service account that created it)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.common import Id
from kallo.models.users import User, UserUpdate
from kallo.services import users
from kallo.web import caller, create_app, lambda_handler_for, ok

app = create_app()


@app.patch("/users/<userId>", summary="Update a User", tags=["Users"])
def update_user(
    userId: Annotated[Id, Path(description="The ID of the user")], body: UserUpdate
) -> Response[User]:
    return ok(User.model_validate(users.update_user(caller(app), userId, body)))


lambda_handler = lambda_handler_for(app)
