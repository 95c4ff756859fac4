"""Add Topic Data Source: PUT /topics/{topicId}/data-sources/{dataSourceId} → 204 (idempotent)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.common import Id
from kallo.services import data_source_links
from kallo.web import caller, create_app, lambda_handler_for, no_content

app = create_app()


@app.put(
    "/topics/<topicId>/data-sources/<dataSourceId>",
    summary="Add Topic Data Source",
    tags=["Data Sources"],
    status_code=204,
)
def add_topic_data_source(
    topicId: Annotated[Id, Path()],
    dataSourceId: Annotated[Id, Path()],
) -> Response[None]:
    data_source_links.add_topic_data_source(caller(app), topicId, dataSourceId)
    return no_content()


lambda_handler = lambda_handler_for(app)
