"""Generate Summary: POST /data-sources/{dataSourceId}/summary → 200 `{content, annotations}` when the
summary exists, else 202 `{retryAfter}` with a `Retry-After` header while a worker writes it."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.common import Id
from kallo.models.data_sources import Summary, SummaryPending
from kallo.services import summaries
from kallo.web import accepted, caller, create_app, lambda_handler_for, ok

app = create_app()


@app.post(
    "/data-sources/<dataSourceId>/summary",
    summary="Generate Summary",
    description="The summary of a processed data source, written once by a worker and kept. The first "
    "request starts it (202); ask again after `retryAfter` (also the `Retry-After` header, in seconds). "
    "A data source that failed to process has no summary (409 `not_processable`).",
    tags=["Data Sources"],
    responses={
        200: {
            "description": "The summary, with citations of the data source",
            "content": {"application/json": {"model": Summary}},
        },
        202: {
            "description": "The summary is being written",
            "content": {"application/json": {"model": SummaryPending}},
        },
    },
)
def generate_summary(dataSourceId: Annotated[Id, Path()]) -> Response[Summary | SummaryPending]:
    body, status = summaries.request(caller(app), dataSourceId)
    if status == 200:
        return ok(body)
    response = accepted(body)
    response.headers["Retry-After"] = str(summaries.RETRY_AFTER_SECONDS)
    return response


lambda_handler = lambda_handler_for(app)
