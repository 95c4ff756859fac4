"""Patch a Convo: PATCH /convos/{convoId} {name} → 200 convo."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.common import Id
from kallo.models.convos import Convo, ConvoPatch
from kallo.services import convos
from kallo.web import caller, create_app, lambda_handler_for, ok

app = create_app()


@app.patch("/convos/<convoId>", summary="Patch a Convo", tags=["Convos"])
def patch_convo(convoId: Annotated[Id, Path()], body: ConvoPatch) -> Response[Convo]:
    return ok(convos.patch_convo(caller(app), convoId, body))


lambda_handler = lambda_handler_for(app)
