"""Get Topic Config: GET /convos/{convoId}/topic-config → 200 {defaults} (the owning topic's
config.defaults; {} when no topic owns the convo)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.common import Id
from kallo.models.convos import ConvoTopicConfig
from kallo.services import convos
from kallo.web import caller, create_app, lambda_handler_for, ok

app = create_app()


@app.get("/convos/<convoId>/topic-config", summary="Get Topic Config", tags=["Convos"])
def get_topic_config(convoId: Annotated[Id, Path()]) -> Response[ConvoTopicConfig]:
    return ok(convos.get_topic_config(caller(app), convoId))


lambda_handler = lambda_handler_for(app)
