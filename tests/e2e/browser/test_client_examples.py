"""The README's embedding walkthrough and its browser client example (examples/browser_client.html): a
backend with a service account's key makes a user by email, a team with that user in it, a convo and an
access token scoped to the team; the page opens the WebSocket with `?token=` and streams the answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Browser

from tests.e2e.conftest import ROOT, RunningStack

pytestmark = pytest.mark.e2e


def _embed_for(stack: RunningStack, email: str) -> tuple[str, str]:
    """The walkthrough's calls, in its order; returns (convo id, access token)."""
    key = {"x-api-key": stack.api_key}
    client = stack.client
    user = client.get("/users", params={"email": email}, headers=key).raise_for_status().json()["id"]
    team = client.post("/teams", json={"name": "Embedded"}, headers=key).raise_for_status().json()["id"]
    client.put(f"/teams/{team}/users/{user}", json={}, headers=key).raise_for_status()
    convo = client.post("/convos", params={"teamId": team}, json={"name": "Help"}, headers=key)
    expires = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    token = client.post(
        "/auth/access-tokens",
        json={"userId": user, "scopeObjects": [{"type": "team", "id": team}], "expiresAt": expires},
        headers=key,
    )
    return convo.raise_for_status().json()["id"], token.raise_for_status().json()["jwt"]


def test_the_browser_example_streams_an_answer_with_a_scoped_token(
    stack: RunningStack, browser: Browser
) -> None:
    convo_id, token = _embed_for(stack, "embedded.user@example.com")
    page = browser.new_page()
    page.on("dialog", lambda dialog: pytest.fail(f"a dialog opened: {dialog.message}"))
    example = (ROOT / "examples" / "browser_client.html").as_uri()
    page.goto(f"{example}#ws={stack.ws_url}/ws&convo={convo_id}&token={token}")
    page.wait_for_selector("body[data-state=open]")

    page.fill("#question", "Say hello in one short sentence.")
    page.keyboard.press("Enter")
    page.wait_for_selector("body[data-state=answered]", timeout=90_000)

    assert page.inner_text("#answer").strip()
    page.close()


def test_a_browser_socket_with_a_forged_token_is_refused(stack: RunningStack, browser: Browser) -> None:
    convo_id, token = _embed_for(stack, "refused.user@example.com")
    page = browser.new_page()
    closed = page.evaluate(
        """(url) => new Promise((resolve) => {
            const socket = new WebSocket(url);
            socket.onopen = () => resolve("open");
            socket.onerror = () => resolve("refused");
        })""",
        f"{stack.ws_url}/ws?convoId={convo_id}&token={token[:-4]}AAAA",
    )

    assert closed == "refused"
    page.close()
