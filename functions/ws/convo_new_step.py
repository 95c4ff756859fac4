"""convoNewStep (payload: step): a user step, broadcast to the convo as convoNewStep; a config with
`reply: true` queues an LLM answer."""

from kallo.models.ws import NewStep
from kallo.services import steps
from kallo.websocket import Session, message_handler


def convo_new_step(session: Session, payload: NewStep) -> None:
    steps.add_step(session.actor, session.convo_id, payload)


lambda_handler = message_handler(NewStep, convo_new_step)
