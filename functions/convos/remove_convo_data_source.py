"""Remove Convo Data Source: DELETE /convos/{convoId}/data-sources/{dataSourceId} → 204 (404
`not_linked` when the data source is not linked to the convo)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.common import Id
from kallo.services import data_source_links
from kallo.web import caller, create_app, lambda_handler_for, no_content

app = create_app()


@app.delete(
    "/convos/<convoId>/data-sources/<dataSourceId>",
    summary="Remove Convo Data Source",
    tags=["Convos"],
    status_code=204,
)
def remove_convo_data_source(
    convoId: Annotated[Id, Path()],
    dataSourceId: Annotated[Id, Path()],
) -> Response[None]:
    data_source_links.remove_convo_data_source(caller(app), convoId, dataSourceId)
    return no_content()


lambda_handler = lambda_handler_for(app)
