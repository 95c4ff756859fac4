"""Query Prompts: GET /prompts?topicId= | userId= → 200 [prompt].

`topicId`: the topic's prompt, or [] when it has none. Otherwise a page of the prompts the user (the
caller by default) holds a grant on, itself or through its teams, by id, `x-next-token` for the next.
"""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from kallo.models.common import Id
from kallo.models.prompts import Prompt
from kallo.paging import PAGE_LIMIT, PageLimit
from kallo.services import prompts
from kallo.web import NextToken, caller, create_app, lambda_handler_for, ok

app = create_app()


@app.get("/prompts", summary="Query Prompts", tags=["Prompts"])
def query_prompts(
    topicId: Annotated[Id | None, Query(description="The topic whose prompt to return")] = None,
    userId: Annotated[Id | None, Query(description="Whose prompts (default: the caller)")] = None,
    limit: Annotated[PageLimit, Query(description="Page size, without topicId")] = PAGE_LIMIT,
    nextToken: NextToken = None,
) -> Response[list[Prompt]]:
    found, next_token = prompts.query_prompts(
        caller(app), topic_id=topicId, user_id=userId, limit=limit, next_token=nextToken
    )
    return ok(found, next_token=next_token)


lambda_handler = lambda_handler_for(app)
