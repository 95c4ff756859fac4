"""Query Steps: GET /steps?searchTerm=<words> → 200 [step], the steps holding every word that the caller
may view, newest first, a page at a time (`x-next-token` for the next)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from kallo.models.steps import Step
from kallo.models.ws import SearchTerm
from kallo.paging import PageLimit
from kallo.services import search
from kallo.web import NextToken, caller, create_app, lambda_handler_for, ok

app = create_app()
SEARCH_PAGE_LIMIT = 20


@app.get("/steps", summary="Query Steps", tags=["Convos"])
def query_steps(
    searchTerm: Annotated[
        SearchTerm, Query(description="Words the steps must all contain (case-insensitive)")
    ],
    limit: Annotated[PageLimit, Query(description="Page size (1..100)")] = SEARCH_PAGE_LIMIT,
    nextToken: NextToken = None,
) -> Response[list[Step]]:
    found, next_token = search.query_steps(caller(app), searchTerm, limit=limit, next_token=nextToken)
    return ok(found, next_token=next_token)


lambda_handler = lambda_handler_for(app)
