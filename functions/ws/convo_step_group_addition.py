"""convoStepGroupAddition (payload: stepGroupAddition): a step joins the group of `primaryStepId` as an
alternate (a convoStepUpdate announces the groupId of a primary that had none), broadcast as
convoNewStep."""

from kallo.models.ws import StepGroupAddition
from kallo.services import steps
from kallo.websocket import Session, message_handler


def convo_step_group_addition(session: Session, payload: StepGroupAddition) -> None:
    steps.add_to_group(session.actor, session.convo_id, payload)


lambda_handler = message_handler(StepGroupAddition, convo_step_group_addition)
