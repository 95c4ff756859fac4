"""Update Prompt: PATCH /prompts/{promptId} {text} → 200 prompt."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.common import Id
from kallo.models.prompts import Prompt, PromptUpdate
from kallo.services import prompts
from kallo.web import caller, create_app, lambda_handler_for, ok

app = create_app()


@app.patch("/prompts/<promptId>", summary="Update Prompt", tags=["Prompts"])
def update_prompt(promptId: Annotated[Id, Path()], body: PromptUpdate) -> Response[Prompt]:
    return ok(prompts.update_prompt(caller(app), promptId, body))


lambda_handler = lambda_handler_for(app)
