"""Get/Create a User: GET /users?userId= | firebaseId= | email= (exactly one) → 200 user, or 201 when
created on the fly.

The one operation an OpenID Connect identity without a user may call: `firebaseId=<its own sub>`
registers it (201, then 200; I2: keyed by issuer and sub, a verified email accepts its invitations).
A service account creates its own users by `email` (201; the address unverified and unique within the
service account) and holds authority over them (I1); it cannot claim a `firebaseId` (403
`identity_reserved`). Users the caller is not and has no authority over are 404.
"""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from kallo.models.common import Email, Id
from kallo.models.users import FirebaseId, User
from kallo.services import users
from kallo.web import caller, create_app, created, lambda_handler_for, ok

app = create_app()


@app.get(
    "/users",
    summary="Get/Create a User",
    tags=["Users"],
    responses={
        200: {"description": "The existing user"},
        201: {"description": "The user, created on the fly (registration, or by a service account)"},
    },
)
def get_or_create_user(
    userId: Annotated[Id | None, Query(description="The Kallo ID of the user")] = None,
    firebaseId: Annotated[FirebaseId | None, Query(description="The Firebase ID of the user")] = None,
    email: Annotated[Email | None, Query(description="The user's email address")] = None,
) -> Response[User]:
    access = caller(app, allow_unregistered=True)
    user, is_new = users.get_or_create_user(access, user_id=userId, firebase_id=firebaseId, email=email)
    return (created if is_new else ok)(User.model_validate(user))


lambda_handler = lambda_handler_for(app)
