"""convoStepUpdate (payload: stepUpdate): content, annotations, or `isAlternate: false` (the step becomes
its group's primary), each change broadcast as convoStepUpdate."""

from kallo.models.ws import StepUpdate
from kallo.services import steps
from kallo.websocket import Session, message_handler


def convo_step_update(session: Session, payload: StepUpdate) -> None:
    steps.update_step(
        session.actor,
        payload.id,
        content=payload.content,
        is_alternate=payload.is_alternate,
        annotations=payload.annotations,
        convo_id=session.convo_id,
    )


lambda_handler = message_handler(StepUpdate, convo_step_update)
