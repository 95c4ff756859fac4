"""Feedback and follow-up suggestions over the local stack's real HTTP and WebSockets: an answer of the
embedded model is liked and disliked over REST, every subscriber hears the counts (convoStepUpdate),
Query Convo Steps shows them, and the answer's suggestions are made once by the embedded model and
kept.

The cast: a team of the bootstrap service account with a topic; Alice, a member, who writes the
convo; Victor, whom the convo grants `viewer` (a viewer rates and asks for suggestions too); Mallory,
who has no access.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.conftest import RunningStack
from tests.support.e2e import Connect, ok

pytestmark = pytest.mark.e2e

REPLY_CONFIG = {"reply": True, "maxTokens": 16, "temperature": 0}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def user_with_token(stack: RunningStack, name: str) -> tuple[str, dict[str, str]]:
    """A user of the bootstrap service account, and the headers of a token for all they may access."""
    key = {"x-api-key": stack.api_key}
    email = f"feedback-{name}-{uuid.uuid4().hex[:8]}@example.com"
    user_id = ok(stack.client.get("/users", params={"email": email}, headers=key), 201)["id"]
    body = {
        "userId": user_id,
        "scopeObjects": [{"type": "user", "id": user_id}],
        "expiresAt": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
    }
    token = ok(stack.client.post("/auth/access-tokens", json=body, headers=key), 201)["jwt"]
    return user_id, bearer(token)


def test_like_an_answer_and_get_its_suggestions(stack: RunningStack, ws_connect: Connect) -> None:
    key = {"x-api-key": stack.api_key}
    team = ok(stack.client.post("/teams", json={"name": "Feedback e2e"}, headers=key), 201)
    topic = ok(
        stack.client.post(
            "/topics",
            params={"teamId": team["id"]},
            json={"name": "Trips", "description": "answers to rate"},
            headers=key,
        ),
        201,
    )
    alice, as_alice = user_with_token(stack, "alice")
    victor, as_victor = user_with_token(stack, "victor")
    _, as_mallory = user_with_token(stack, "mallory")
    ok(stack.client.put(f"/teams/{team['id']}/users/{alice}", headers=key))
    convo = ok(
        stack.client.post(
            "/convos", params={"topicId": topic["id"]}, json={"name": "Lisbon"}, headers=as_alice
        ),
        201,
    )
    ok(
        stack.client.post(
            "/auth/grantees",
            params={"objectType": "convo", "objectId": convo["id"]},
            json={"id": victor, "type": "user", "role": "viewer"},
            headers=as_alice,
        ),
        201,
    )
    alice_ws = ws_connect(convo["id"], headers=as_alice)
    victor_ws = ws_connect(
        convo["id"], query={"token": as_victor["authorization"].split()[1]}, path_form=True
    )

    alice_ws.send("convoNewStep", {"content": {"text": "Name one sight in Lisbon."}, "config": REPLY_CONFIG})
    question = alice_ws.expect("convoNewStep")["payload"]
    answer = alice_ws.expect("convoNewStep", authorType="llm")["payload"]
    assert answer["replyToStepId"] == question["id"]
    assert answer["feedback"] == {"likes": 0, "dislikes": 0}  # a new answer carries its counts
    alice_ws.expect("convoStepUpdate", id=answer["id"], status="completed")
    victor_ws.expect("convoStepUpdate", id=answer["id"], status="completed")

    # Victor, a viewer, likes it: both sockets hear the counts.
    liked = ok(
        stack.client.put(
            f"/steps/{answer['id']}/feedback", json={"rating": "like", "comment": "Useful"}, headers=as_victor
        )
    )
    assert (liked["userId"], liked["rating"], liked["comment"]) == (victor, "like", "Useful")
    counts = {"likes": 1, "dislikes": 0}
    for client in (alice_ws, victor_ws):
        heard = client.expect("convoStepUpdate", id=answer["id"], feedback=counts)["payload"]
        assert heard == {"id": answer["id"], "feedback": counts}
    # Alice dislikes it, Victor takes his like back.
    ok(stack.client.put(f"/steps/{answer['id']}/feedback", json={"rating": "dislike"}, headers=as_alice))
    alice_ws.expect("convoStepUpdate", id=answer["id"], feedback={"likes": 1, "dislikes": 1})
    ok(stack.client.delete(f"/steps/{answer['id']}/feedback", headers=as_victor), 204)
    victor_ws.expect("convoStepUpdate", id=answer["id"], feedback={"likes": 0, "dislikes": 1})
    listed = ok(stack.client.get(f"/convos/{convo['id']}/steps", headers=as_victor))
    assert [s["feedback"] for s in listed] == [None, {"likes": 0, "dislikes": 1}]
    assert stack.client.delete(f"/steps/{answer['id']}/feedback", headers=as_victor).status_code == 404
    # Mallory cannot see the convo: the answer is missing to her.
    refused = stack.client.put(f"/steps/{answer['id']}/feedback", json={"rating": "like"}, headers=as_mallory)
    assert refused.status_code == 404 and convo["id"] not in refused.text

    # Suggestions: written once by the embedded model (the answer's model), then kept.
    made = stack.client.get(f"/steps/{answer['id']}/suggestions", headers=as_victor, timeout=60)
    assert made.status_code == 200, made.text
    suggested = made.json()["suggestions"]
    assert isinstance(suggested, list) and len(suggested) <= 3
    assert all(isinstance(s, str) and s.strip() and len(s) <= 200 and "\n" not in s for s in suggested)
    again = ok(stack.client.get(f"/steps/{answer['id']}/suggestions", headers=as_alice))
    assert again == {"suggestions": suggested}
    user_step = stack.client.get(f"/steps/{question['id']}/suggestions", headers=as_alice)
    assert user_step.status_code == 422 and user_step.json()["code"] == "not_an_answer"
    assert stack.client.get(f"/steps/{answer['id']}/suggestions", headers=as_mallory).status_code == 404
