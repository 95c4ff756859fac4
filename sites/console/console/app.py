"""The browser console: static files under GET /console/ and GET /console/config.json, an ASGI app
(Starlette) on Mangum. No authorizer: it serves only files; the page calls the API with the
signed-in user's credential, from the same origin (no CORS)."""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kallo.asgi import lambda_handler_for_asgi

STATIC = Path(__file__).parent / "static"
WEBSOCKET_URL_VARIABLE = "KALLO_WEBSOCKET_URL"


def security_headers(websocket_url: str, aws_endpoint: str = "") -> list[tuple[bytes, bytes]]:
    """What every console response carries. The content security policy is the second wall behind the
    sanitised Markdown: scripts and styles only from the console itself (no inline script runs, even
    if some markup got through), images from the console or data: URLs, no plugins, no <base>.
    Connections: the API (same origin), its WebSocket, and https: for the presigned S3 upload (the
    local stack's embedded S3 is `aws_endpoint`)."""
    sources = " ".join(s for s in ("'self'", websocket_url, "https:", aws_endpoint) if s)
    policy = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src {sources}; form-action 'none'; base-uri 'none'; object-src 'none'"
    )
    return [
        (b"content-security-policy", policy.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        # Deploys change the files: the browser revalidates (ETag) instead of keeping a stale copy.
        (b"cache-control", b"no-cache"),
    ]


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = security_headers(websocket_url(Request(scope)), os.environ.get("AWS_ENDPOINT_URL", ""))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


def websocket_url(request: Request) -> str:
    """KALLO_WEBSOCKET_URL (the deployed stage's wss:// URL); a path there (the local stack's `/ws`)
    is on the host the page came from."""
    configured = os.environ.get(WEBSOCKET_URL_VARIABLE, "")
    if not configured.startswith("/"):
        return configured
    scheme = "wss" if request.url.scheme == "https" else "ws"
    return f"{scheme}://{request.url.netloc}{configured}"


async def config(request: Request) -> Response:
    """What the page cannot derive from its own address: the WebSocket API's URL."""
    return JSONResponse({"webSocketUrl": websocket_url(request)})


async def to_folder(request: Request) -> Response:
    # Relative, so that a stage prefix (/prod/console) is kept.
    return RedirectResponse("console/", status_code=301)


app = Starlette(
    routes=[
        Route("/console", to_folder),
        Route("/console/config.json", config),
        Mount("/console", StaticFiles(directory=STATIC, html=True)),
    ],
    middleware=[Middleware(SecurityHeaders)],
)
lambda_handler = lambda_handler_for_asgi(app)
