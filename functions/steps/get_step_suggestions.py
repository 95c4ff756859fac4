"""Get Step Suggestions: GET /steps/{stepId}/suggestions → 200 `{suggestions: [text, ...]}` (at most 3
follow-up questions for a completed answer, written once by its model and kept), or 202
`{retryAfter}` with a `Retry-After` header while another request is writing them."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.common import Id
from kallo.models.feedback import Suggestions, SuggestionsPending
from kallo.services import suggestions
from kallo.web import accepted, caller, create_app, lambda_handler_for, ok

app = create_app()


@app.get(
    "/steps/<stepId>/suggestions",
    summary="Get Step Suggestions",
    description="Follow-up questions for a completed answer (an `llm` step), asked of its model by the "
    "first request and kept. While another request is asking, 202: ask again after `retryAfter` (also "
    "the `Retry-After` header, in seconds). An answer that is not completed is 409 `not_completed`; "
    "another step 422 `not_an_answer`. Needs `can_view` on the step's convo; the tokens count against "
    "the caller's daily budget.",
    tags=["Convos"],
    responses={
        200: {
            "description": "The suggestions (possibly none)",
            "content": {"application/json": {"model": Suggestions}},
        },
        202: {
            "description": "The suggestions are being written",
            "content": {"application/json": {"model": SuggestionsPending}},
        },
        409: {"description": "The answer is not completed (`not_completed`)"},
    },
)
def get_step_suggestions(stepId: Annotated[Id, Path()]) -> Response[Suggestions | SuggestionsPending]:
    found = suggestions.suggestions_for(caller(app), stepId)
    if found is not None:
        return ok({"suggestions": found})
    response = accepted({"retryAfter": suggestions.retry_after()})
    response.headers["Retry-After"] = str(suggestions.RETRY_AFTER_SECONDS)
    return response


lambda_handler = lambda_handler_for(app)
