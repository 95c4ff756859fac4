"""convoNewStepGroup (payload: stepGroup): steps sharing one server-made groupId, the first the primary,
each broadcast as convoNewStep."""

from kallo.models.ws import NewStepGroup
from kallo.services import steps
from kallo.websocket import Session, message_handler


def convo_new_step_group(session: Session, payload: NewStepGroup) -> None:
    steps.add_step_group(session.actor, session.convo_id, payload)


lambda_handler = message_handler(NewStepGroup, convo_new_step_group)
