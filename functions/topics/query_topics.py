"""Query Topics: GET /topics[?topicIds=<comma-separated>] → 200 [topic].

With `topicIds`: those of the listed topics the caller can view, in the order given. Without: a page of
every topic the caller can view (its own grants and its teams'), by id, `x-next-token` for the next.
"""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from kallo.models.topics import Topic, TopicIds
from kallo.paging import PAGE_LIMIT, PageLimit
from kallo.services import topics
from kallo.web import NextToken, caller, create_app, lambda_handler_for, ok

app = create_app()


@app.get("/topics", summary="Query Topics", tags=["Topics"])
def query_topics(
    topicIds: Annotated[
        TopicIds | None,
        Query(description="Comma-separated topic ids (at most 100); unknown or hidden ones are left out"),
    ] = None,
    limit: Annotated[PageLimit, Query(description="Page size, without topicIds")] = PAGE_LIMIT,
    nextToken: NextToken = None,
) -> Response[list[Topic]]:
    found, next_token = topics.query_topics(caller(app), topicIds, limit=limit, next_token=nextToken)
    return ok(found, next_token=next_token)


lambda_handler = lambda_handler_for(app)
