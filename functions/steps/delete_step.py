"""Delete Step: DELETE /steps/{stepId} → 204, broadcast as convoStepDeletion (someone else's user step
needs can_delete_steps)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.common import Id
from kallo.services import steps
from kallo.web import caller, create_app, lambda_handler_for, no_content

app = create_app()


@app.delete("/steps/<stepId>", summary="Delete Step", tags=["Convos"], status_code=204)
def delete_step(stepId: Annotated[Id, Path()]) -> Response[None]:
    steps.delete_step(steps.Actor(caller(app)), stepId)
    return no_content()


lambda_handler = lambda_handler_for(app)
