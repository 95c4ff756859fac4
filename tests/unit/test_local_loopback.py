"""The local stack's debug endpoints (the mailbox, `@connections`) and its embedded AWS answer only this
machine, even when the stack listens on every interface (HOST=0.0.0.0)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from local import loopback, mailbox, stack, template, ws_gateway
from local.ws_gateway import WebSocketApi, WebSocketGateway

TEMPLATE = template.load()
REMOTE = ("203.0.113.7", 51000)  # a machine on the network


def _app() -> Starlette:
    """The stack's app (its middleware) with the debug endpoints' real routes."""
    api = WebSocketApi("WebSocketApi", "local", "v1", ("type",), {})
    gateway = WebSocketGateway(api, {})
    local = stack.Stack(TEMPLATE, template.Resolver(TEMPLATE, {}), {}, "http://127.0.0.1:3000")
    return stack.build_app(local, [mailbox.routes, lambda _: gateway.routes()])


def _client(address: tuple[str, int], server: str = "0.0.0.0") -> TestClient:
    app = _app()

    async def served_on(scope: Scope, receive: Receive, send: Send) -> None:  # where the stack listens
        scope["server"] = (server, 3000)
        await app(scope, receive, send)

    return TestClient(served_on, client=address)


@pytest.fixture
def ses() -> Iterator[None]:
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.mark.usefixtures("ses")
@pytest.mark.parametrize("address", [("127.0.0.1", 50000), ("::1", 50000), ("::ffff:127.0.0.1", 50000)])
def test_this_machine_reads_the_debug_endpoints(address: tuple[str, int]) -> None:
    client = _client(address)
    assert client.get("/_local/mail").status_code == 200
    # @connections answers as the management API does: that connection is gone.
    assert client.get(f"{ws_gateway.MANAGEMENT_PATH}/@connections/abc=").status_code == 410


@pytest.mark.usefixtures("ses")
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/_local/mail"),
        ("GET", "/_local/mail/some-id"),
        ("GET", f"{ws_gateway.MANAGEMENT_PATH}/@connections/abc="),
        ("POST", f"{ws_gateway.MANAGEMENT_PATH}/@connections/abc="),
        ("DELETE", f"{ws_gateway.MANAGEMENT_PATH}/@connections/abc="),
    ],
)
def test_another_machine_gets_404_from_the_debug_endpoints(
    method: str, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="local.loopback"):
        response = _client(REMOTE).request(method, path, content=b"{}")
    assert response.status_code == 404
    assert response.json() == {"message": "Not Found"}
    assert f"refused {path} to {REMOTE[0]}" in caplog.text


@pytest.mark.usefixtures("ses")
def test_a_client_on_the_address_the_stack_listens_on_is_this_machine() -> None:
    """With HOST set to one interface's address, the stack's own functions post to `@connections`
    through that address, and arrive from it."""
    own = _client(("192.168.1.5", 50000), server="192.168.1.5")
    assert own.get("/_local/mail").status_code == 200
    neighbour = _client(("192.168.1.6", 50000), server="192.168.1.5")
    assert neighbour.get("/_local/mail").status_code == 404


def test_a_client_without_an_address_is_not_this_machine() -> None:
    assert not loopback.from_this_machine({"type": "http", "client": None, "server": ("127.0.0.1", 3000)})
    assert not loopback.from_this_machine({"type": "http", "client": ("testclient", 1), "server": None})


def test_only_the_debug_prefixes_are_guarded() -> None:
    assert loopback.is_local_only("/_local") and loopback.is_local_only("/_aws/ws/@connections/x")
    assert not loopback.is_local_only("/_localhost") and not loopback.is_local_only("/teams")


def test_the_stack_warns_when_other_machines_can_reach_it(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="local.loopback"):
        loopback.warn_if_exposed("127.0.0.1", 3000)
        assert caplog.text == ""
        loopback.warn_if_exposed("0.0.0.0", 3000)
    assert "listening on 0.0.0.0:3000" in caplog.text and "/_local, /_aws" in caplog.text


def test_listening_everywhere_the_functions_still_reach_the_stack_on_loopback() -> None:
    with stack.listen(0, "0.0.0.0") as sock:
        assert stack.local_url(sock) == f"http://127.0.0.1:{sock.getsockname()[1]}"
    with stack.listen(0, "127.0.0.1") as sock:
        assert stack.local_url(sock) == f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_the_embedded_aws_listens_on_loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOST", "0.0.0.0")
    server = stack.start_embedded_aws()
    try:
        assert server.get_host_and_port()[0] == "127.0.0.1"
    finally:
        server.stop()
