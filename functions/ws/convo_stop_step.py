"""convoStopStep (payload: `{id}`): stop a running answer of the connection's convo; it ends with a
final convoStepUpdate `status: "stopped"` and convoStatus idle (`kallo.services.stops`)."""

from kallo.models.ws import StopStep
from kallo.services import stops
from kallo.websocket import Session, message_handler


def convo_stop_step(session: Session, payload: StopStep) -> None:
    stops.stop_step(session.access, payload.id, convo_id=session.convo_id)


lambda_handler = message_handler(StopStep, convo_stop_step)
