"""Update a Data Source: PATCH /data-sources/{dataSourceId} {name} → 200 dataSource."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.common import Id
from kallo.models.data_sources import DataSource, DataSourceUpdate
from kallo.services import data_sources
from kallo.web import caller, create_app, lambda_handler_for, ok

app = create_app()


@app.patch("/data-sources/<dataSourceId>", summary="Update a Data Source", tags=["Data Sources"])
def update_data_source(
    dataSourceId: Annotated[Id, Path()],
    body: DataSourceUpdate,
) -> Response[DataSource]:
    return ok(data_sources.update_data_source(caller(app), dataSourceId, body))


lambda_handler = lambda_handler_for(app)
