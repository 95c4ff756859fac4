"""Upload New File: POST /data-sources/uploads[?userId= | teamId=] → 201 dataSource.

- `multipart/form-data` with one `file` field (at most `upload_max_bytes`, 4 MiB): the data source is
  created `processing` with the bytes stored; the worker extracts and indexes them.
- `application/json` `{name, mimeType, size}` (up to `presigned_upload_max_bytes`, 50 MiB): the data source
  is created `awaiting_upload`, with `upload: {url, fields, expiresAt}`, a presigned POST to S3.
"""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import ValidationError

from kallo import json_input
from kallo.errors import UnsupportedMediaType
from kallo.models.common import Id
from kallo.models.data_sources import DataSource, PresignedUpload, PresignedUploadRequest
from kallo.services import data_sources
from kallo.settings import get_settings
from kallo.web import JSON, caller, create_app, created, lambda_handler_for, multipart

app = create_app()

# The handler reads the body itself (it is one of two media types), so Powertools cannot describe it.
REQUEST_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            }
        },
        JSON: {"schema": PresignedUploadRequest.model_json_schema(by_alias=True)},
    },
}


@app.post(
    "/data-sources/uploads",
    summary="Upload New File",
    description="multipart/form-data with one `file` field (at most 4 MiB), or a JSON body "
    "`{name, mimeType, size}` for a presigned upload straight to S3 (at most 50 MiB).",
    tags=["Data Sources"],
    status_code=201,
    openapi_extensions={"requestBody": REQUEST_BODY},
)
def upload_file(
    userId: Annotated[Id | None, Query(description="The user that will own the data source")] = None,
    teamId: Annotated[Id | None, Query(description="The team that will own the data source")] = None,
) -> Response[PresignedUpload | DataSource]:
    event = app.current_event
    content_type = event.headers.get("content-type")
    kind = multipart.media_type(content_type)
    body = multipart.body_bytes(event.body, base64_encoded=event.is_base64_encoded)
    if kind == multipart.MULTIPART:
        part = multipart.read_file(body, content_type, max_bytes=get_settings().upload_max_bytes)
        return created(
            data_sources.upload_file(
                caller(app),
                part.data,
                filename=part.filename,
                declared_type=part.content_type,
                user_id=userId,
                team_id=teamId,
            )
        )
    if kind == JSON:
        try:
            # The one parser of JSON bodies (bounded size and nesting), as for every other route.
            request = PresignedUploadRequest.model_validate(json_input.parse(body or b"null"))
        except ValidationError as error:
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in error.errors()]
            ) from error
        return created(data_sources.presign_upload(caller(app), request, user_id=userId, team_id=teamId))
    raise UnsupportedMediaType(
        f"send multipart/form-data (a file) or {JSON} (a presigned upload), not {kind or 'no content type'}"
    )


lambda_handler = lambda_handler_for(app, media_types=(multipart.MULTIPART, JSON))
