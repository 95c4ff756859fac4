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
    "Each destination (at most 5) must be the verified email address of a Kallo user who may view every "
    "convo, else 422 `recipient_not_allowed`; both are checked again when the email is sent, which holds "
    "what the caller may still view. The subject is fixed (`Kallo export: N convos, <date>`). A user may "
    "request a limited number of exports a day (429 `quota_exceeded` with `Retry-After`).",
    tags=["Convos"],
    status_code=202,
)
def export_data(body: ExportCreate) -> Response[Export]:
    return accepted(exports.export_data(caller(app), body))


lambda_handler = lambda_handler_for(app)
