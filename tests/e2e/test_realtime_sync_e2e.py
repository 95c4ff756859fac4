"""What a real client needs from the real-time API, over the local stack's real sockets: convoSync's
snapshot of a running answer then the deltas after its `seq`, a reconnect with `since`, a REST rename
heard live, a deleted convo closing its sockets, a wrong path answering 404, and an emailed invitation
whose link the invitee accepts.

The client rule (the README's): an update with `content` replaces the text and sets lastSeq = seq; a
`delta` with seq == lastSeq + 1 appends; seq <= lastSeq is a duplicate (ignored); a larger seq is a gap:
send convoSync again.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from html import unescape
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.e2e.conftest import RunningStack, WsClient
from tests.support.e2e import Connect, key, new_convo, ok

pytestmark = pytest.mark.e2e

# Long enough that the embedded model is still writing when the second client syncs; stopped early.
LONG_ANSWER = {"reply": True, "maxTokens": 400, "temperature": 0}
DELTAS_AFTER_SNAPSHOT = 3


@dataclass
class Follower:
    """A client following one step by the client rule, counting the convoSyncs a gap cost it."""

    client: WsClient
    step_id: str
    text: str = ""
    last_seq: int = -1
    resyncs: int = 0
    applied: list[int] = field(default_factory=list)

    def sync(self, request_id: str) -> dict[str, Any]:
        """Send convoSync and apply the snapshot it answers with."""
        self.client.send("convoSync", {}, request_id=request_id)
        status = self.client.expect("convoStatus", stepId=self.step_id)
        assert status["requestId"] == request_id and status["payload"]["status"] == "running"
        snapshot = self.client.expect("convoStepUpdate", id=self.step_id, status="running")
        assert snapshot["requestId"] == request_id
        self.apply(snapshot["payload"])
        return snapshot["payload"]

    def apply(self, update: dict[str, Any]) -> None:
        seq = update["seq"]
        if "content" in update:
            self.text, self.last_seq = update["content"]["text"], seq
        elif seq <= self.last_seq:
            return  # a duplicate: it was in the snapshot already
        elif seq == self.last_seq + 1:
            self.text += update["delta"]
            self.last_seq = seq
            self.applied.append(seq)
        else:  # a gap: the snapshot brings the text up to date again
            self.resyncs += 1
            self.sync(f"resync-{self.resyncs}")


def test_a_late_client_gets_the_snapshot_then_the_deltas_and_a_reconnect_gets_the_end(
    stack: RunningStack, ws_connect: Connect
) -> None:
    convo_id = new_convo(stack, "Sync me")
    asker = ws_connect(convo_id, headers=key(stack))
    question = {
        "content": {"text": "Write a very long story about a lighthouse keeper."},
        "config": LONG_ANSWER,
    }
    asker.send("convoNewStep", question, request_id="ask")
    question_id = asker.expect("convoNewStep", authorType="user")["payload"]["id"]
    step_id = asker.expect("convoNewStep", replyToStepId=question_id, timeout=120)["payload"]["id"]
    asker.expect("convoStepUpdate", id=step_id, seq=1, timeout=120)

    # A second client arrives while the answer runs: its snapshot, then deltas from its seq on.
    late = Follower(ws_connect(convo_id, headers=key(stack)), step_id)
    snapshot = late.sync("sync-1")
    assert snapshot["convoId"] == convo_id and snapshot["seq"] >= 1
    while len(late.applied) < DELTAS_AFTER_SNAPSHOT:
        late.apply(late.client.expect("convoStepUpdate", id=step_id, timeout=60)["payload"])
    assert late.applied[0] == snapshot["seq"] + 1 or late.resyncs > 0

    # The snapshot is exactly what was broadcast through its seq (saved before each delta went out).
    deltas: dict[int, str] = {}
    for message in asker.seen:
        body = message.get("payload") or {}
        if message.get("type") == "convoStepUpdate" and body.get("id") == step_id and "delta" in body:
            deltas[body["seq"]] = body["delta"]
    while max(deltas) < late.last_seq:
        body = asker.expect("convoStepUpdate", id=step_id, timeout=60)["payload"]
        deltas[body["seq"]] = body["delta"]
    assert "".join(deltas[s] for s in range(1, snapshot["seq"] + 1)) == snapshot["content"]["text"]
    assert "".join(deltas[s] for s in range(1, late.last_seq + 1)) == late.text

    # Stopped: both hear the end; the late client's text is the start of it.
    asker.send("convoStopStep", {"id": step_id}, request_id="stop")
    final = asker.expect("convoStepUpdate", id=step_id, status="stopped", timeout=30)["payload"]
    while True:
        update = late.client.expect("convoStepUpdate", id=step_id, timeout=30)["payload"]
        if "content" in update:
            break
        late.apply(update)
    assert update == final and final["content"]["text"].startswith(late.text)
    seen_seq = late.last_seq
    late.client.close()

    # A reconnect naming the step and the last seq it applied gets idle, then the step's end.
    back = ws_connect(convo_id, headers=key(stack), path_form=True)
    back.send("convoSync", {"since": {"stepId": step_id, "seq": seen_seq}}, request_id="since")
    idle, end = answers_to(back, "since", 2)
    assert idle == {
        "type": "convoStatus",
        "payload": {"convoId": convo_id, "status": "idle"},
        "requestId": "since",
    }
    assert end["type"] == "convoStepUpdate"
    assert {k: end["payload"][k] for k in ("id", "content", "status", "seq")} == {
        k: final[k] for k in ("id", "content", "status", "seq")
    }
    # Up to date: nothing more than the status.
    back.send("convoSync", {"since": {"stepId": step_id, "seq": final["seq"]}}, request_id="again")
    (status,) = answers_to(back, "again", 1)
    assert status["payload"] == {"convoId": convo_id, "status": "idle"}
    back.nothing_within(0.5)


def answers_to(client: WsClient, request_id: str, count: int) -> list[dict[str, Any]]:
    """The next `count` messages answering `request_id` (broadcasts in between are passed over)."""
    found: list[dict[str, Any]] = []
    while len(found) < count:
        message = client.receive()
        if message.get("requestId") == request_id:
            found.append(message)
    return found


def test_a_rename_is_heard_live_and_a_deletion_closes_the_sockets(
    stack: RunningStack, ws_connect: Connect
) -> None:
    convo_id = new_convo(stack, "Before")
    first, second = (
        ws_connect(convo_id, headers=key(stack)),
        ws_connect(convo_id, headers=key(stack), path_form=True),
    )
    renamed = ok(stack.client.patch(f"/convos/{convo_id}", json={"name": "After"}, headers=key(stack)))
    for client in (first, second):
        update = client.expect("convoUpdate", id=convo_id)
        assert update["payload"] == {"id": convo_id, "name": "After", "updatedAt": renamed["updatedAt"]}

    ok(stack.client.delete(f"/convos/{convo_id}", headers=key(stack)), 204)
    for client in (first, second):
        assert client.expect("convoDeleted", id=convo_id)["payload"] == {"id": convo_id}
        with pytest.raises(ConnectionClosed) as closed:
            client.receive(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000


@pytest.mark.parametrize("path", ["/nowhere", "/ws/convos", "/ws/convos/x/y", "/websocket"])
def test_a_wrong_path_is_404_as_rest_is(stack: RunningStack, path: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{stack.ws_url}{path}", additional_headers=key(stack), open_timeout=30)
    assert refused.value.response.status_code == 404
    assert stack.client.get(path, headers=key(stack)).status_code == 404


def test_an_invitation_is_mailed_with_a_link_the_invitee_accepts(stack: RunningStack) -> None:
    sub = f"invitee-{uuid.uuid4().hex[:8]}"
    email = f"{sub}@example.com"
    invitee = {"authorization": f"Bearer {stack.mint_id_token(sub, email=email)}"}
    ok(stack.client.get("/users", params={"firebaseId": sub}, headers=invitee), 201)
    team = ok(stack.client.post("/teams", json={"name": "Harbour <crew>"}, headers=key(stack)), 201)
    on = {"objectType": "team", "objectId": team["id"]}
    invited = stack.client.post(
        "/auth/grantees",
        params={**on, "inviteEmail": email},
        json={"type": "user", "role": "member"},
        headers=key(stack),
    )
    assert invited.status_code == 201, invited.text

    [sent] = [m for m in ok(stack.client.get("/_local/mail")) if email in m["destinations"]]
    assert sent["subject"] == "You are invited to a team on Kallo"
    page = stack.client.get(f"/_local/mail/{sent['id']}").text
    assert "Harbour &lt;crew&gt;" in page and "<crew>" not in page
    [link] = {unescape(href) for href in re.findall(r'href="([^"]+)"', page)}
    assert link == f"{stack.base_url}/console/#/invitations?accept=team:{team['id']}"

    # The console's invitations view does what the link asks: accept, as the invitee.
    object_type, object_id = link.split("accept=", 1)[1].split(":")
    mine = ok(stack.client.get("/invitations/mine", headers=invitee))
    assert [(i["objectType"], i["objectId"]) for i in mine] == [(object_type, object_id)]
    accepted = ok(
        stack.client.post(
            "/invitations/accept", params={"objectType": object_type, "objectId": object_id}, headers=invitee
        )
    )
    assert accepted["role"] == "member"
    teams = ok(stack.client.get("/teams", headers=invitee))
    assert [(t["id"], t["name"]) for t in teams] == [(team["id"], "Harbour <crew>")]
