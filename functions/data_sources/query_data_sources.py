"""Query Data Sources: GET /data-sources[?dataSourceIds= | convoId= | topicId= | userId=] → 200 [dataSource].

At most one filter. `dataSourceIds`: those the caller can view, in the order given. `convoId` / `topicId`:
its linked data sources (a topic's in its `dataSourceIds` order, then by link time). `userId`: those the
user uploaded. None: a page of the data sources the caller holds a grant on, by id, `x-next-token` for
the next (`userId` pages the same way).
"""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from kallo.models.common import Id
from kallo.models.data_sources import DataSource, DataSourceIds
from kallo.paging import PAGE_LIMIT, PageLimit
from kallo.services import data_sources
from kallo.web import NextToken, caller, create_app, lambda_handler_for, ok

app = create_app()


@app.get("/data-sources", summary="Query Data Sources", tags=["Data Sources"])
def query_data_sources(
    dataSourceIds: Annotated[
        DataSourceIds | None,
        Query(
            description="Comma-separated data source ids (at most 100); unknown or hidden ones are left out"
        ),
    ] = None,
    convoId: Annotated[Id | None, Query(description="The convo whose linked data sources to return")] = None,
    topicId: Annotated[Id | None, Query(description="The topic whose linked data sources to return")] = None,
    userId: Annotated[Id | None, Query(description="Only the data sources this user uploaded")] = None,
    limit: Annotated[
        PageLimit, Query(description="Page size, without dataSourceIds / convoId / topicId")
    ] = PAGE_LIMIT,
    nextToken: NextToken = None,
) -> Response[list[DataSource]]:
    found, next_token = data_sources.query_data_sources(
        caller(app),
        data_source_ids=dataSourceIds,
        convo_id=convoId,
        topic_id=topicId,
        user_id=userId,
        limit=limit,
        next_token=nextToken,
    )
    return ok(found, next_token=next_token)


lambda_handler = lambda_handler_for(app)
