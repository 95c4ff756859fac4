"""Add Convo Data Source: PUT /convos/{convoId}/data-sources/{dataSourceId} → 204 (idempotent)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.common import Id
from kallo.services import data_source_links
from kallo.web import caller, create_app, lambda_handler_for, no_content

app = create_app()


@app.put(
    "/convos/<convoId>/data-sources/<dataSourceId>",
    summary="Add Convo Data Source",
    tags=["Convos"],
    status_code=204,
)
def add_convo_data_source(
    convoId: Annotated[Id, Path()],
    dataSourceId: Annotated[Id, Path()],
) -> Response[None]:
    data_source_links.add_convo_data_source(caller(app), convoId, dataSourceId)
    return no_content()


lambda_handler = lambda_handler_for(app)
