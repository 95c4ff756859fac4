"""convoSync (payload: `{}` or `{since: {stepId, seq}}`): the convo's state, to the sender only, its
requestId echoed: convoStatus, each running answer's snapshot (its text through `seq`), and the final
convoStepUpdate of the `since` step when it ended (`kallo.services.convo_sync`)."""

from kallo import realtime
from kallo.models.ws import ConvoSync
from kallo.services import convo_sync
from kallo.websocket import Session, message_handler


def convo_sync_message(session: Session, payload: ConvoSync) -> None:
    for message_type, body in convo_sync.sync(session.access, session.convo_id, payload.since):
        if not realtime.send(session.connection_id, message_type, body, session.request_id):
            return  # the sender is gone: nobody left to tell


lambda_handler = message_handler(ConvoSync, convo_sync_message)
