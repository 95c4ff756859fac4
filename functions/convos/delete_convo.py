"""Delete a Convo: DELETE /convos/{convoId} → 204 (its steps, links and connections go through the
purge worker)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.common import Id
from kallo.services import convos
from kallo.web import caller, create_app, lambda_handler_for, no_content

app = create_app()


@app.delete("/convos/<convoId>", summary="Delete a Convo", tags=["Convos"], status_code=204)
def delete_convo(convoId: Annotated[Id, Path()]) -> Response[None]:
    convos.delete_convo(caller(app), convoId)
    return no_content()


lambda_handler = lambda_handler_for(app)
