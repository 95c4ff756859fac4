"""Set Step Feedback: PUT /steps/{stepId}/feedback {rating: "like" | "dislike", comment?} → 200 the
caller's feedback (one per step and user: a second PUT replaces it); the answer's counts, `feedback
{likes, dislikes}`, are broadcast as convoStepUpdate."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.common import Id
from kallo.models.feedback import Feedback, FeedbackSet
from kallo.services import feedback
from kallo.web import caller, create_app, lambda_handler_for, ok

app = create_app()


@app.put(
    "/steps/<stepId>/feedback",
    summary="Set Step Feedback",
    description="Like or dislike an answer (an `llm` step; any other step is 422 `not_an_answer`), with "
    "an optional comment. Needs `can_view` on the step's convo.",
    tags=["Convos"],
)
def set_step_feedback(stepId: Annotated[Id, Path()], body: FeedbackSet) -> Response[Feedback]:
    return ok(feedback.set_feedback(caller(app), stepId, body.rating, body.comment))


lambda_handler = lambda_handler_for(app)
