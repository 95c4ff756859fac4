"""Remove Topic Data Source: DELETE /topics/{topicId}/data-sources/{dataSourceId} → 204 (404
`not_linked` when the data source is not linked to the topic)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.common import Id
from kallo.services import data_source_links
from kallo.web import caller, create_app, lambda_handler_for, no_content

app = create_app()


@app.delete(
    "/topics/<topicId>/data-sources/<dataSourceId>",
    summary="Remove Topic Data Source",
    tags=["Data Sources"],
    status_code=204,
)
def remove_topic_data_source(
    topicId: Annotated[Id, Path()],
    dataSourceId: Annotated[Id, Path()],
) -> Response[None]:
    data_source_links.remove_topic_data_source(caller(app), topicId, dataSourceId)
    return no_content()


lambda_handler = lambda_handler_for(app)
