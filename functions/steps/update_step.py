"""Update Step: PATCH /steps/{stepId} {isAlternate: false} → 200 step: the step becomes its group's
primary (broadcast as convoStepUpdate); `isAlternate: true` is refused (400)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.common import Id
from kallo.models.steps import Step
from kallo.models.ws import StepPatch
from kallo.services import steps
from kallo.web import caller, create_app, lambda_handler_for, ok

app = create_app()


@app.patch("/steps/<stepId>", summary="Update Step", tags=["Convos"])
def update_step(stepId: Annotated[Id, Path()], body: StepPatch) -> Response[Step]:
    return ok(steps.update_step(steps.Actor(caller(app)), stepId, is_alternate=body.is_alternate))


lambda_handler = lambda_handler_for(app)
