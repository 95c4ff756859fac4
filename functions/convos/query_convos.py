"""Query Convos: GET /convos?topicId= | userId= [&includeLatestStep=1] → 200 [convo].

`topicId`: the convos the topic owns. Otherwise the convos the user (the caller by default) created or
joined. Newest first, a page at a time (`x-next-token` for the next); a page may hold fewer than `limit`
convos, even none, while grants outlive deleted convos or fall outside an access token's scope.
"""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from kallo.models.common import Id
from kallo.models.convos import Convo, Flag
from kallo.paging import PAGE_LIMIT, PageLimit
from kallo.services import convos
from kallo.web import NextToken, caller, create_app, lambda_handler_for, ok

app = create_app()


@app.get("/convos", summary="Query Convos", tags=["Convos"])
def query_convos(
    topicId: Annotated[Id | None, Query(description="The topic whose convos to return")] = None,
    userId: Annotated[
        Id | None, Query(description="Whose convos, created or joined (default: the caller)")
    ] = None,
    includeLatestStep: Annotated[
        Flag | None, Query(description="Any non-empty value adds each convo's latestStep")
    ] = None,
    limit: Annotated[PageLimit, Query(description="Page size")] = PAGE_LIMIT,
    nextToken: NextToken = None,
) -> Response[list[Convo]]:
    found, next_token = convos.query_convos(
        caller(app),
        topic_id=topicId,
        user_id=userId,
        include_latest_step=bool(includeLatestStep),
        limit=limit,
        next_token=nextToken,
    )
    return ok(found, next_token=next_token)


lambda_handler = lambda_handler_for(app)
