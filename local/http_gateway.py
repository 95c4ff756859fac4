"""The REST API gateway: HTTP requests become API Gateway REST proxy events for the template's
functions, the Lambda REQUEST authorizer runs first, and the functions' proxy responses go back out.

Everything API Gateway is configured with is read from the template's `AWS::Serverless::Api`: the
routes (the functions' `Api` events), the default authorizer, the binary media types, the CORS
preflights SAM generates, and the gateway responses (the bodies of the 401/404/413/5xx answers the
gateway gives itself), so a request behaves here as it will in the cloud.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from local import template
from local.parts import Stack
from local.runtime import LocalFunction

logger = logging.getLogger(__name__)

API_ID = "local"
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's request payload quota
# What API Gateway answers for each gateway response type the template leaves unconfigured.
_RESPONSE_DEFAULTS: dict[str, tuple[int, str]] = {
    "UNAUTHORIZED": (401, "Unauthorized"),
    "ACCESS_DENIED": (403, "User is not authorized to access this resource"),
    "MISSING_AUTHENTICATION_TOKEN": (403, "Missing Authentication Token"),
    "REQUEST_TOO_LARGE": (413, "Request Too Long"),
    "AUTHORIZER_FAILURE": (500, "Internal server error"),
    "AUTHORIZER_CONFIGURATION_ERROR": (500, "Internal server error"),
    # A function that raised or returned a malformed proxy response.
    "DEFAULT_5XX": (502, "Internal server error"),
}
# Set by the server from the body it actually sends.
_RESPONSE_HEADERS_DROPPED = frozenset({"content-length", "transfer-encoding", "connection"})


def _unquote(value: str) -> str:
    """Header values in API Gateway configuration are quoted literals: `'*'` means `*`."""
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == "'" else value


class GatewayResponses:
    """The answers API Gateway gives itself (GatewayResponses of the template, else its defaults)."""

    def __init__(self, configured: dict[str, dict[str, Any]]) -> None:
        self.configured = configured

    def render(self, kind: str) -> Response:
        status, message = _RESPONSE_DEFAULTS[kind]
        fallback = "DEFAULT_4XX" if status < 500 else "DEFAULT_5XX"
        config = self.configured.get(kind) or self.configured.get(fallback) or {}
        headers = (config.get("ResponseParameters") or {}).get("Headers") or {}
        body = (config.get("ResponseTemplates") or {}).get("application/json")
        return Response(
            body if body is not None else json.dumps({"message": message}),
            status_code=int(config.get("StatusCode", status)),
            headers={name: _unquote(value) for name, value in headers.items()},
            media_type="application/json",
        )


@dataclass(frozen=True)
class Cors:
    """The OPTIONS method SAM adds to every path of an API with `Cors`: a mock integration that answers
    200 with the configured headers and no authorizer."""

    allow_origin: str
    allow_headers: str | None = None
    allow_methods: str | None = None
    max_age: str | None = None
    allow_credentials: bool = False

    @classmethod
    def from_api(cls, properties: dict[str, Any]) -> Cors | None:
        cors = properties.get("Cors")
        if cors is None:
            return None
        if isinstance(cors, str):
            return cls(allow_origin=_unquote(cors))
        optional = {"AllowHeaders": "allow_headers", "AllowMethods": "allow_methods", "MaxAge": "max_age"}
        return cls(
            allow_origin=_unquote(cors.get("AllowOrigin", "'*'")),
            allow_credentials=cors.get("AllowCredentials") is True,
            **{field: _unquote(str(cors[key])) for key, field in optional.items() if key in cors},
        )

    def preflight(self, path_methods: Iterable[str]) -> Response:
        headers = {"access-control-allow-origin": self.allow_origin}
        if self.allow_headers:
            headers["access-control-allow-headers"] = self.allow_headers
        # Without AllowMethods, SAM lists the path's own methods.
        headers["access-control-allow-methods"] = self.allow_methods or ",".join(
            sorted({*path_methods, "OPTIONS"})
        )
        if self.max_age is not None:
            headers["access-control-max-age"] = self.max_age
        if self.allow_credentials:
            headers["access-control-allow-credentials"] = "true"
        return Response("{}\n", status_code=200, headers=headers, media_type="application/json")


def rest_api(template_: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The template's one `AWS::Serverless::Api` (logical id, properties)."""
    apis = [(k, v) for k, v in template_["Resources"].items() if v["Type"] == "AWS::Serverless::Api"]
    if len(apis) != 1:
        raise ValueError(f"the local gateway serves exactly one AWS::Serverless::Api, found {len(apis)}")
    logical_id, resource = apis[0]
    return logical_id, resource["Properties"]


def _default_authorizer(properties: dict[str, Any]) -> str | None:
    """Logical id of the function behind the API's default (REQUEST) authorizer."""
    auth = properties.get("Auth") or {}
    name = auth.get("DefaultAuthorizer")
    if not name:
        return None
    authorizer = auth["Authorizers"][name]
    if authorizer.get("FunctionPayloadType") != "REQUEST":
        raise ValueError(f"authorizer {name}: the local gateway runs REQUEST authorizers only")
    return authorizer["FunctionArn"]["Fn::GetAtt"][0]


def _path_priority(path: str) -> list[bool]:
    # API Gateway prefers a literal segment to a parameter (/users/stats before /users/{userId}), and
    # any path to a greedy one ({proxy+}); Starlette takes the first route that matches, so this order
    # gives the same choice.
    segments = path.split("/")
    return [any(s.endswith("+}") for s in segments), *(s.startswith("{") for s in segments)]


_GREEDY = re.compile(r"\{(\w+)\+\}")


def starlette_path(path: str) -> str:
    """API Gateway's greedy parameter `{proxy+}` (one or more segments) as Starlette's `{proxy:path}`."""
    return _GREEDY.sub(r"{\1:path}", path)


def _arn_matches(pattern: str, arn: str) -> bool:
    expression = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(expression, arn) is not None


def policy_allows(policy: dict[str, Any], method_arn: str) -> bool:
    """IAM evaluation of an authorizer's policy for one method: an explicit Deny wins, then an Allow."""
    statements = policy["Statement"]
    if isinstance(statements, dict):
        statements = [statements]
    effects = set()
    for statement in statements:
        actions = statement["Action"]
        resources = statement["Resource"]
        actions = [actions] if isinstance(actions, str) else actions
        resources = [resources] if isinstance(resources, str) else resources
        if any(a in ("*", "execute-api:*", "execute-api:Invoke") for a in actions) and any(
            _arn_matches(r, method_arn) for r in resources
        ):
            effects.add(statement["Effect"])
    return "Deny" not in effects and "Allow" in effects


def authorizer_context(result: dict[str, Any]) -> dict[str, str]:
    """`requestContext.authorizer` as a function receives it: the principal id and the context, whose
    values API Gateway passes on as strings. Raises ValueError where API Gateway would refuse the
    authorizer's answer (a configuration error, 500)."""
    context = result.get("context") or {}
    passed: dict[str, str] = {}
    for name, value in context.items():
        if isinstance(value, bool):
            passed[name] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            passed[name] = str(value)
        else:
            raise ValueError(f"context value {name!r} is not a string, number or boolean")
    passed["principalId"] = str(result["principalId"])
    return passed


def proxy_response(result: Any) -> Response:
    """The HTTP response of a Lambda proxy integration result; ValueError when it is malformed."""
    if not isinstance(result, dict):
        raise ValueError(f"expected an object, got {type(result).__name__}")
    try:
        status = int(result["statusCode"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError("statusCode is missing or not an integer") from error
    body = result.get("body")
    body = "" if body is None else body
    if not isinstance(body, str):
        raise ValueError("body must be a string")
    try:
        content = base64.b64decode(body, validate=True) if result.get("isBase64Encoded") else body.encode()
    except binascii.Error as error:
        raise ValueError("isBase64Encoded is set but body is not base64") from error
    # API Gateway merges headers and multiValueHeaders; a pair given in both appears once.
    merged: dict[str, list[str]] = {}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        merged.setdefault(name.lower(), []).extend(str(v) for v in values)
    for name, value in (result.get("headers") or {}).items():
        values = merged.setdefault(name.lower(), [])
        if str(value) not in values:
            values.append(str(value))
    response = Response(content, status_code=status)
    for name, values in merged.items():
        if name not in _RESPONSE_HEADERS_DROPPED:
            for value in values:
                response.headers.append(name, value)
    if content and "content-type" not in merged:
        response.headers["content-type"] = "application/json"  # the proxy integration's default
    return response


async def read_body(request: Request) -> bytes | None:
    """The request body, or None when it exceeds the payload quota. An oversized body is still read to
    its end (and dropped), so the client finishes sending and reads the 413 instead of a reset."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= MAX_PAYLOAD_BYTES:
            chunks.append(chunk)
    return b"".join(chunks) if size <= MAX_PAYLOAD_BYTES else None


class RestGateway:
    """Serves the REST routes of a template with its functions."""

    def __init__(
        self,
        template_: dict[str, Any],
        resolver: template.Resolver,
        functions: dict[str, LocalFunction],
    ) -> None:
        _, properties = rest_api(template_)
        self.stage = str(resolver.resolve(properties.get("StageName", "Prod")))
        self.functions = functions
        self.responses = GatewayResponses(properties.get("GatewayResponses") or {})
        self.cors = Cors.from_api(properties)
        self.binary_media_types = [
            t.replace("~1", "/").lower() for t in properties.get("BinaryMediaTypes", [])
        ]
        authorizer = _default_authorizer(properties)
        self.authorizer = functions[authorizer] if authorizer else None
        self.operations: dict[str, dict[str, template.Route]] = {}
        for route in template.rest_routes(template_):
            self.operations.setdefault(route.path, {})[route.method] = route

    def routes(self) -> list[BaseRoute]:
        """One route per resource path, most specific first, then a catch-all that answers like
        API Gateway for a path it does not know (so it must come after every other route)."""
        ordered = sorted(self.operations, key=_path_priority)
        return [
            *(Route(starlette_path(path), _Endpoint(self, path)) for path in ordered),
            Route("/{path:path}", _Endpoint(self, None)),
        ]

    async def handle(self, request: Request, resource: str | None, request_id: str) -> Response:
        """The response to one request on a resource path (None: a path the API does not have)."""
        operation = self.operation(request.method, resource)
        operations = self.operations.get(resource, {}) if resource else {}
        if operation is None:
            if request.method == "OPTIONS" and operations and self.cors:
                return self.cors.preflight(operations)
            return self.responses.render("MISSING_AUTHENTICATION_TOKEN")
        request.state.function = operation.function  # for the access log
        body = await read_body(request)
        if body is None:
            return self.responses.render("REQUEST_TOO_LARGE")
        event = self.proxy_event(request, operation, body, request_id)
        if operation.authorized and self.authorizer:
            outcome = await self._authorize(self.authorizer, event, request_id)
            if isinstance(outcome, Response):
                return outcome
            event["requestContext"]["authorizer"] = outcome
        return await self._integrate(self.functions[operation.function], event, request_id)

    def operation(self, method: str, resource: str | None) -> template.Route | None:
        """The route of a method on a resource path (`ANY` catches every method)."""
        operations = self.operations.get(resource, {}) if resource else {}
        return operations.get(method) or operations.get("ANY")

    async def asgi_app(self, method: str, resource: str | None) -> ASGIApp | None:
        """The ASGI app of the function serving this route, when it is one (a compatibility surface,
        `kallo.asgi.lambda_handler_for_asgi`): the local stack serves it directly, streaming,
        as the streaming Function URL does in the cloud. Its routes are public to API Gateway
        (`Authorizer: NONE`): the app authenticates its callers itself."""
        operation = self.operation(method, resource)
        if operation is None or operation.authorized:
            return None
        function = self.functions[operation.function]
        handler = await anyio.to_thread.run_sync(function.handler)
        return getattr(handler, "asgi_app", None)

    def _is_binary(self, content_type: str | None) -> bool:
        media_type = (content_type or "").split(";", 1)[0].strip().lower()
        return bool(media_type) and any(fnmatch.fnmatchcase(media_type, t) for t in self.binary_media_types)

    def proxy_event(
        self, request: Request, operation: template.Route, body: bytes, request_id: str
    ) -> dict[str, Any]:
        """The REST API (payload format 1.0) proxy event API Gateway would send for this request."""
        multi_headers: dict[str, list[str]] = {}
        for name, value in request.headers.items():
            multi_headers.setdefault(name, []).append(value)
        multi_query: dict[str, list[str]] = {}
        for name, value in request.query_params.multi_items():
            multi_query.setdefault(name, []).append(value)
        headers = {name: values[-1] for name, values in multi_headers.items()}
        binary = bool(body) and self._is_binary(headers.get("content-type"))
        if binary:
            text: str | None = base64.b64encode(body).decode()
        else:
            text = body.decode("utf-8", errors="replace") if body else None
        now = time.time()
        return {
            "resource": operation.path,
            "path": request.url.path,
            "httpMethod": request.method,
            "headers": headers or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": dict(request.path_params) or None,
            "stageVariables": None,
            "requestContext": {
                "accountId": template.ACCOUNT,
                "apiId": API_ID,
                "resourcePath": operation.path,
                "httpMethod": request.method,
                "path": f"/{self.stage}{request.url.path}",
                "stage": self.stage,
                "requestId": request_id,
                "extendedRequestId": request_id,
                "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "requestTimeEpoch": int(now * 1000),
                "protocol": f"HTTP/{request.scope.get('http_version', '1.1')}",
                "domainName": headers.get("host", ""),
                "identity": {
                    "sourceIp": request.client.host if request.client else "127.0.0.1",
                    "userAgent": headers.get("user-agent"),
                },
            },
            "body": text,
            "isBase64Encoded": binary,
        }

    def method_arn(self, event: dict[str, Any]) -> str:
        return (
            f"arn:aws:execute-api:{template.REGION}:{template.ACCOUNT}:{API_ID}/{self.stage}/"
            f"{event['httpMethod']}{event['path']}"
        )

    def authorizer_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """The REQUEST authorizer's event: the request's parts and context, and the method's ARN."""
        copied = (
            "resource",
            "path",
            "httpMethod",
            "headers",
            "multiValueHeaders",
            "queryStringParameters",
            "multiValueQueryStringParameters",
            "pathParameters",
            "stageVariables",
        )
        return {
            "type": "REQUEST",
            "methodArn": self.method_arn(event),
            **{key: event[key] for key in copied},
            "requestContext": dict(event["requestContext"]),
        }

    async def _authorize(
        self, authorizer: LocalFunction, event: dict[str, Any], request_id: str
    ) -> dict[str, str] | Response:
        """The authorizer's context for the function, or the gateway's refusal."""
        authorizer_event = self.authorizer_event(event)
        try:
            result = await authorizer.invoke_async(authorizer_event, request_id=request_id)
        except Exception as error:
            # API Gateway recognises exactly this message as "credentials refused".
            if str(error) == "Unauthorized":
                return self.responses.render("UNAUTHORIZED")
            logger.exception("the authorizer %s failed", authorizer.logical_id)
            return self.responses.render("AUTHORIZER_FAILURE")
        try:
            allowed = policy_allows(result["policyDocument"], authorizer_event["methodArn"])
            context = authorizer_context(result)
        except (KeyError, TypeError, ValueError) as error:
            logger.error("the authorizer %s answered a malformed policy: %r", authorizer.logical_id, error)
            return self.responses.render("AUTHORIZER_CONFIGURATION_ERROR")
        return context if allowed else self.responses.render("ACCESS_DENIED")

    async def _integrate(self, function: LocalFunction, event: dict[str, Any], request_id: str) -> Response:
        try:
            result = await function.invoke_async(event, request_id=request_id)
        except Exception:
            logger.exception("%s raised: API Gateway answers 502", function.logical_id)
            return self.responses.render("DEFAULT_5XX")
        try:
            return proxy_response(result)
        except ValueError as error:
            logger.error("%s returned a malformed Lambda proxy response: %s", function.logical_id, error)
            return self.responses.render("DEFAULT_5XX")


class _Endpoint:
    """The ASGI app of one resource path. (An ASGI app rather than a request function: Starlette would
    limit a function's route to GET, and the gateway itself decides what each method gets.)"""

    def __init__(self, gateway: RestGateway, resource: str | None) -> None:
        self.gateway = gateway
        self.resource = resource

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        request_id = str(uuid4())
        app = await self.gateway.asgi_app(request.method, self.resource)
        if app is not None:
            operation = self.gateway.operation(request.method, self.resource)
            request.state.function = operation.function if operation else None  # for the access log
            await app(scope, receive, send)
            return
        response = await self.gateway.handle(request, self.resource, request_id)
        response.headers["x-amzn-requestid"] = request_id
        await response(scope, receive, send)


def routes(stack: Stack) -> list[BaseRoute]:
    """The stack's route factory for the REST API (it must come last: see `RestGateway.routes`)."""
    return RestGateway(stack.template, stack.resolver, stack.functions).routes()


# A credential in a query string: browsers can only give a WebSocket its token as `?token=`.
_QUERY_CREDENTIAL = re.compile(
    r"(?i)(?<![A-Za-z0-9_-])((?:access_|id_)?token|api[_-]?key|x-api-key)=[^&\s\"'#;,]+"
)


def redact_credentials(text: str) -> str:
    """`text` with the values of `token=`, `api_key=` and the like replaced."""
    return _QUERY_CREDENTIAL.sub(r"\1=[redacted]", text)


class RedactCredentials(logging.Filter):
    """Rewrites a record's message (and its traceback) without query-string credentials, so that a
    line quoting a URL, uvicorn's `"WebSocket /ws?token=..."` for one, never writes the token out."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_credentials(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_credentials(record.exc_text)
        return True


_REDACT = RedactCredentials()


def redact_logged_credentials() -> None:
    """Install the redaction where the stack's lines are written: the root logger's handlers (the
    stack's own loggers propagate there) and uvicorn's loggers, which have handlers of their own."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(_REDACT)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).addFilter(_REDACT)


class AccessLog:
    """ASGI middleware: one log line per HTTP request (method, path, status, function, milliseconds).
    The path only: the query string may carry a credential."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before it answers

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            function = (scope.get("state") or {}).get("function")
            # Posts to @connections come one per delta per subscriber: too many for the INFO log.
            level = logging.DEBUG if scope["path"].startswith("/_aws/") else logging.INFO
            logger.log(
                level,
                "%s %s %d %.0f ms%s",
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - started) * 1000,
                f" ({function})" if function else "",
            )
