"""Query Grantees of an Object: GET /auth/grantees?objectType=&objectId= → 200 [grantee].

The object's direct grants `{id, type, role}` (teams, topics and convos first, then users; `dependent`
grantees are the convos and topics a data source or prompt is linked to), for whoever can view the
object (404 otherwise). Paged: `limit` (1..100) and `nextToken`, the next cursor in `x-next-token`.
"""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from kallo.authz.policy import ObjectType
from kallo.models.auth import GranteeView
from kallo.models.common import Id
from kallo.paging import PAGE_LIMIT, PageLimit
from kallo.services import grantees
from kallo.web import NextToken, caller, create_app, lambda_handler_for, ok

app = create_app()


@app.get("/auth/grantees", summary="Query Grantees of an Object", tags=["Auth"], description=__doc__)
def query_grantees(
    objectType: Annotated[ObjectType, Query()],
    objectId: Annotated[Id, Query()],
    limit: Annotated[PageLimit, Query(description="Page size")] = PAGE_LIMIT,
    nextToken: NextToken = None,
) -> Response[list[GranteeView]]:
    found, next_token = grantees.query_grantees(
        caller(app), grantees.object_ref(objectType, objectId), limit=limit, next_token=nextToken
    )
    return ok(found, next_token=next_token)


lambda_handler = lambda_handler_for(app)
