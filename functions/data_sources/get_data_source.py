"""Get a Data Source: GET /data-sources/{dataSourceId} → 200 dataSource."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.common import Id
from kallo.models.data_sources import DataSource
from kallo.services import data_sources
from kallo.web import caller, create_app, lambda_handler_for, ok

app = create_app()


@app.get("/data-sources/<dataSourceId>", summary="Get a Data Source", tags=["Data Sources"])
def get_data_source(dataSourceId: Annotated[Id, Path()]) -> Response[DataSource]:
    return ok(data_sources.get_data_source(caller(app), dataSourceId))


lambda_handler = lambda_handler_for(app)
