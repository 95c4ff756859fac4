"""Get a Convo: GET /convos/{convoId} → 200 convo (with its latestStep, when it has steps)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.common import Id
from kallo.models.convos import Convo
from kallo.services import convos
from kallo.web import caller, create_app, lambda_handler_for, ok

app = create_app()


@app.get("/convos/<convoId>", summary="Get a Convo", tags=["Convos"])
def get_convo(convoId: Annotated[Id, Path()]) -> Response[Convo]:
    return ok(convos.get_convo(caller(app), convoId))


lambda_handler = lambda_handler_for(app)
