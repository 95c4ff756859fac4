"""The deployment's models (`GET /models`): the names a topic's `config.defaults.model` and a step's
`config.model` may take."""

from __future__ import annotations

from pydantic import Field

from kallo.models.common import ResponseModel


class Model(ResponseModel):
    id: str = Field(
        description="The model's name, `<provider>:<model id>`, e.g. `bedrock:amazon.nova-lite-v1:0`, "
        "`openai:gpt-4o-mini` or `embedded:smollm2`: what a stepConfig's `model` takes"
    )
    provider: str = Field(description="`bedrock`, `openai` (an OpenAI-compatible endpoint) or `embedded`")
    default: bool = Field(description="Whether it answers when neither the step nor its topic names a model")
