"""What the end-to-end suites share (tests/e2e and tests/security): a pytest-flavoured `start_stack`
(a stack that fails to start or stop fails the test with its output), and `WsClient`, one real
WebSocket connection to a running stack speaking API.md's envelope, with `ws_opener` to open and close
them. Starting and stopping the stack itself live in `tests.support.local_stack`, which the benchmarks
share.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.support import local_stack
from tests.support.local_stack import RunningStack, StackFailed
from tests.support.oidc import OidcIssuer

# Long enough for a reply of the embedded model on a busy machine; a message that is due arrives in
# milliseconds otherwise.
WS_TIMEOUT_SECONDS = 60


def ok(response: httpx.Response, status: int = 200) -> Any:
    """The JSON of a response that has `status` (the response's text explains any other)."""
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def key(stack: RunningStack) -> dict[str, str]:
    """The headers of the stack's bootstrap service account."""
    return {"x-api-key": stack.api_key}


def new_convo(stack: RunningStack, name: str) -> str:
    """A convo of the bootstrap service account; its id."""
    return ok(stack.client.post("/convos", json={"name": name}, headers=key(stack)), 201)["id"]


@contextmanager
def start_stack(
    issuer: OidcIssuer | None, *, more_issuers: tuple[OidcIssuer, ...] = (), **environment: str
) -> Iterator[RunningStack]:
    """A stack on a free port, ready; killed at the end if the test did not stop it. A stack that
    fails to start or to stop fails the test with its output."""
    try:
        with local_stack.start_stack(issuer, more_issuers=more_issuers, **environment) as running:
            yield running
    except StackFailed as error:
        pytest.fail(str(error))


class WsClient:
    """One WebSocket connection to the stack, speaking API.md's envelope
    `{"type", "payload", "requestId"?}`. Messages are read in order; `expect` skips the ones before
    the message it waits for and keeps them in `seen`."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.seen: list[dict[str, Any]] = []

    def send(self, message_type: str, payload: Any, request_id: str | None = None) -> None:
        message: dict[str, Any] = {"type": message_type, "payload": payload}
        if request_id is not None:
            message["requestId"] = request_id
        self.connection.send(json.dumps(message))

    def send_raw(self, text: str) -> None:
        self.connection.send(text)

    def receive(self, timeout: float = WS_TIMEOUT_SECONDS) -> dict[str, Any]:
        message = json.loads(self.connection.recv(timeout=timeout))
        self.seen.append(message)
        return message

    def expect(
        self, message_type: str, timeout: float = WS_TIMEOUT_SECONDS, **payload: Any
    ) -> dict[str, Any]:
        """The next message of `message_type` whose payload has the given fields; fails the test with
        what arrived instead when none comes within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        skipped: list[dict[str, Any]] = []
        while True:
            remaining = deadline - time.monotonic()
            try:
                message = self.receive(timeout=max(remaining, 0.001))
            except TimeoutError:
                pytest.fail(f"no {message_type} {payload} within {timeout} s; received instead: {skipped}")
            body = message.get("payload")
            if message.get("type") == message_type and all(
                isinstance(body, dict) and body.get(k) == v for k, v in payload.items()
            ):
                return message
            skipped.append(message)

    def nothing_within(self, seconds: float) -> None:
        """Fails the test if a message arrives within `seconds` (a connection the server closed hears
        nothing)."""
        try:
            message = self.receive(timeout=seconds)
        except (TimeoutError, ConnectionClosed):
            return
        pytest.fail(f"expected no message, got {message}")

    def close(self) -> None:
        self.connection.close()


Connect = Callable[..., WsClient]


@contextmanager
def ws_opener(stack: RunningStack) -> Iterator[Connect]:
    """`open_(convo_id, headers={...}, query={...}, path_form=False)` opens a connection to `stack`
    (`/ws?convoId=` or, with `path_form`, `/ws/convos/{convoId}`); a refused one raises
    `websockets.exceptions.InvalidStatus`. Every connection is closed on leaving."""
    opened: list[WsClient] = []

    def open_(
        convo_id: str,
        *,
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        path_form: bool = False,
    ) -> WsClient:
        if path_form:
            url = f"{stack.ws_url}/ws/convos/{convo_id}"
            parameters = dict(query or {})
        else:
            url = f"{stack.ws_url}/ws"
            parameters = {"convoId": convo_id, **(query or {})}
        if parameters:
            url = f"{url}?{urlencode(parameters)}"
        client = WsClient(connect(url, additional_headers=headers or {}, open_timeout=30, max_size=None))
        opened.append(client)
        return client

    try:
        yield open_
    finally:
        for client in opened:
            client.close()
