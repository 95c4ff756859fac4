"""The WebSocket API over the local stack's real sockets: `$connect` authentication and `can_view`,
what every subscriber of a convo hears, the refusals that leave a socket open, step groups, deletion,
regeneration and an LLM reply streamed by the embedded model, then read back over REST.

The cast, all set up over REST: a team of the bootstrap service account with a topic; Alice, a member
of the team, who writes the convo; Victor, whom the convo grants `viewer`; Mallory, who has no access;
an OpenID Connect identity that never registered.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.e2e.conftest import RunningStack, WsClient
from tests.support.e2e import ok

pytestmark = pytest.mark.e2e

# Small, so that a reply of the embedded model takes seconds.
REPLY_CONFIG = {"reply": True, "maxTokens": 12, "temperature": 0}
EMBEDDED_MODEL = "embedded:smollm2"  # the local stack's default model
Connect = Callable[..., WsClient]


def api_key(stack: RunningStack) -> dict[str, str]:
    return {"x-api-key": stack.api_key}


def new_user(stack: RunningStack, name: str) -> str:
    """A user created by the bootstrap service account, which thereby has authority over it."""
    email = f"ws-{name}-{uuid.uuid4().hex[:8]}@example.com"
    return ok(stack.client.get("/users", params={"email": email}, headers=api_key(stack)), 201)["id"]


def access_token(stack: RunningStack, user_id: str) -> str:
    """An access token for `user_id` covering everything the user may access."""
    body = {
        "userId": user_id,
        "scopeObjects": [{"type": "user", "id": user_id}],
        "expiresAt": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
    }
    return ok(stack.client.post("/auth/access-tokens", json=body, headers=api_key(stack)), 201)["jwt"]


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class World:
    topic_id: str
    alice: str  # user ids
    victor: str
    mallory: str
    alice_token: str
    victor_token: str
    mallory_token: str

    def new_convo(self, stack: RunningStack, name: str) -> str:
        """A convo of the topic, created by Alice, which Victor may view."""
        convo = ok(
            stack.client.post(
                "/convos",
                params={"topicId": self.topic_id},
                json={"name": name},
                headers=bearer(self.alice_token),
            ),
            201,
        )
        grantee = {"id": self.victor, "type": "user", "role": "viewer"}
        ok(
            stack.client.post(
                "/auth/grantees",
                params={"objectType": "convo", "objectId": convo["id"]},
                json=grantee,
                headers=bearer(self.alice_token),
            ),
            201,
        )
        return convo["id"]


@pytest.fixture(scope="module")
def world(stack: RunningStack) -> World:
    key = api_key(stack)
    team = ok(stack.client.post("/teams", json={"name": "WebSocket e2e"}, headers=key), 201)
    topic = ok(
        stack.client.post(
            "/topics",
            params={"teamId": team["id"]},
            json={"name": "Realtime", "description": "convos over WebSockets"},
            headers=key,
        ),
        201,
    )
    alice, victor, mallory = (new_user(stack, name) for name in ("alice", "victor", "mallory"))
    ok(stack.client.put(f"/teams/{team['id']}/users/{alice}", headers=key))
    return World(
        topic["id"],
        alice,
        victor,
        mallory,
        access_token(stack, alice),
        access_token(stack, victor),
        access_token(stack, mallory),
    )


@pytest.fixture
def convo_id(stack: RunningStack, world: World) -> str:
    return world.new_convo(stack, f"ws e2e {uuid.uuid4().hex[:6]}")


def alice_on(ws_connect: Connect, world: World, convo_id: str) -> WsClient:
    """Alice, with her token in the Authorization header, on `/ws?convoId=`."""
    return ws_connect(convo_id, headers=bearer(world.alice_token))


def victor_on(ws_connect: Connect, world: World, convo_id: str) -> WsClient:
    """Victor as a browser connects: the token as a query parameter, on `/ws/convos/{convoId}`."""
    return ws_connect(convo_id, query={"token": world.victor_token}, path_form=True)


def step(text: str, config: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"content": {"text": text}, **({"config": config} if config else {})}


def request_id_of(frame: str) -> str | None:
    """The requestId a frame carries, which its error echoes."""
    try:
        message = json.loads(frame)
    except ValueError:
        return None
    return message.get("requestId") if isinstance(message, dict) else None


def refused_status(ws_connect: Connect, convo_id: str, **options: Any) -> int:
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(convo_id, **options)
    return refused.value.response.status_code


# ---------------------------------------------------------------------- connecting


def test_every_subscriber_hears_the_same_new_step(
    stack: RunningStack, world: World, convo_id: str, ws_connect: Connect
) -> None:
    alice, victor = alice_on(ws_connect, world, convo_id), victor_on(ws_connect, world, convo_id)
    alice.send("convoNewStep", step("Hello, Victor"), request_id="req-1")
    heard_by_alice = alice.expect("convoNewStep")
    heard_by_victor = victor.expect("convoNewStep")
    assert heard_by_alice == heard_by_victor
    assert heard_by_alice["requestId"] == "req-1"
    new = heard_by_alice["payload"]
    assert new["convoId"] == convo_id and new["content"] == {"text": "Hello, Victor"}
    assert new["authorType"] == "user" and new["authorId"] == world.alice and new["status"] == "completed"
    listed = ok(stack.client.get(f"/convos/{convo_id}/steps", headers=bearer(world.victor_token)))
    assert [s["id"] for s in listed] == [new["id"]]


def test_an_api_key_connects_too(stack: RunningStack, convo_id: str, ws_connect: Connect) -> None:
    # The bootstrap service account owns the team, hence the topic and its convos.
    service = ws_connect(convo_id, headers=api_key(stack))
    service.send("convoNewStep", step("from the service account"))
    assert service.expect("convoNewStep")["payload"]["content"]["text"] == "from the service account"


def test_a_connection_without_can_view_is_refused(
    stack: RunningStack, world: World, convo_id: str, ws_connect: Connect
) -> None:
    assert refused_status(ws_connect, convo_id, headers=bearer(world.mallory_token)) == 404
    assert refused_status(ws_connect, convo_id, query={"token": world.mallory_token}, path_form=True) == 404
    assert refused_status(ws_connect, convo_id) == 401
    assert refused_status(ws_connect, convo_id, headers=bearer("not-a-token")) == 401
    assert refused_status(ws_connect, str(uuid.uuid4()), headers=bearer(world.alice_token)) == 404
    assert refused_status(ws_connect, "not-a-uuid", headers=bearer(world.alice_token)) == 400
    unregistered = stack.mint_id_token(f"ws-e2e-{uuid.uuid4()}")
    assert refused_status(ws_connect, convo_id, headers=bearer(unregistered)) == 403
    # A registered OpenID Connect user is refused just the same without access to the convo.
    sub = f"ws-e2e-{uuid.uuid4()}"
    ok(stack.client.get("/users", params={"firebaseId": sub}, headers=bearer(stack.mint_id_token(sub))), 201)
    assert refused_status(ws_connect, convo_id, headers=bearer(stack.mint_id_token(sub))) == 404


# ---------------------------------------------------------------------- refusals on an open socket


def test_a_viewer_watches_and_cannot_write(world: World, convo_id: str, ws_connect: Connect) -> None:
    alice, victor = alice_on(ws_connect, world, convo_id), victor_on(ws_connect, world, convo_id)
    victor.send("convoNewStep", step("may I?"), request_id="victor-1")
    error = victor.expect("error")
    assert error["requestId"] == "victor-1"
    assert error["payload"]["code"] == "permission_denied" and error["payload"]["requestId"] == "victor-1"
    alice.nothing_within(0.5)  # errors go to the sender only, and nothing was written
    alice.send("convoNewStep", step("Alice writes"))
    assert victor.expect("convoNewStep")["payload"]["content"]["text"] == "Alice writes"


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("this is not JSON", "malformed_message"),
        ('["a", "list"]', "malformed_message"),
        ('{"type": "convoTeleport", "payload": {}, "requestId": "r-unknown"}', "unknown_message_type"),
        ('{"payload": {}}', "unknown_message_type"),
        (
            '{"type": "convoNewStep", "payload": {"content": "not an object"}, "requestId": "r-bad"}',
            "validation_error",
        ),
        (
            '{"type": "convoNewStep", "payload": {"groupId": "g", "content": {"text": "x"}}}',
            "validation_error",
        ),
        ('{"type": "convoStepDeletion", "payload": {"id": "not-a-uuid"}}', "validation_error"),
        (f'{{"type": "convoStepDeletion", "payload": {{"id": "{uuid.uuid4()}"}}}}', "not_found"),
        (f'{{"type": "convoStepRegen", "payload": {{"id": "{uuid.uuid4()}"}}}}', "not_found"),
        (
            f'{{"type": "convoStepUpdate", "payload": {{"id": "{uuid.uuid4()}", "isAlternate": false}}}}',
            "not_found",
        ),
        (
            '{"type": "convoNewStep", "payload": {"content": {"text": "' + "x" * 70_000 + '"}}}',
            "payload_too_large",
        ),
    ],
    ids=[
        "not JSON",
        "not an object",
        "unknown type",
        "no type",
        "bad payload",
        "client groupId",
        "bad id",
        "unknown step deleted",
        "unknown step regenerated",
        "unknown step updated",
        "text over 64 KB",
    ],
)
def test_a_bad_message_gets_an_error_and_the_socket_lives_on(
    world: World, convo_id: str, ws_connect: Connect, frame: str, code: str
) -> None:
    alice = alice_on(ws_connect, world, convo_id)
    alice.send_raw(frame)
    error = alice.expect("error")
    assert error["payload"]["code"] == code, error
    assert error["payload"]["message"]
    request_id = request_id_of(frame)
    if request_id is not None:
        assert error["requestId"] == error["payload"]["requestId"] == request_id
    alice.send("convoNewStep", step("still here"))
    assert alice.expect("convoNewStep")["payload"]["content"]["text"] == "still here"


# ---------------------------------------------------------------------- steps


def test_step_groups_alternates_and_deletion(
    stack: RunningStack, world: World, convo_id: str, ws_connect: Connect
) -> None:
    alice, victor = alice_on(ws_connect, world, convo_id), victor_on(ws_connect, world, convo_id)
    alice.send("convoNewStepGroup", {"steps": [step("primary"), step("alternate")]}, request_id="group")
    primary = alice.expect("convoNewStep")["payload"]
    alternate = alice.expect("convoNewStep")["payload"]
    assert primary["groupId"] and primary["groupId"] == alternate["groupId"]
    assert primary["isAlternate"] is False and alternate["isAlternate"] is True
    assert victor.expect("convoNewStep")["payload"] == primary
    assert victor.expect("convoNewStep")["payload"] == alternate

    alice.send("convoStepGroupAddition", {"primaryStepId": primary["id"], "step": step("another")})
    added = victor.expect("convoNewStep")["payload"]
    assert added["groupId"] == primary["groupId"] and added["isAlternate"] is True

    alice.send("convoStepUpdate", {"id": alternate["id"], "isAlternate": False})
    swapped = {
        update["payload"]["id"]: update["payload"]["isAlternate"]
        for update in (victor.expect("convoStepUpdate"), victor.expect("convoStepUpdate"))
    }
    assert swapped == {alternate["id"]: False, primary["id"]: True}

    alice.send("convoStepUpdate", {"id": added["id"], "content": {"text": "another, edited"}})
    edited = victor.expect("convoStepUpdate", id=added["id"])["payload"]
    assert edited["content"] == {"text": "another, edited"}

    alice.send("convoStepDeletion", {"id": primary["id"]}, request_id="delete")
    deleted = victor.expect("convoStepDeletion")
    assert deleted["payload"] == {"id": primary["id"]} and deleted["requestId"] == "delete"
    alice.expect("convoStepDeletion", id=primary["id"])
    remaining = ok(stack.client.get(f"/convos/{convo_id}/steps", headers=bearer(world.alice_token)))
    assert {(s["id"], s["isAlternate"], s["content"]["text"]) for s in remaining} == {
        (alternate["id"], False, "alternate"),
        (added["id"], True, "another, edited"),
    }


def test_query_steps_finds_a_step_by_a_word_of_its_text(
    stack: RunningStack, world: World, convo_id: str, ws_connect: Connect
) -> None:
    word = f"quokka{uuid.uuid4().hex[:10]}"
    alice = alice_on(ws_connect, world, convo_id)
    alice.send("convoNewStep", step(f"Have you seen the {word} today?"))
    sent = alice.expect("convoNewStep")["payload"]

    def search(token: str) -> list[str]:
        found = ok(stack.client.get("/steps", params={"searchTerm": word.upper()}, headers=bearer(token)))
        return [s["id"] for s in found]

    assert search(world.alice_token) == [sent["id"]]
    assert search(world.victor_token) == [sent["id"]]  # a viewer may view
    assert search(world.mallory_token) == []


def test_a_deleted_convo_refuses_new_connections_and_messages(
    stack: RunningStack, world: World, convo_id: str, ws_connect: Connect
) -> None:
    alice = alice_on(ws_connect, world, convo_id)
    # The team's owner (the service account) deletes it; Alice, its admin, may not.
    ok(stack.client.delete(f"/convos/{convo_id}", headers=api_key(stack)), 204)
    # I8: she hears that it went, then the server closes her connection.
    assert alice.expect("convoDeleted")["payload"] == {"id": convo_id}
    with pytest.raises(ConnectionClosed) as closed:
        alice.receive(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
    assert refused_status(ws_connect, convo_id, headers=bearer(world.alice_token)) == 404


# ---------------------------------------------------------------------- LLM replies


def expect_reply(client: WsClient, question_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The whole flow of one answer as `client` hears it (API.md, WebSocket), message after message
    with nothing in between: convoStatus running, the LLM step running, its deltas, the completed
    step, convoStatus idle. Returns the LLM step as completed and the delta updates."""
    running = client.expect("convoStatus", status="running")["payload"]
    announced = client.receive()
    assert announced["type"] == "convoNewStep", announced
    llm_step = announced["payload"]
    assert llm_step["id"] == running["stepId"] and llm_step["replyToStepId"] == question_id
    assert llm_step["authorType"] == "llm" and llm_step["status"] == "running"
    updates: list[dict[str, Any]] = []
    while True:
        update = client.receive()
        assert update["type"] == "convoStepUpdate" and update["payload"]["id"] == llm_step["id"], update
        if "delta" not in update["payload"]:
            break
        updates.append(update["payload"])
    final = update["payload"]
    assert final["status"] == "completed", final
    assert [u["seq"] for u in updates] == list(range(1, len(updates) + 1))
    assert final["seq"] == len(updates) + 1
    text = final["content"]["text"]
    assert text.strip() and text.startswith("".join(u["delta"] for u in updates))
    idle = client.receive()
    assert idle["type"] == "convoStatus" and idle["payload"]["status"] == "idle", idle
    return {**llm_step, **final}, updates


def test_a_reply_streams_from_the_embedded_model_then_regenerates(
    stack: RunningStack, world: World, convo_id: str, ws_connect: Connect
) -> None:
    alice, victor = alice_on(ws_connect, world, convo_id), victor_on(ws_connect, world, convo_id)
    alice.send("convoNewStep", step("Say hello to Victor.", REPLY_CONFIG), request_id="ask")
    question = alice.expect("convoNewStep")["payload"]
    assert question["config"] == REPLY_CONFIG
    answer, deltas = expect_reply(alice, question["id"])
    assert deltas, "the answer came in one piece: no delta was streamed"
    assert answer["config"]["model"] == EMBEDDED_MODEL
    victors_answer, _ = expect_reply(victor, question["id"])
    assert victors_answer == answer

    stored = ok(stack.client.get(f"/convos/{convo_id}/steps", headers=bearer(world.victor_token)))
    assert [s["id"] for s in stored] == [question["id"], answer["id"]]
    assert stored[1]["status"] == "completed" and stored[1]["content"] == answer["content"]
    assert stored[1]["seq"] == answer["seq"] and stored[1]["authorType"] == "llm"

    # A viewer cannot ask for another answer; the author of the question can.
    victor.send("convoStepRegen", {"id": answer["id"]}, request_id="no")
    assert victor.expect("error")["payload"]["code"] == "permission_denied"
    alice.send("convoStepRegen", {"id": answer["id"], "config": {"maxTokens": 8}}, request_id="again")
    regen = victor.expect("convoStepRegen")
    assert regen["requestId"] == "again" and regen["payload"]["id"] == answer["id"]
    assert regen["payload"]["config"]["maxTokens"] == 8
    second, _ = expect_reply(victor, question["id"])
    assert second["id"] != answer["id"] and second["createdAt"] == answer["createdAt"]
    stored = ok(stack.client.get(f"/convos/{convo_id}/steps", headers=bearer(world.alice_token)))
    assert [s["id"] for s in stored] == [question["id"], second["id"]]
    assert stored[1]["content"] == second["content"] and stored[1]["status"] == "completed"
