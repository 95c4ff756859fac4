"""Invoke WebSocket handlers with API Gateway events built from their samples in `events/ws/`, and see
what they posted to connections.

moto accepts `apigatewaymanagementapi` calls but neither delivers them nor ever answers 410, so the
`sockets` fixture answers `PostToConnection` itself, inside the real botocore client that
`kallo.realtime` uses: the calls still go through `kallo.realtime.post` (and are counted by the
`aws_calls` fixture), frames are recorded per connection, and connections put in `Sockets.gone` answer
GoneException as API Gateway does for a closed socket. `DeleteConnection` is answered the same way: the
connection is recorded in `Sockets.closed` and is gone from then on.

In a test module: `sockets = ws.sockets` makes the fixture available.
"""

from __future__ import annotations

import importlib
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import pytest
from botocore.awsrequest import AWSResponse
from pydantic import ValidationError

from kallo import aws as kallo_aws
from kallo import realtime
from kallo.auth import api_keys
from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.clock import epoch_seconds, now, now_iso
from kallo.models.convos import ConvoCreate
from kallo.models.steps import Step
from kallo.models.ws import SERVER_MESSAGES
from kallo.realtime import audience
from kallo.services import convos
from kallo.settings import get_settings
from kallo.store import connections, steps
from kallo.store.keys import Ref
from tests.support.api import EVENTS, LambdaContext
from tests.support.world import grant, make_user


def documented(message: dict[str, Any]) -> None:
    """Fail on a frame that docs/asyncapi.json does not describe: a message type the server does not
    document, or a payload that does not match its model in `kallo.models.ws.SERVER_MESSAGES` (a field
    it does not name included). Pieces' identifiers stream is not an envelope: docs/COMPATIBILITY.md."""
    if "iterable" in message and "type" not in message:
        return
    assert set(message) <= {"type", "payload", "requestId"}, message
    models = SERVER_MESSAGES.get(message["type"])
    assert models, f"{message['type']} is not in SERVER_MESSAGES (docs/asyncapi.json)"
    payload = message["payload"]
    problems = []
    for model in models:  # one of the type's shapes describes it
        names = {field.alias or name for name, field in model.model_fields.items()}
        try:
            model.model_validate(payload)
        except ValidationError as error:
            problems.append(str(error))
            continue
        if set(payload) <= names:
            return
        problems.append(f"{message['type']}: {sorted(set(payload) - names)} undocumented")
    raise AssertionError("; ".join(problems))


@dataclass
class Sockets:
    """Frames posted through the management API, and the connections that are gone."""

    frames: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    gone: set[str] = field(default_factory=set)
    closed: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def to(self, connection_id: str, message_type: str | None = None) -> list[dict[str, Any]]:
        """The messages a connection received, in order (only those of a type, if given)."""
        with self._lock:
            return [
                m
                for c, m in self.frames
                if c == connection_id and (message_type is None or m["type"] == message_type)
            ]

    def payloads(self, connection_id: str, message_type: str) -> list[dict[str, Any]]:
        return [m["payload"] for m in self.to(connection_id, message_type)]

    def errors(self, connection_id: str) -> list[dict[str, Any]]:
        return self.payloads(connection_id, "error")

    def clear(self) -> None:
        with self._lock:
            self.frames.clear()

    @property
    def receivers(self) -> set[str]:
        with self._lock:
            return {c for c, _ in self.frames}

    # -- botocore hooks --------------------------------------------------------------------------

    def _remember(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["posted"] = (params["ConnectionId"], params["Data"])

    def _answer(self, context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        connection_id, data = context["posted"]
        if connection_id in self.gone:
            error = {"Code": "GoneException", "Message": f"connection {connection_id} is gone"}
            return AWSResponse("", 410, {}, None), {"Error": error, "ResponseMetadata": {}}
        message = json.loads(data.decode() if isinstance(data, bytes) else data)
        documented(message)
        with self._lock:
            self.frames.append((connection_id, message))
        return AWSResponse("", 200, {}, None), {"ResponseMetadata": {"HTTPStatusCode": 200}}

    def _remember_closing(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["closing"] = params["ConnectionId"]

    def _close(self, context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        connection_id = context["closing"]
        with self._lock:
            if connection_id in self.gone:
                error = {"Code": "GoneException", "Message": f"connection {connection_id} is gone"}
                return AWSResponse("", 410, {}, None), {"Error": error, "ResponseMetadata": {}}
            self.closed.append(connection_id)
            self.gone.add(connection_id)
        return AWSResponse("", 204, {}, None), {"ResponseMetadata": {"HTTPStatusCode": 204}}

    def install(self) -> None:
        events = realtime._management_client().meta.events
        events.register("before-parameter-build.apigatewaymanagementapi.PostToConnection", self._remember)
        events.register("before-call.apigatewaymanagementapi.PostToConnection", self._answer)
        events.register(
            "before-parameter-build.apigatewaymanagementapi.DeleteConnection", self._remember_closing
        )
        events.register("before-call.apigatewaymanagementapi.DeleteConnection", self._close)


@pytest.fixture
def sockets(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sockets]:
    """A fresh management client for this test's account, answering as API Gateway would. Verdicts on
    connections (I8), and the convo chains they were made on, are remembered until a test calls
    `audience.forget()`, so call budgets do not depend on the machine's speed."""
    monkeypatch.setattr(audience, "RECHECK_SECONDS", 600.0)
    monkeypatch.setattr(audience, "CHAIN_SECONDS", 600.0)  # a message's checks share the chain it read
    realtime.reset()
    captured = Sockets()
    captured.install()
    yield captured
    realtime.reset()


def sample_event(operation: str) -> dict[str, Any]:
    """The sample event of a WebSocket handler, e.g. `convo_new_step` → events/ws/convo_new_step.json."""
    return json.loads((EVENTS / "ws" / f"{operation}.json").read_text())


def invoke(
    operation: str,
    connection_id: str,
    *,
    payload: Any = None,
    request_id: str | None = None,
    body: str | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run `functions/ws/<operation>.py` with its sample event on `connection_id`. A message's body is
    `body` when given, else the sample's envelope with `payload` and `requestId` replaced. `headers`
    and `query` replace the sample's (for `$connect`). Returns the handler's answer."""
    event = sample_event(operation)
    event["requestContext"]["connectionId"] = connection_id
    event["requestContext"]["requestId"] = uuid4().hex
    if body is not None:
        event["body"] = body
    elif "body" in event and (payload is not None or request_id is not None):
        frame = json.loads(event["body"])
        if payload is not None:
            frame["payload"] = payload
        if request_id is not None:
            frame["requestId"] = request_id
        event["body"] = json.dumps(frame)
    if headers is not None:
        event["headers"] = headers
        event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
    if query is not None:
        event["queryStringParameters"] = query or None
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} or None
    module = importlib.import_module(f"ws.{operation}")
    return module.lambda_handler(event, LambdaContext())


def send(
    connection_id: str, message_type: str, payload: Any, request_id: str | None = "r1"
) -> dict[str, Any]:
    """A client message on the route its type names (the sample event of that route)."""
    operation = re.sub(r"(?<!^)(?=[A-Z])", "_", message_type).lower()
    return invoke(operation, connection_id, payload=payload, request_id=request_id)


def connect(
    principal: Principal, convo_id: str, connection_id: str | None = None, *, api_key: str | None = None
) -> str:
    """Store a connection as `$connect` would for an authenticated principal (no credentials needed,
    but a principal of the `api_key` scheme names the key it connected with); returns its id."""
    connection_id = connection_id or uuid4().hex[:15] + "="
    connection = {
        "connectionId": connection_id,
        "convoId": convo_id,
        "userId": principal.user_id,
        "principal": principal.to_context(),
        "connectedAt": now_iso(),
    }
    if api_key is not None:
        connection["apiKeyHash"] = api_keys.hash_key(api_key)
    connections.put(connection, ttl=epoch_seconds(now()) + 7200)
    return connection_id


def connect_stream(
    principal: Principal,
    connection_id: str | None = None,
    *,
    api_key: str | None = None,
    connected_at: str | None = None,
) -> str:
    """Store an identifiers stream as `$connect` with `?stream=conversation-identifiers` would; returns
    its id."""
    from kallo.realtime import identifiers

    connection_id = connection_id or uuid4().hex[:15] + "="
    connection = {
        "connectionId": connection_id,
        "stream": identifiers.STREAM,
        "userId": principal.user_id,
        "principal": principal.to_context(),
        "connectedAt": connected_at or now_iso(),
    }
    if api_key is not None:
        connection["apiKeyHash"] = api_keys.hash_key(api_key)
    connections.put_stream(connection, ttl=epoch_seconds(now()) + 7200)
    return connection_id


def snapshots(sockets: Sockets, connection_id: str) -> list[list[str]]:
    """The identifiers snapshots a stream received, each as its listed ids then `-<id>` for a deletion."""
    return [
        [
            i["conversation"]["id"] if not i.get("deleted") else "-" + i["conversation"]["id"]
            for i in m["iterable"]
        ]
        for m in sockets.to(connection_id)
    ]


def reply_jobs() -> list[dict[str, Any]]:
    """The reply jobs on the FIFO step queue, oldest first, each with the `MessageGroupId` and
    `MessageDeduplicationId` it was sent with; reading them removes them from the queue."""
    sqs, url = kallo_aws.client("sqs"), get_settings().step_queue_url
    jobs: list[dict[str, Any]] = []
    while True:
        answer = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"], WaitTimeSeconds=0
        )
        messages = answer.get("Messages", [])
        if not messages:
            return jobs
        for message in messages:
            attributes = message.get("Attributes", {})
            jobs.append(
                {
                    **json.loads(message["Body"]),
                    "messageGroupId": attributes.get("MessageGroupId"),
                    "deduplicationId": attributes.get("MessageDeduplicationId"),
                }
            )
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


@dataclass
class Room:
    """A convo its owner created, with a participant, a viewer and an outsider, each of the first
    three connected (the outsider cannot connect)."""

    owner: Principal
    participant: Principal
    viewer: Principal
    outsider: Principal
    convo_id: str
    owner_connection: str
    participant_connection: str
    viewer_connection: str


def room() -> Room:
    owner, participant, viewer, outsider = make_user(), make_user(), make_user(), make_user()
    convo_id = convos.create_convo(Access(owner), ConvoCreate())["id"]
    grant(Ref("convo", convo_id), participant, "participant")
    grant(Ref("convo", convo_id), viewer, "viewer")
    return Room(
        owner,
        participant,
        viewer,
        outsider,
        convo_id,
        connect(owner, convo_id),
        connect(participant, convo_id),
        connect(viewer, convo_id),
    )


def llm_step(
    convo_id: str,
    reply_to: str,
    *,
    status: str = "completed",
    config: dict[str, Any] | None = None,
    step_id: str | None = None,
) -> dict[str, Any]:
    """An answer as the LLM step worker stores it: an `llm` step naming the step it answers."""
    at = now_iso()
    step = steps.add(
        Step(
            id=step_id or str(uuid4()),
            convoId=convo_id,
            authorType="llm",
            status=status,
            content={"text": "Day one: Alfama and the castle"},
            config=config or {"model": "embedded:smollm2", "temperature": 0.7},
            createdAt=at,
            updatedAt=at,
        ).record()
    )
    return steps.update(step, {"replyToStepId": reply_to})
