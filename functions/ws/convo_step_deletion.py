"""convoStepDeletion (payload: stepDeletion): the step goes, broadcast as convoStepDeletion (a group's
oldest alternate takes the place of a deleted primary: convoStepUpdate)."""

from kallo.models.ws import StepDeletion
from kallo.services import steps
from kallo.websocket import Session, message_handler


def convo_step_deletion(session: Session, payload: StepDeletion) -> None:
    steps.delete_step(session.actor, payload.id, convo_id=session.convo_id)


lambda_handler = message_handler(StepDeletion, convo_step_deletion)
