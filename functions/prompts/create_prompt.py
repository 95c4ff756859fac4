"""Create Prompt: POST /prompts[?teamId= | userId=] → 201 prompt."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from kallo.models.common import Id
from kallo.models.prompts import Prompt, PromptCreate
from kallo.services import prompts
from kallo.web import caller, create_app, created, lambda_handler_for

app = create_app()


@app.post("/prompts", summary="Create Prompt", tags=["Prompts"], status_code=201)
def create_prompt(
    body: PromptCreate,
    teamId: Annotated[Id | None, Query(description="The team that will own the prompt")] = None,
    userId: Annotated[Id | None, Query(description="The user that will own the prompt")] = None,
) -> Response[Prompt]:
    return created(prompts.create_prompt(caller(app), body, user_id=userId, team_id=teamId))


lambda_handler = lambda_handler_for(app)
