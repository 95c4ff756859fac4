"""The glue every REST handler shares: the resolver factory, the caller, error mapping and CORS.

A handler module is a few lines:

    app = create_app()

    @app.post("/teams")
    def create_team(body: TeamCreate) -> Response:
        return created(teams.create_team(caller(app), body))

    lambda_handler = lambda_handler_for(app)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Query

from kallo import json_input, quotas
from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.errors import DomainError, Forbidden, TooManyRequests, Unauthorized
from kallo.paging import PageToken
from kallo.settings import get_settings

logger = Logger()
JSON = "application/json"

# The `nextToken` query parameter of every paged list (`nextToken: NextToken = None`).
NextToken = Annotated[PageToken | None, Query(description="The previous page's x-next-token")]


def error_response(
    status: int,
    code: str,
    message: str,
    details: list | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return Response(status, JSON, json.dumps(body, default=str), headers=headers)


def _validation_details(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"loc": [str(p) for p in e.get("loc", ())], "type": e.get("type"), "msg": e.get("msg")}
        for e in errors
    ]


def create_app() -> APIGatewayRestResolver:
    """The resolver of one handler module. I11 (hostile input): every JSON body goes through
    `kallo.json_input.parse` (bounded size and nesting, 400 `malformed_json`), and every failure of
    validation is a 4xx `{code, message}`."""
    app = APIGatewayRestResolver(enable_validation=True, json_body_deserializer=json_input.parse)

    @app.exception_handler(DomainError)
    def _domain_error(error: DomainError) -> Response:
        headers = {"Retry-After": str(error.retry_after)} if isinstance(error, TooManyRequests) else None
        return error_response(error.status, error.code, error.message, error.details, headers)

    @app.exception_handler(RequestValidationError)
    def _validation_error(error: RequestValidationError) -> Response:
        errors = error.errors()
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = f"{where}: {first.get('msg', 'invalid')}" if where else "the request is invalid"
        return error_response(422, "validation_error", message, _validation_details(errors))

    @app.exception_handler(NotFoundError)
    def _no_route(error: NotFoundError) -> Response:
        # A path whose parameters match no route (e.g. a NUL in an id): Powertools' own answer is not
        # the API's error shape.
        return error_response(404, "not_found", "no such resource")

    return app


def principal_of(app: APIGatewayRestResolver) -> Principal:
    """The principal the authorizer saw. I10 (cost): the authorizer counted this request against the
    principal's rate (it cannot answer 429 itself, only allow or deny); over the limit, it says so in its
    context and the request ends here with 429 and `Retry-After`, before any work is done."""
    context = app.current_event.raw_event.get("requestContext", {}).get("authorizer") or {}
    if "scheme" not in context:
        raise Unauthorized("no credentials")
    quotas.raise_if_throttled(context)
    return Principal.from_context(context)


def console_url(app: APIGatewayRestResolver) -> str:
    """Where the console is, for links in the emails a request sends: `KALLO_CONSOLE_URL` when set
    (the `PublicConsoleUrl` stack parameter, for a custom domain; or the local stack's), else this REST
    API's own `/console/`: `https://<requestContext.domainName>/<stage>/console/`."""
    configured = get_settings().console_url
    if configured:
        return configured
    context = app.current_event.raw_event.get("requestContext") or {}
    domain, stage = str(context.get("domainName") or ""), str(context.get("stage") or "")
    return f"https://{domain}/{stage}/console/" if stage else f"https://{domain}/console/"


def caller(app: APIGatewayRestResolver, *, allow_unregistered: bool = False) -> Access:
    """The access evaluator for this request's principal.

    An OIDC identity that has no user yet may only register (Get/Create a User); everywhere else it
    gets 403 `user_not_registered`.
    """
    principal = principal_of(app)
    if principal.user_id is None and not allow_unregistered:
        raise Forbidden(
            "this identity has no Kallo user yet: create it with GET /users?firebaseId=<your id>",
            code="user_not_registered",
        )
    return Access(principal)


def ok(body: Any, *, next_token: str | None = None, status: int = 200) -> Response:
    """A JSON response (the resolver validates `body` against the route's declared `Response[...]`
    type and serialises it); `next_token` becomes the `x-next-token` header of a paged list."""
    headers = {"x-next-token": next_token} if next_token else None
    return Response(status, JSON, body, headers=headers)


def created(body: Any) -> Response:
    return ok(body, status=201)


def accepted(body: Any) -> Response:
    return ok(body, status=202)


def no_content() -> Response:
    return Response(204, None, "")


def _unsupported_media_type(event: dict, media_types: tuple[str, ...]) -> dict | None:
    """The 415 answer to a body of a media type the operation does not read, before the resolver
    tries to parse it (it would read a form or a multipart body for a JSON route, and raise a
    ValueError, a 5xx, on a malformed one). A body without a content type is read as JSON."""
    if not event.get("body"):
        return None
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    media_type = str(headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if not media_type or media_type in media_types:
        return None
    body = {
        "code": "unsupported_media_type",
        "message": f"send {' or '.join(media_types)}, not {media_type[:100]}",
    }
    return {
        "statusCode": 415,
        "multiValueHeaders": {"Content-Type": [JSON]},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def lambda_handler_for(
    app: APIGatewayRestResolver, *, media_types: tuple[str, ...] = (JSON,)
) -> Callable[[dict, Any], dict]:
    """The Lambda entry point: structured logs with the request's context, bodies of other media
    types than `media_types` refused (415), then CORS for tokens that name an allowed origin (seed,
    Create Access Token: without one the header is omitted).

    The event is never logged, whatever POWERTOOLS_LOGGER_LOG_EVENT says: its headers and query string
    carry credentials (x-api-key, Authorization, `?token=`)."""

    @logger.inject_lambda_context(clear_state=True, log_event=False)
    def lambda_handler(event: dict, context: Any) -> dict:
        response = _unsupported_media_type(event, media_types) or app.resolve(event, context)
        origin = (event.get("requestContext", {}).get("authorizer") or {}).get("allowOrigin")
        if origin:
            headers = response.setdefault("multiValueHeaders", {})
            headers["access-control-allow-origin"] = [origin]
            headers.setdefault("access-control-expose-headers", ["x-next-token"])
        return response

    return lambda_handler
