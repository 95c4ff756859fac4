"""Set Grantees for Object: PUT /auth/grantees?objectType=&objectId= body [grantee] → 200 [grantee].

Replaces every direct grantee of the object with the body's (at most 99, each with an `id`, none twice,
exactly one with role `owner`: else 400), in one transaction; this is how an owner changes. Only whoever
holds `can_add_owner` and `can_remove_owner` (the owner) may do it (404 when it cannot view the object,
403 when it can). Each grantee follows Add Grantee's rules. `dependent` grants (data source and prompt
links) are kept and may not be listed. A replacement that takes more than 100 writes is refused with
400 `too_many_grantees`. The answer is the object's grantees afterwards: the body's, then the links.
"""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from kallo.authz.policy import ObjectType
from kallo.models.auth import MAX_GRANTEES, GranteeView
from kallo.models.common import Grantee, Id
from kallo.services import grantees
from kallo.web import caller, create_app, lambda_handler_for, ok

app = create_app()


@app.put("/auth/grantees", summary="Set Grantees for Object", tags=["Auth"], description=__doc__)
def set_grantees(
    # Spelt out here: Powertools reads a list body's type only when Body() annotates it directly.
    body: Annotated[
        list[Grantee],
        Body(
            max_length=MAX_GRANTEES,
            description="Every direct grantee the object keeps, one of them its owner",
        ),
    ],
    objectType: Annotated[ObjectType, Query()],
    objectId: Annotated[Id, Query()],
) -> Response[list[GranteeView]]:
    obj = grantees.object_ref(objectType, objectId)
    return ok(grantees.set_grantees(caller(app), obj, body))


lambda_handler = lambda_handler_for(app)
