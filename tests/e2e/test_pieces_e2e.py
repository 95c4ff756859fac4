"""The Pieces conversations surface over the local stack's real HTTP, through the real `pieces-os-client`
package (its `ConversationsApi` validates our JSON against its models): a conversation created from a
seed, one created from an uploaded document (its summary first), the listings, a deletion; the
identifiers stream (a real WebSocket) hearing a new snapshot when a convo is created over the Pieces
surface and over REST, renamed over REST, and deleted. Tenant B, with a stream of its own, never hears
of A's conversations and cannot reach them (404)."""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from pieces_os_client.api.conversation_api import ConversationApi
from pieces_os_client.api.conversations_api import ConversationsApi
from pieces_os_client.api_client import ApiClient
from pieces_os_client.configuration import Configuration
from pieces_os_client.exceptions import ApiException
from pieces_os_client.models.fragment_format import FragmentFormat
from pieces_os_client.models.seeded_conversation import SeededConversation
from pieces_os_client.models.seeded_conversation_message import SeededConversationMessage
from pieces_os_client.models.streamed_identifiers import StreamedIdentifiers
from pieces_os_client.models.transferable_string import TransferableString
from websockets.sync.client import ClientConnection, connect

from tests.e2e.conftest import RunningStack
from tests.support.e2e import start_stack
from tests.support.oidc import OidcIssuer
from tests.support.tenants import service_account

pytestmark = pytest.mark.e2e

DOCUMENT = (
    b"# Lisbon trams\n\nTram 28 crosses the old town from Martim Moniz to Campo de Ourique. "
    b"It is the busiest line in summer. Tickets cost three euros on board.\n"
)
# The embedded model writes the summary; on a machine busy with other stacks that can take minutes.
POLL_SECONDS = 420


def until(what: str, attempt: Callable[[], Any], seconds: float = POLL_SECONDS) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = attempt()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {seconds} s")
        time.sleep(0.5)


def api_client(stack: RunningStack, key: str) -> ApiClient:
    configuration = Configuration(host=f"{stack.base_url}/pieces")
    return ApiClient(configuration, header_name="x-api-key", header_value=key)


def pieces_api(stack: RunningStack, key: str) -> ConversationsApi:
    return ConversationsApi(api_client(stack, key))


class Stream:
    """One identifiers stream: every frame read is parsed with the client's `StreamedIdentifiers`."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.frames: list[list[tuple[str, bool]]] = []

    def next(self, timeout: float = 60) -> list[tuple[str, bool]]:
        parsed = StreamedIdentifiers.from_json(self.connection.recv(timeout=timeout))
        frame = [(i.conversation.id, bool(i.deleted)) for i in parsed.iterable]
        self.frames.append(frame)
        return frame

    def until(
        self, wanted: Callable[[list[tuple[str, bool]]], bool], timeout: float = 60
    ) -> list[tuple[str, bool]]:
        deadline = time.monotonic() + timeout
        while True:
            frame = self.next(timeout=max(deadline - time.monotonic(), 0.01))
            if wanted(frame):
                return frame

    def quiet(self, seconds: float) -> list[list[tuple[str, bool]]]:
        """The frames that arrive within `seconds` (none expected)."""
        heard = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                heard.append(self.next(timeout=left))
            except TimeoutError:
                break
        return heard


@pytest.fixture(scope="module")
def stack(oidc_issuer: OidcIssuer) -> Iterator[RunningStack]:
    """A stack of this module's own: the session's embedded model has the summaries of every earlier
    test's documents queued (one generation at a time), and this test waits for a summary."""
    with start_stack(oidc_issuer) as running:
        yield running
        assert running.stop(signal.SIGTERM) == 0, running.output()


@pytest.fixture
def open_stream(stack: RunningStack) -> Iterator[Callable[[str], Stream]]:
    opened: list[ClientConnection] = []

    def open_(key: str) -> Stream:
        url = f"{stack.ws_url}/pieces/conversations/stream/identifiers"
        connection = connect(url, additional_headers={"x-api-key": key}, open_timeout=10)
        opened.append(connection)
        return Stream(connection)

    yield open_
    for connection in opened:
        connection.close()


def ids(frame: list[tuple[str, bool]]) -> list[str]:
    return [i for i, deleted in frame if not deleted]


def test_a_pieces_client_on_kallo(stack: RunningStack, open_stream: Callable[[str], Stream]) -> None:
    _, key_a = service_account(stack, f"pieces-a-{uuid.uuid4().hex[:6]}")
    _, key_b = service_account(stack, f"pieces-b-{uuid.uuid4().hex[:6]}")
    a, b = pieces_api(stack, key_a), pieces_api(stack, key_b)
    stream_a, stream_b = open_stream(key_a), open_stream(key_b)
    # The first snapshot on connect: nothing yet for these new tenants.
    assert stream_a.next() == [] and stream_b.next() == []

    # A conversation from a seed, heard on A's stream.
    seed = SeededConversation(
        type="COPILOT",
        name="Planning",
        messages=[
            SeededConversationMessage(
                role="USER", fragment=FragmentFormat(string=TransferableString(raw="Which tram?"))
            ),
        ],
    )
    planning = a.conversations_create_specific_conversation(seeded_conversation=seed)
    assert planning.name == "Planning" and planning.type.value == "COPILOT"
    assert planning.messages.iterable[0].reference.fragment.string.raw == "Which tram?"
    assert ids(stream_a.until(lambda f: planning.id in ids(f))) == [planning.id]

    # Renamed over REST: a new snapshot. Created over REST: it too.
    rest_a = {"x-api-key": key_a}
    renamed = stack.client.patch(f"/convos/{planning.id}", json={"name": "Tram day"}, headers=rest_a)
    assert renamed.status_code == 200, renamed.text
    assert ids(stream_a.next()) == [planning.id]
    # What the SDK's stream cache then reads for the identifier it heard.
    one = ConversationApi(api_client(stack, key_a)).conversation_get_specific_conversation(planning.id)
    assert one.name == "Tram day" and one.messages.iterable[0].reference.fragment.string.raw == "Which tram?"
    made = stack.client.post("/convos", json={"name": "over REST"}, headers=rest_a)
    assert made.status_code == 201, made.text
    over_rest = made.json()["id"]
    assert ids(stream_a.until(lambda f: over_rest in ids(f))) == [over_rest, planning.id]

    # From an uploaded document: the conversation opens with its summary (asked for, then awaited).
    files = {"file": ("trams.md", DOCUMENT, "text/markdown")}
    upload = stack.client.post("/data-sources/uploads", files=files, headers=rest_a)
    assert upload.status_code == 201, upload.text
    source_id = upload.json()["id"]

    def created_from_asset() -> Any:
        try:
            return a.conversations_create_from_asset(source_id)
        except ApiException as error:
            assert error.status == 409, error.body  # processing, or its summary being written
            return None

    output = until("a conversation from the document", created_from_asset)
    grounded = output.conversation
    assert grounded.reference.name == "trams.md"
    assert [x.id for x in grounded.reference.assets.iterable] == [source_id]
    [opening] = grounded.reference.messages.iterable
    assert opening.reference.role.value == "ASSISTANT" and opening.reference.fragment.string.raw.strip()
    stream_a.until(lambda f: grounded.id in ids(f))

    # The listings, parsed by the client's models.
    listed = a.conversations_snapshot(transferables=True)
    by_id = {c.id: c for c in listed.iterable}
    assert set(by_id) == {planning.id, over_rest, grounded.id}
    assert by_id[planning.id].name == "Tram day"
    assert (
        by_id[grounded.id].messages.iterable[0].reference.fragment.string.raw
        == opening.reference.fragment.string.raw
    )
    identifiers = a.conversations_identifiers_snapshot()
    assert [c.id for c in identifiers.iterable] == [grounded.id, over_rest, planning.id]
    # One data model: the same convos in Kallo's own REST listing.
    convos = stack.client.get("/convos", headers=rest_a).json()
    assert {c["id"] for c in convos} == set(by_id)

    # Tenant B cannot reach A's asset nor delete A's conversation (as for missing ones: 404).
    for attempt in (
        lambda: b.conversations_create_from_asset(source_id),
        lambda: b.conversations_delete_specific_conversation(planning.id),
        lambda: b.conversations_delete_specific_conversation(str(uuid.uuid4())),
    ):
        with pytest.raises(ApiException) as refused:
            attempt()
        assert refused.value.status == 404 and json.loads(refused.value.body)["code"] == "not_found"
    assert b.conversations_identifiers_snapshot().iterable == []

    # Deleted: a snapshot without it, and the deletion.
    a.conversations_delete_specific_conversation(planning.id)
    gone = stream_a.until(lambda f: (planning.id, True) in f)
    assert planning.id not in ids(gone)
    assert {c.id for c in a.conversations_snapshot().iterable} == {over_rest, grounded.id}

    # B's stream heard nothing of A's: its first (empty) snapshot only.
    assert stream_b.quiet(1.0) == []
    assert stream_b.frames == [[]]


def test_a_stream_needs_credentials(stack: RunningStack) -> None:
    from websockets.exceptions import InvalidStatus

    url = f"{stack.ws_url}/pieces/conversations/stream/identifiers"
    for headers in ({}, {"x-api-key": "kallo_not_a_real_key_0000"}):
        with pytest.raises(InvalidStatus) as refused:
            connect(url, additional_headers=headers, open_timeout=10)
        assert refused.value.response.status_code == 401
    answer = httpx.get(f"{stack.base_url}/pieces/conversations/identifiers")
    assert answer.status_code == 401 and answer.json()["code"] == "unauthorized"
