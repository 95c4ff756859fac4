"""Generate Signed URL for Download: GET /data-sources/{dataSourceId}/download-url → 200 "<url>".

The URL downloads the original bytes as an attachment named after the data source, for a few minutes
(`download_url_seconds`, at most 15); 409 `not_uploaded` while a presigned upload is awaited, 409
`not_ready` while the file is being checked or after it failed its checks (a failed file is never served).
"""

import json
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.common import Id
from kallo.services import data_sources
from kallo.web import caller, create_app, lambda_handler_for, ok

app = create_app()


@app.get(
    "/data-sources/<dataSourceId>/download-url",
    summary="Generate Signed URL for Download",
    tags=["Data Sources"],
)
def get_download_url(dataSourceId: Annotated[Id, Path()]) -> Response[str]:
    # A JSON string: the resolver passes a str body through as it is.
    return ok(json.dumps(data_sources.download_url(caller(app), dataSourceId)))


lambda_handler = lambda_handler_for(app)
