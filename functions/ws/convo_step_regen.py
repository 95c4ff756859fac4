"""convoStepRegen (payload: stepRegen): an LLM step that completed or failed is deleted and answered
again in its place, broadcast as convoStepRegen {id, config}."""

from kallo.models.ws import StepRegen
from kallo.services import steps
from kallo.websocket import Session, message_handler


def convo_step_regen(session: Session, payload: StepRegen) -> None:
    steps.regen_step(session.actor, session.convo_id, payload)


lambda_handler = message_handler(StepRegen, convo_step_regen)
