"""Issue 6's "done when", over the local stack's real HTTP and WebSockets: a Markdown file uploaded
through the API is processed by the data source worker, linked to a convo and answered from by the
embedded model with a citation quoting its fact; its signed download URL returns its bytes; its summary
is generated; and the convo, exported by email, lands in the local mailbox.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import RunningStack, WsClient
from tests.support.e2e import ok

pytestmark = pytest.mark.e2e

FACT = "The launch code of project Heron is ZX-42."
# The fact comes first: whatever words the small embedded model answers with, the sentence quoted
# from the passage it was given is this one (or one sharing more words with the answer, which the
# question's words make this one too).
DOCUMENT = (
    f"{FACT}\n\n"
    "## Notes\n\n"
    "Only the release manager may use it. The billing team meets on Thursdays in room 4.\n"
).encode()
QUESTION = "What is the launch code of project Heron?"
# Short, so the embedded model answers in seconds.
REPLY_CONFIG = {"reply": True, "maxTokens": 24, "temperature": 0}
POLL_SECONDS = 120


def until(what: str, attempt: Callable[[], Any], seconds: float = POLL_SECONDS) -> Any:
    """Call `attempt` until it returns something truthy; fail with `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        found = attempt()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {seconds} s")
        time.sleep(0.25)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def new_user(stack: RunningStack) -> tuple[str, str]:
    """A user made by the bootstrap service account: (email, an access token covering the user's
    objects)."""
    key = {"x-api-key": stack.api_key}
    email = f"ds-{uuid.uuid4().hex[:8]}@example.com"
    user = ok(stack.client.get("/users", params={"email": email}, headers=key), 201)
    body = {
        "userId": user["id"],
        "scopeObjects": [{"type": "user", "id": user["id"]}],
        "expiresAt": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
    }
    token = ok(stack.client.post("/auth/access-tokens", json=body, headers=key), 201)["jwt"]
    return email, token


def answer_of(client: WsClient, question_id: str) -> dict[str, Any]:
    """The LLM step answering `question_id`, as its final convoStepUpdate completes it."""
    running = client.expect("convoStatus", status="running")["payload"]
    step_id = running["stepId"]
    announced = client.expect("convoNewStep", id=step_id)["payload"]
    assert announced["replyToStepId"] == question_id
    while True:
        update = client.expect("convoStepUpdate", id=step_id)["payload"]
        if "delta" not in update:
            return {**announced, **update}


def test_a_document_grounds_an_answer_is_downloaded_summarised_and_exported(
    stack: RunningStack, ws_connect: Callable[..., WsClient]
) -> None:
    _, token = new_user(stack)
    auth = bearer(token)

    # Upload: 201 with the data source, processed by the worker until ready.
    files = {"file": ("heron.md", DOCUMENT, "text/markdown")}
    created = ok(stack.client.post("/data-sources/uploads", files=files, headers=auth), 201)
    source_id = created["id"]
    assert created["name"] == "heron.md" and created["type"] == "upload"

    def ready() -> dict[str, Any] | None:
        found = ok(stack.client.get(f"/data-sources/{source_id}", headers=auth))
        assert found["status"] != "failed", found
        return found if found["status"] == "ready" else None

    source = until("the upload to be processed", ready)
    assert source["mimeType"].startswith("text/markdown") and source["size"] == len(DOCUMENT)

    # Link it to a convo, and ask about its fact over the WebSocket.
    convo = ok(stack.client.post("/convos", json={"name": "Heron"}, headers=auth), 201)
    ok(stack.client.put(f"/convos/{convo['id']}/data-sources/{source_id}", headers=auth), 204)
    client = ws_connect(convo["id"], headers=auth)
    client.send("convoNewStep", {"content": {"text": QUESTION}, "config": REPLY_CONFIG}, request_id="ask")
    question = client.expect("convoNewStep")["payload"]
    answer = answer_of(client, question["id"])
    assert answer["status"] == "completed", answer
    citations = answer["annotations"]
    assert citations and citations[0]["type"] == "citation" and citations[0]["dataSourceId"] == source_id
    assert any("ZX-42" in c["text"] for c in citations), citations
    quoted = next(c for c in citations if "ZX-42" in c["text"])
    assert DOCUMENT.decode()[quoted["start"] : quoted["end"]] == quoted["text"]
    stored = ok(stack.client.get(f"/convos/{convo['id']}/steps", headers=auth))
    assert stored[-1]["id"] == answer["id"] and stored[-1]["annotations"] == citations

    # The signed download URL gives the bytes back.
    url = ok(stack.client.get(f"/data-sources/{source_id}/download-url", headers=auth))
    assert isinstance(url, str)
    downloaded = httpx.get(url, timeout=30)
    assert downloaded.status_code == 200 and downloaded.content == DOCUMENT

    # The summary: 202 while it is being written, then 200 with its content.
    def summary() -> dict[str, Any] | None:
        response = stack.client.post(f"/data-sources/{source_id}/summary", headers=auth)
        assert response.status_code in (200, 202), response.text
        return response.json() if response.status_code == 200 else None

    summarised = until("the summary", summary)
    assert summarised["content"]["text"].strip()
    assert all(a["dataSourceId"] == source_id for a in summarised["annotations"])

    # The export: 202, then an email in the local mailbox, with the answer's text, to a person whose
    # email the OIDC issuer verified and who may view the convo (I9: the address the service account
    # gave the user is its own label, not a mailbox anyone vouched for).
    # Another tenant's person is reached by an email invitation, which their registration accepts.
    sub = f"reader-{uuid.uuid4().hex[:8]}"
    email = f"{sub}@example.com"
    on_convo = {"objectType": "convo", "objectId": convo["id"], "inviteEmail": email}
    invitation = {"type": "user", "role": "participant"}
    ok(stack.client.post("/auth/grantees", params=on_convo, json=invitation, headers=auth), 201)
    reader = bearer(stack.mint_id_token(sub, email=email))
    ok(stack.client.get("/users", params={"firebaseId": sub}, headers=reader), 201)
    body = {
        "format": "html-email",
        "sources": {"convoIds": [convo["id"]]},
        "destinations": [{"type": "email", "address": email}],
    }
    ok(stack.client.post("/exports", json=body, headers=auth), 202)

    def mail() -> dict[str, Any] | None:
        listed = ok(stack.client.get("/_local/mail"))
        # The invitation was mailed to the same address first.
        exports = (
            m for m in listed if email in m["destinations"] and m["subject"].startswith("Kallo export")
        )
        return next(exports, None)

    sent = until("the export email", mail)
    page = stack.client.get(f"/_local/mail/{sent['id']}")
    assert page.status_code == 200
    assert "Heron" in page.text and QUESTION in page.text
