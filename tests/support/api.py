"""Invoke a function's handler with an API Gateway proxy event built from its sample in `events/`."""

from __future__ import annotations

import base64
import importlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kallo.auth.principal import Principal

EVENTS = Path(__file__).resolve().parents[2] / "events"


@dataclass
class LambdaContext:
    function_name: str = "test-function"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"
    remaining_millis: int = 300_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_millis


@dataclass
class Result:
    status: int
    headers: dict[str, str]
    body: str

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def sample_event(handler: str) -> dict[str, Any]:
    """The sample event of a handler module, e.g. `teams.create_team` → events/teams/create_team.json."""
    area, operation = handler.split(".")
    return json.loads((EVENTS / area / f"{operation}.json").read_text())


def invoke(
    handler: str,
    principal: Principal | None,
    *,
    path: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    body: Any = None,
    raw_body: str | None = None,
    headers: dict[str, str] | None = None,
) -> Result:
    event = sample_event(handler)
    if path is not None:
        event["pathParameters"] = path
    event["path"] = re.sub(
        r"\{(\w+)\}", lambda m: (event.get("pathParameters") or {})[m.group(1)], event["resource"]
    )
    if query is not None:
        event["queryStringParameters"] = query or None
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} or None
    if raw_body is not None or body is not None:
        # A text body, whatever the sample carried (the upload sample's is base64 multipart).
        event["body"] = raw_body if raw_body is not None else json.dumps(body)
        event["isBase64Encoded"] = False
    if headers:
        event["headers"] = {**(event.get("headers") or {}), **headers}
        event["multiValueHeaders"] = {k: [v] for k, v in event["headers"].items()}
    context = event["requestContext"]
    if principal is None:
        context.pop("authorizer", None)
    else:
        context["authorizer"] = {"principalId": principal.user_id, **principal.to_context()}
    module = importlib.import_module(handler)
    response = module.lambda_handler(event, LambdaContext())
    merged = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    merged.update({k.lower(): v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()})
    return Result(response["statusCode"], merged, response.get("body") or "")


def call_surface(
    handler: str,
    method: str,
    path: str,
    *,
    resource: str,
    body: Any = None,
    raw_body: str | bytes | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> Result:
    """Invoke a compatibility surface's Lambda handler (`compat.dify`, ...) as API Gateway does for its
    greedy route `resource` (e.g. `/dify/v1/{proxy+}`): a public route, so no authorizer context; the
    surface authenticates the headers itself. A bytes `raw_body` is sent base64-encoded (multipart)."""
    event = sample_event("teams.create_team")
    event["requestContext"].pop("authorizer", None)
    prefix = resource.split("{", 1)[0]
    greedy = re.search(r"\{(\w+)\+\}", resource)
    event.update(
        resource=resource,
        path=path,
        httpMethod=method,
        pathParameters={greedy.group(1): path[len(prefix) :]} if greedy else None,
        queryStringParameters=query or None,
        multiValueQueryStringParameters={k: [v] for k, v in (query or {}).items()} or None,
    )
    event["requestContext"].update(resourcePath=resource, httpMethod=method)
    all_headers = {"Host": "api.example.com", **(headers or {})}
    if isinstance(raw_body, bytes):
        event["body"], event["isBase64Encoded"] = base64.b64encode(raw_body).decode(), True
    elif raw_body is not None or body is not None:
        event["body"], event["isBase64Encoded"] = (
            (raw_body if raw_body is not None else json.dumps(body)),
            False,
        )
        all_headers.setdefault("Content-Type", "application/json")
    else:
        event["body"], event["isBase64Encoded"] = None, False
    event["headers"] = all_headers
    event["multiValueHeaders"] = {k: [v] for k, v in all_headers.items()}
    module = importlib.import_module(handler)
    response = module.lambda_handler(event, LambdaContext())
    merged = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    merged.update({k.lower(): v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()})
    text = response.get("body") or ""
    if response.get("isBase64Encoded"):
        text = base64.b64decode(text).decode()
    return Result(response["statusCode"], merged, text)
