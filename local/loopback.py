"""The local stack's debug endpoints answer only this machine.

`make run` listens on 127.0.0.1. `HOST=0.0.0.0` (or another address) lets other machines reach the
API, a phone or a container for instance, but never these paths, which have no authentication:
- `/_local/...`: the mailbox of the emails the stack "sent" (exports, with the convos they carry);
- `/_aws/...`: the `@connections` management API (send to, describe or close any socket).
Anyone else gets 404, as for a path that does not exist. moto's embedded AWS endpoint (every table,
bucket and secret of the stack) is always bound to 127.0.0.1, whatever HOST says.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketClose

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
# Path prefixes served to this machine only (a path is under a prefix when it is the prefix or goes on
# with a slash).
LOCAL_ONLY_PREFIXES = ("/_local", "/_aws")


def is_loopback(address: str | None) -> bool:
    """127.0.0.0/8, ::1, or an IPv4-mapped loopback address; False for anything else, names included."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def is_ip_address(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def is_unspecified(address: str) -> bool:
    """0.0.0.0 or `::`: every address of the machine."""
    try:
        return ipaddress.ip_address(address).is_unspecified
    except ValueError:
        return False


def is_local_only(path: str, prefixes: Sequence[str] = LOCAL_ONLY_PREFIXES) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in prefixes)


def from_this_machine(scope: Scope) -> bool:
    """The client connected from loopback, or from the very address the server listens on (the
    stack's own functions reach `@connections` that way when HOST names one interface)."""
    client = scope.get("client")
    if not client:
        return False
    server = scope.get("server")
    own = server[0] if server and not is_unspecified(str(server[0])) else None
    return is_loopback(client[0]) or client[0] == own


class LoopbackOnly:
    """ASGI middleware: requests for a local-only path from another machine get 404 (a WebSocket on
    one is closed before its handshake completes)."""

    def __init__(self, app: ASGIApp, prefixes: Sequence[str] = LOCAL_ONLY_PREFIXES) -> None:
        self.app = app
        self.prefixes = tuple(prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] in ("http", "websocket")
            and is_local_only(scope["path"], self.prefixes)
            and not from_this_machine(scope)
        ):
            client = scope.get("client") or ("unknown", 0)
            logger.warning(
                "refused %s to %s: debug endpoints answer this machine only", scope["path"], client[0]
            )
            if scope["type"] == "http":
                await JSONResponse({"message": "Not Found"}, status_code=404)(scope, receive, send)
            else:
                await WebSocketClose()(scope, receive, send)
            return
        await self.app(scope, receive, send)


def warn_if_exposed(host: str, port: int) -> None:
    """The start-up warning for a stack that other machines can reach."""
    if not is_loopback(host):
        logger.warning(
            "listening on %s:%d: other machines can call the API (with credentials); the debug endpoints "
            "(%s) still answer this machine only, and the embedded AWS listens on %s",
            host,
            port,
            ", ".join(LOCAL_ONLY_PREFIXES),
            LOOPBACK,
        )
