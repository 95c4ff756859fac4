"""Reply jobs: a user step that asks for an answer (or a regen) becomes one message on the FIFO step
queue, grouped by convo so a convo's answers come in order; the LLM step worker consumes them."""

from __future__ import annotations

from pydantic import BaseModel, Field

from kallo import aws
from kallo.settings import get_settings


class ReplyJob(BaseModel):
    job_id: str = Field(alias="jobId", description="Deduplication key: the same job twice is one answer")
    convo_id: str = Field(alias="convoId")
    reply_to_step_id: str = Field(alias="replyToStepId", description="The user step being answered")
    llm_step_id: str = Field(alias="llmStepId", description="The id the answer step will have")
    created_at: str | None = Field(
        default=None, alias="createdAt", description="Kept by a regen so the answer keeps its place"
    )
    config: dict = Field(default_factory=dict, description="The stepConfig of the request")
    requested_by: str = Field(alias="requestedBy")
    team_id: str | None = Field(
        default=None, alias="teamId", description="The team whose token budget the answer also uses"
    )
    only_data_source_ids: list[str] | None = Field(
        default=None,
        alias="onlyDataSourceIds",
        description="Grounding narrowed to these data sources (none: an ungrounded answer); unset: the "
        "usual ones. Set by a compatibility surface for an answer it runs itself (Gloo's publishers)",
    )

    model_config = {"populate_by_name": True}


def enqueue(job: ReplyJob) -> None:
    aws.client("sqs").send_message(
        QueueUrl=get_settings().step_queue_url,
        MessageBody=job.model_dump_json(by_alias=True),
        MessageGroupId=job.convo_id,
        MessageDeduplicationId=job.job_id,
    )
