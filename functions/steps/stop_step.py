"""Stop Step: POST /steps/{stepId}/stop → 202 step: the running answer stops within a second, keeps its
text so far and ends `stopped` (`kallo.services.stops`)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.common import Id
from kallo.models.steps import Step
from kallo.services import stops
from kallo.web import accepted, caller, create_app, lambda_handler_for

app = create_app()


@app.post(
    "/steps/<stepId>/stop",
    summary="Stop Step",
    description="Ask a running answer (an `llm` step with `status: running`) to stop: within a second it "
    'ends with `status: "stopped"`, keeping its text so far, broadcast like a completed one (the final '
    "`convoStepUpdate` with `usage` when the provider reported it, then `convoStatus` idle). Needs "
    "`can_chat` on the convo. A step stopped already, or being stopped, answers 202 again; a completed or "
    "failed step, or a user step, 409 `not_running`. Deleting a step is not a stop. Also the WebSocket "
    "message `convoStopStep` `{id}`.",
    tags=["Convos"],
    status_code=202,
)
def stop_step(stepId: Annotated[Id, Path()]) -> Response[Step]:
    return accepted(stops.stop_step(caller(app), stepId))


lambda_handler = lambda_handler_for(app)
