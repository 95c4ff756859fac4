"""Delete Prompt: DELETE /prompts/{promptId} → 204 (its grants go too, and topics using it lose it)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.common import Id
from kallo.services import prompts
from kallo.web import caller, create_app, lambda_handler_for, no_content

app = create_app()


@app.delete("/prompts/<promptId>", summary="Delete Prompt", tags=["Prompts"], status_code=204)
def delete_prompt(promptId: Annotated[Id, Path()]) -> Response[None]:
    prompts.delete_prompt(caller(app), promptId)
    return no_content()


lambda_handler = lambda_handler_for(app)
