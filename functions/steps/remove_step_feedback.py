"""Remove Step Feedback: DELETE /steps/{stepId}/feedback → 204 (404 when the caller has none); the
answer's counts are broadcast as convoStepUpdate."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.common import Id
from kallo.services import feedback
from kallo.web import caller, create_app, lambda_handler_for, no_content

app = create_app()


@app.delete(
    "/steps/<stepId>/feedback",
    summary="Remove Step Feedback",
    description="Take back the caller's like or dislike of an answer.",
    tags=["Convos"],
    status_code=204,
)
def remove_step_feedback(stepId: Annotated[Id, Path()]) -> Response[None]:
    feedback.remove_feedback(caller(app), stepId)
    return no_content()


lambda_handler = lambda_handler_for(app)
