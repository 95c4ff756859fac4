"""The Pieces identifiers stream, attacked from tenant B's side over real WebSockets (I4, I3, I8): B's
streams (its service account's key, its user's token, a convo-scoped token) never list nor hear of A's
conversations while A creates, renames and deletes them; a narrow token hears nothing outside its scope;
a revoked token's stream is closed at the next change. The REST listings of the surface list B's own
convos only."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.security.conftest import Tenant, bearer, mint
from tests.support.local_stack import RunningStack

pytestmark = [pytest.mark.e2e, pytest.mark.security]


def frame_ids(connection: ClientConnection, timeout: float) -> list[str] | None:
    """The ids of the next frame (deletions included), None when none comes in time."""
    try:
        frame = json.loads(connection.recv(timeout=timeout))
    except TimeoutError:
        return None
    return [item["conversation"]["id"] for item in frame["iterable"]]


@pytest.fixture
def open_stream(stack: RunningStack) -> Iterator[Callable[[dict[str, str]], ClientConnection]]:
    opened: list[ClientConnection] = []

    def open_(headers: dict[str, str]) -> ClientConnection:
        url = f"{stack.ws_url}/pieces/conversations/stream/identifiers"
        connection = connect(url, additional_headers=headers, open_timeout=10)
        opened.append(connection)
        return connection

    yield open_
    for connection in opened:
        connection.close()


def test_b_never_hears_of_as_conversations(
    tenant_a: Tenant, tenant_b: Tenant, open_stream: Callable[[dict[str, str]], ClientConnection]
) -> None:
    a, b = tenant_a, tenant_b
    streams = {
        "key": open_stream({"x-api-key": b.key}),
        "token": open_stream(bearer(b.user_token["jwt"])),
        "convo token": open_stream(bearer(b.convo_token["jwt"])),
    }
    for name, stream in streams.items():
        first = frame_ids(stream, 10)
        assert first is not None, f"{name}: no first snapshot"
        assert not set(first) & a.secrets(), name
    made = a.user.ok("POST", "/pieces/conversations/create", 200, json={"type": "COPILOT", "name": "A's"})
    a.user.ok("PATCH", f"/convos/{made['id']}", 200, json={"name": "A's, renamed"})
    a.user.ok("POST", f"/pieces/conversations/{made['id']}/delete", 204)
    a.user.ok("PATCH", f"/convos/{a.convo_id}", 200, json={"name": f"renamed {uuid.uuid4().hex[:6]}"})
    for name, stream in streams.items():
        assert frame_ids(stream, 2) is None, f"B's {name} stream heard of A's conversations"
    for api in (b.sa, b.user):
        listings = str(api.ok("GET", "/pieces/conversations/identifiers", 200))
        listings += str(api.ok("GET", "/pieces/conversations", 200))
        assert not {s for s in {made["id"], *a.secrets()} if s and s in listings}


def test_a_narrow_token_hears_only_its_scope(
    tenant_b: Tenant, open_stream: Callable[[dict[str, str]], ClientConnection]
) -> None:
    """I3: B's convo-scoped token lists B's scoped convo only, and hears nothing of B's other convos."""
    b = tenant_b
    narrow = open_stream(bearer(b.convo_token["jwt"]))
    assert frame_ids(narrow, 10) == [b.convo_id]
    other = b.user.ok("POST", "/pieces/conversations/create", 200, json={"type": "COPILOT"})
    assert frame_ids(narrow, 2) is None
    b.user.ok("POST", f"/pieces/conversations/{other['id']}/delete", 204)
    assert frame_ids(narrow, 2) is None


def test_a_revoked_token_stream_is_closed(
    tenant_b: Tenant, open_stream: Callable[[dict[str, str]], ClientConnection]
) -> None:
    """I8: the next change re-checks the stream's credential; a revoked token's stream is closed."""
    b = tenant_b
    token = mint(b.sa, b.user_id, [{"type": "user", "id": b.user_id}])
    stream = open_stream(bearer(token["jwt"]))
    assert frame_ids(stream, 10) is not None
    b.sa.ok("DELETE", f"/auth/access-tokens/{token['id']}", 204)
    time.sleep(1.5)  # the suite's credential cache is 1 s
    b.user.ok("POST", "/pieces/conversations/create", 200, json={"type": "COPILOT"})
    with pytest.raises(ConnectionClosed):
        while True:
            assert frame_ids(stream, 5) is not None, "neither closed nor told"
