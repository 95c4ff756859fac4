"""Delete a Data Source: DELETE /data-sources/{dataSourceId} → 204 (its grants, links, summary and every
version of its files in S3 go too)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.common import Id
from kallo.services import data_source_links
from kallo.web import caller, create_app, lambda_handler_for, no_content

app = create_app()


@app.delete(
    "/data-sources/<dataSourceId>", summary="Delete a Data Source", tags=["Data Sources"], status_code=204
)
def delete_data_source(dataSourceId: Annotated[Id, Path()]) -> Response[None]:
    data_source_links.delete_data_source(caller(app), dataSourceId)
    return no_content()


lambda_handler = lambda_handler_for(app)
