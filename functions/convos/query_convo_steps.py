"""Query Convo Steps: GET /convos/{convoId}/steps[?after=<date-time>] → 200 [step], oldest first, a page
at a time (`x-next-token` for the next)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from kallo.models.common import DateTime, Id
from kallo.models.steps import Step
from kallo.paging import STEP_PAGE_LIMIT, StepPageLimit
from kallo.services import convos
from kallo.web import NextToken, caller, create_app, lambda_handler_for, ok

app = create_app()


@app.get("/convos/<convoId>/steps", summary="Query Convo Steps", tags=["Convos"])
def query_convo_steps(
    convoId: Annotated[Id, Path()],
    after: Annotated[
        DateTime | None, Query(description="RFC 3339: only the steps created after this time")
    ] = None,
    limit: Annotated[StepPageLimit, Query(description="Page size (1..500)")] = STEP_PAGE_LIMIT,
    nextToken: NextToken = None,
) -> Response[list[Step]]:
    found, next_token = convos.query_convo_steps(
        caller(app), convoId, after=after, limit=limit, next_token=nextToken
    )
    return ok(found, next_token=next_token)


lambda_handler = lambda_handler_for(app)
