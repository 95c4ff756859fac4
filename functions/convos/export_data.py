"""Export Data: POST /exports → 202 export (`status: queued`); the export worker sends the email."""

from aws_lambda_powertools.event_handler import Response

from kallo.models.exports import Export, ExportCreate
from kallo.services import exports
from kallo.web import accepted, caller, create_app, lambda_handler_for

app = create_app()


@app.post(
    "/exports",
    summary="Export Data",
    description="Send convos by email (format html-email): queued now, sent by a worker within moments. "
    "The email holds what the caller may still view when it is sent.",
    tags=["Convos"],
    status_code=202,
)
def export_data(body: ExportCreate) -> Response[Export]:
    return accepted(exports.export_data(caller(app), body))


lambda_handler = lambda_handler_for(app)
