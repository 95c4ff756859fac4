"""What the compatibility surfaces share: the peer APIs of the seeds (Dify-style chat, Gloo KaLLM,
Pieces conversations) served on Kallo's own data, each an ASGI app (Starlette) adapted to Lambda by
Mangum.

A surface module is a list of routes whose endpoints are plain functions:

    @endpoint(body=ChatRequest)
    def chat(request: Request, body: ChatRequest) -> dict:
        return translate(answering.ask(...))

    app = create_surface([Route("/chat-messages", chat, methods=["POST"])])

and its Lambda function is two lines (`functions/compat/<surface>.py`):

    app = dify.app
    lambda_handler = lambda_handler_for_asgi(app)

Errors are one shape on every surface, Dify's: `{code, message, status}` with that HTTP status
(`Retry-After` on 429). I11 (hostile input): JSON bodies go through `kallo.json_input` (bounded size and
nesting); anything a surface did not expect is a 4xx or, for a bug, a 500 `internal_error` whose cause
goes to the log only (I7), never a 502 from a crashed function.

Streaming: `sse(...)` answers `text/event-stream`. Served by an ASGI server (the local stack, and the
streaming Function URL in the cloud) each event leaves as soon as it is made; through API Gateway,
Mangum buffers the whole stream into one response (the fallback where a deployment cannot stream).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Any, TypeVar

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kallo import json_input, quotas
from kallo.asgi import lambda_handler_for_asgi as lambda_handler_for_asgi  # the surfaces' entry point
from kallo.auth import app_keys
from kallo.authz.access import Access
from kallo.errors import DomainError, Forbidden, TooManyRequests, Unauthorized, Unprocessable

logger = Logger()
JSON = "application/json"
SSE = "text/event-stream"
INTERNAL = "the request could not be completed because of an internal error"
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}

Endpoint = Callable[[Request], Any]
M = TypeVar("M", bound=BaseModel)


def _plain(value: Any) -> Any:
    # DynamoDB gives numbers as Decimal.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json(value: Any) -> str:
    return json.dumps(value, default=_plain, ensure_ascii=False, separators=(",", ":"))


class JsonResponse(Response):
    media_type = JSON

    def render(self, content: Any) -> bytes:
        return to_json(content).encode()


def error_response(status: int, code: str, message: str, **extra: Any) -> JsonResponse:
    """The one error shape of the surfaces: `{code, message, status}` (Dify's)."""
    headers = extra.pop("headers", None)
    return JsonResponse({"code": code, "message": message, "status": status, **extra}, status, headers)


def _domain_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, DomainError)
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, TooManyRequests) else None
    extra = {"details": error.details} if error.details else {}
    return error_response(error.status, error.code, error.message, headers=headers, **extra)


def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    code = _HTTP_CODES.get(error.status_code, "bad_request")
    message = "no such resource" if error.status_code == 404 else str(error.detail)
    return error_response(error.status_code, code, message, headers=error.headers)


def _internal_error(request: Request, error: Exception) -> Response:
    return error_response(500, "internal_error", INTERNAL)


class _InternalErrors:
    """A bug becomes a logged 500 `{code, message, status}` (Starlette answers it with
    `_internal_error`, then raises it again) rather than an exception out of the function (a 502 from
    API Gateway, a dropped connection locally). Once a response has started (a stream), there is
    nothing left to answer: it is logged, and the stream ends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            logger.exception("the surface failed", extra={"path": scope.get("path")})
            if not started:
                await error_response(500, "internal_error", INTERNAL)(scope, receive, send)


def create_surface(routes: list[BaseRoute]) -> ASGIApp:
    """The ASGI app of one surface, with the errors of every surface."""
    app = Starlette(
        routes=routes,
        exception_handlers={
            DomainError: _domain_error,
            HTTPException: _http_error,
            Exception: _internal_error,
        },
    )
    return _InternalErrors(app)


def by_prefix(apps: dict[str, ASGIApp]) -> ASGIApp:
    """One ASGI app that hands each request to the surface whose path prefix it starts with (the
    path is kept whole: each surface routes its full paths, as behind API Gateway); 404 otherwise.
    The streaming Function URL serves all the surfaces with one function this way."""

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # nothing to start or stop: the surfaces keep no state
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        path = scope.get("path", "")
        for prefix, app in apps.items():
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                await app(scope, receive, send)
                return
        if scope["type"] == "http":
            await error_response(404, "not_found", "no such resource")(scope, receive, send)

    return dispatch


# -- input ------------------------------------------------------------------------------------------------


def validation_error(error: ValidationError, *, where: str = "") -> Unprocessable:
    """422 `validation_error`, naming the first problem and listing them all in `details`."""
    problems = error.errors(include_url=False, include_context=False, include_input=False)
    first = problems[0] if problems else {}
    location = ".".join(str(p) for p in (where, *first.get("loc", ())) if p != "")
    message = f"{location}: {first.get('msg', 'invalid')}" if location else "the request is invalid"
    details = [
        {"loc": [str(p) for p in e.get("loc", ())], "type": e.get("type"), "msg": e.get("msg")}
        for e in problems
    ]
    return Unprocessable(message, code="validation_error", details=details)


def parse_model(model: type[M], value: Any, *, where: str = "") -> M:
    try:
        return model.model_validate(value)
    except ValidationError as error:
        raise validation_error(error, where=where) from error


async def json_body(request: Request, model: type[M]) -> M:
    """The request's JSON body as `model`: 413 above the bound, 400 `malformed_json`, 422
    `validation_error`. An empty body reads as `{}`."""
    raw = await request.body()
    value = json_input.parse(raw) if raw.strip() else {}
    return parse_model(model, value)


def query_model(request: Request, model: type[M]) -> M:
    """The query string as `model` (each parameter once: the last value wins, as API Gateway's
    single-value parameters do)."""
    return parse_model(model, dict(request.query_params), where="query")


def endpoint(body: type[BaseModel] | None = None) -> Callable[[Callable[..., Any]], Endpoint]:
    """An endpoint from a plain function `fn(request, body)`: the JSON body read and validated first
    (`body=None`: `fn(request, None)`), then `fn` run in a worker thread (services make blocking AWS
    calls). A dict or list it returns is a 200 JSON response; a Response goes out as it is."""

    def decorate(fn: Callable[..., Any]) -> Endpoint:
        @functools.wraps(fn)
        async def handle(request: Request) -> Response:
            parsed = await json_body(request, body) if body is not None else None
            result = await run_in_threadpool(fn, request, parsed)
            return result if isinstance(result, Response) else JsonResponse(result)

        return handle

    return decorate


# -- callers ----------------------------------------------------------------------------------------------


def kallo_access(request: Request) -> Access:
    """The caller of a surface that takes Kallo's own credentials (x-api-key, or a bearer access token or
    OIDC ID token), authenticated as the REST authorizer does and counted against the caller's request
    rate (I10: 429 with Retry-After). An OIDC identity without a user yet gets 403, as on REST."""
    # Imported at the first such caller: it loads PyJWT and cryptography (about 40 ms of CPU), which
    # a surface taking only app keys (Dify) never needs.
    from kallo.auth import authenticate

    principal = authenticate.authenticate(request.headers, request.query_params)
    quotas.require_message_rate(principal.user_id, principal.firebase_id)
    if principal.user_id is None:
        raise Forbidden(
            "this identity has no Kallo user yet: create it with GET /users?firebaseId=<your id>",
            code="user_not_registered",
        )
    return Access(principal)


def bearer_of(request: Request) -> str:
    """The bearer token of the request; 401 without one."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("credentials are required: Authorization: Bearer <key>")
    return value.strip()


def app_key_of(request: Request) -> app_keys.AppKey:
    """The app key of a surface that takes app keys (`Authorization: Bearer app-...`): 401 for a
    missing, unknown or revoked key. Its requests are counted against the rate of the key's tenant
    (I10: 429 with Retry-After), the principal the key acts for."""
    app_key = app_keys.authenticate(bearer_of(request))
    quotas.require_message_rate(app_key.tenant_id)
    return app_key


# -- output -----------------------------------------------------------------------------------------------


def _event_text(item: dict[str, Any] | tuple[str, dict[str, Any]]) -> str:
    if isinstance(item, tuple):
        name, data = item
        return f"event: {name}\ndata: {to_json(data)}\n\n"
    return f"data: {to_json(item)}\n\n"


def sse(events: Iterable[dict[str, Any] | tuple[str, dict[str, Any]]]) -> StreamingResponse:
    """A `text/event-stream` answer: each dict is one `data:` event, a `(name, dict)` pair adds an
    `event:` line. A blocking generator is fine: Starlette iterates it in a worker thread, and each
    event is sent as soon as it is made (no proxy buffering either)."""

    def lines() -> Iterator[str]:
        for item in events:
            yield _event_text(item)

    return StreamingResponse(
        lines(), media_type=SSE, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
