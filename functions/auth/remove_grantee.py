"""Remove Grantee from Object:
DELETE /auth/grantees?objectType=&objectId=&granteeId=&granteeType=&granteeRole= → 204.

Takes the grantee's role away. It needs `can_remove_<role>` on the object, except for the caller's own
grant (leaving). 404 when the caller cannot view the object or the grantee does not hold exactly that
role; 403 without the permission. Owners change only through PUT /auth/grantees (400
`use_put_for_owner`); `dependent` links go with their dedicated endpoints (400 `use_link_endpoint`).
"""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from kallo.authz.policy import GranteeType, ObjectType, Role
from kallo.models.common import Id
from kallo.services import grantees
from kallo.store.keys import Ref
from kallo.web import caller, create_app, lambda_handler_for, no_content

app = create_app()


@app.delete(
    "/auth/grantees",
    summary="Remove Grantee from Object",
    tags=["Auth"],
    status_code=204,
    description=__doc__,
)
def remove_grantee(
    objectType: Annotated[ObjectType, Query()],
    objectId: Annotated[Id, Query()],
    granteeId: Annotated[Id, Query(description="The grantee's ID")],
    granteeType: Annotated[GranteeType, Query(description="The grantee's type")],
    granteeRole: Annotated[Role, Query(description="The grantee's role to remove")],
) -> Response[None]:
    obj = grantees.object_ref(objectType, objectId)
    grantees.remove_grantee(caller(app), obj, Ref(granteeType.value, granteeId), granteeRole)
    return no_content()


lambda_handler = lambda_handler_for(app)
