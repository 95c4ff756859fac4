"""Get an Export: GET /exports/{exportId} → 200 export, with its `status`: `queued` until the export
worker sends it, then `sent` (`sentAt`) or `failed` (`error {code, message}`). Its creator only: 404
for anyone else."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.common import Id
from kallo.models.exports import Export
from kallo.services import exports
from kallo.web import caller, create_app, lambda_handler_for, ok

app = create_app()


@app.get(
    "/exports/<exportId>",
    summary="Get an Export",
    description="The export and its outcome: `queued` until the worker sends the email, then `sent` "
    "(with `sentAt`) or `failed` (with `error {code, message}`). Only its creator may read it (404 "
    "for anyone else, as for a missing export).",
    tags=["Convos"],
)
def get_export(exportId: Annotated[Id, Path()]) -> Response[Export]:
    return ok(exports.get_export(caller(app), exportId))


lambda_handler = lambda_handler_for(app)
