"""Query Permissions: POST /auth/permissions {userId?, objectId, objectType, permissions[]} → 200, the
same shape with `permissions` narrowed to those the user holds, in the order asked.

Without `userId` (or with the caller's own) the caller's permissions, its access token's scope applied;
a hidden or unknown object then holds none. Another user's need authority over that user (a service
account over the users it created, nothing else: I1) and the caller's own `can_view` on
the object: else 404.
"""

from aws_lambda_powertools.event_handler import Response

from kallo.models.auth import PermissionsQuery, PermissionsResult
from kallo.services import permissions
from kallo.web import caller, create_app, lambda_handler_for, ok

app = create_app()


@app.post("/auth/permissions", summary="Query Permissions", tags=["Auth"], description=__doc__)
def query_permissions(body: PermissionsQuery) -> Response[PermissionsResult]:
    return ok(permissions.query_permissions(caller(app), body))


lambda_handler = lambda_handler_for(app)
