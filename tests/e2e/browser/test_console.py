"""The console (sites/console/console/static) in a real chromium against the local stack: sign-in with an
API key and with `#token=`, teams → topic → convo made through the page, an answer streaming in,
two people in one convo, regen and its alternates, hostile Markdown rendered inert, axe-core, the
keyboard, and nothing left behind by sign-out. Answers come from the scripted endpoint (conftest)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import RunningStack
from tests.support.browser import console_url, no_dialogs, sign_in_with_key, signed_in_page

pytestmark = pytest.mark.e2e

ANSWER_SECONDS = 30_000  # ms: an answer takes about a second; a loaded machine gets slack


# ---------------------------------------------------------------- the API, for setting up


def key(stack: RunningStack) -> dict[str, str]:
    return {"x-api-key": stack.api_key}


def user_of(stack: RunningStack, email: str) -> str:
    return (
        stack.client.get("/users", params={"email": email}, headers=key(stack))
        .raise_for_status()
        .json()["id"]
    )


def token_for(stack: RunningStack, user_id: str, scope: dict[str, str] | None = None) -> str:
    expires = (datetime.now(UTC) + timedelta(minutes=30)).isoformat()
    body = {
        "userId": user_id,
        "scopeObjects": [scope or {"type": "user", "id": user_id}],
        "expiresAt": expires,
    }
    return (
        stack.client.post("/auth/access-tokens", json=body, headers=key(stack))
        .raise_for_status()
        .json()["jwt"]
    )


def shared_convo(stack: RunningStack, *emails: str) -> str:
    """A convo of a topic of a team whose members are the users of `emails`."""
    team = (
        stack.client.post("/teams", json={"name": "Shared"}, headers=key(stack))
        .raise_for_status()
        .json()["id"]
    )
    for email in emails:
        stack.client.put(
            f"/teams/{team}/users/{user_of(stack, email)}", json={}, headers=key(stack)
        ).raise_for_status()
    topic = stack.client.post(
        "/topics",
        params={"teamId": team},
        json={"name": "Shared topic", "description": ""},
        headers=key(stack),
    ).raise_for_status()
    convo = stack.client.post(
        "/convos", params={"topicId": topic.json()["id"]}, json={"name": "Together"}, headers=key(stack)
    )
    return convo.raise_for_status().json()["id"]


def email() -> str:
    return f"console-{uuid.uuid4().hex[:10]}@example.com"


# ---------------------------------------------------------------- the page


def open_convo(page: Page, stack: RunningStack, convo_id: str) -> None:
    page.goto(f"{console_url(stack.base_url)}#/convos/{convo_id}")
    expect(page.get_by_role("status").filter(has_text="Connected")).to_be_visible()


def ask(page: Page, text: str, *, answer: bool = True) -> None:
    box = page.get_by_label("Your message")
    box.fill(text)
    page.get_by_label("Ask for an answer").set_checked(answer)
    box.press("Enter")


def answers(page: Page) -> Any:
    return page.locator("li.step[data-author=llm]")


def record_answer_states(page: Page) -> None:
    """From now on, the page keeps every (status, text) its last answer shows, in order."""
    page.evaluate(
        """() => {
            window.answerStates = [];
            new MutationObserver(() => {
                const answer = [...document.querySelectorAll("li.step[data-author=llm]")].pop();
                if (!answer) return;
                const state = [answer.dataset.status, answer.querySelector(".body").textContent];
                const last = window.answerStates.at(-1);
                if (!last || last[0] !== state[0] || last[1] !== state[1]) window.answerStates.push(state);
            }).observe(document.getElementById("view"), {subtree: true, childList: true, characterData: true, attributes: true});
        }"""
    )


def serious_violations(page: Page) -> list[tuple[str, str, int]]:
    results = Axe().run(page)
    return [
        (v["id"], v["help"], len(v["nodes"]))
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


# ---------------------------------------------------------------- tests


def test_sign_in_make_a_topic_and_a_convo_and_watch_the_answer_stream_in(
    stack: RunningStack, browser: Browser
) -> None:
    page = signed_in_page(browser, stack.base_url, stack.api_key, email())
    dialogs = no_dialogs(page)
    page.get_by_label("New team name").fill("Research")
    page.get_by_role("button", name="Create team").click()
    expect(page.get_by_role("heading", name="Topics of Research")).to_be_visible()
    page.get_by_label("New topic name").fill("Physics")
    page.get_by_role("button", name="Create topic").click()
    expect(page.get_by_role("heading", name="Physics")).to_be_visible()
    page.get_by_label("Prompt (the model's instructions)").fill("Answer like a physicist.")
    page.get_by_label("Temperature (0-2)").fill("0.2")
    page.get_by_role("button", name="Save topic").click()
    expect(page.get_by_text("Topic saved.")).to_be_visible()
    page.get_by_label("New convo name").fill("Sky")
    page.get_by_role("button", name="Start convo").click()
    expect(page.get_by_role("heading", name="Sky")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="Connected")).to_be_visible()

    record_answer_states(page)
    ask(page, "Why is the sky blue?")
    expect(page.locator("li.step[data-author=user] .body")).to_have_text("Why is the sky blue?")
    expect(answers(page).last).to_have_attribute("data-status", "completed", timeout=ANSWER_SECONDS)

    states = page.evaluate("window.answerStates")
    running = [text for status, text in states if status == "running" and text]
    assert len(set(running)) >= 3, f"the answer did not stream in: {states}"
    final = answers(page).last
    assert "Rayleigh scattering" in final.locator(".body").inner_text()
    assert all(final.locator(".body").inner_text().startswith(text.strip()) for text in running)
    # Markdown is rendered: **sky** is bold; and the answer says what it cost.
    expect(final.locator(".body strong").first).to_have_text("sky")
    expect(final.locator(".usage")).to_contain_text("openai:scripted")
    # The topic kept what was saved.
    page.get_by_role("link", name="← Convos").click()
    expect(page.get_by_label("Temperature (0-2)")).to_have_value("0.2")
    expect(page.get_by_label("Prompt (the model's instructions)")).to_have_value("Answer like a physicist.")
    expect(page.get_by_role("link", name="Sky")).to_be_visible()
    assert dialogs == []


def test_sign_in_with_a_token_in_the_address_which_leaves_it_at_once(
    stack: RunningStack, browser: Browser
) -> None:
    address = email()
    convo_id = shared_convo(stack, address)
    token = token_for(stack, user_of(stack, address))
    page = browser.new_context().new_page()
    page.goto(f"{console_url(stack.base_url)}#token={token}")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    assert token not in page.url
    expect(page.locator("#who")).to_have_text(address)
    open_convo(page, stack, convo_id)
    ask(page, "Hello from an embedded page", answer=False)
    expect(page.locator("li.step[data-author=user] .body")).to_have_text("Hello from an embedded page")


def test_a_token_handed_over_with_the_invitation_link_signs_in_and_accepts_it(
    stack: RunningStack, browser: Browser
) -> None:
    """The emailed link with `&token=<ID token>` appended, as an embedding app opens it for its user:
    the token leaves the address at once, and the route survives sign-in, so the invitation is accepted
    and its team opens (`#token=` alone still opens the home page: the test above)."""
    sub = f"invitee-{uuid.uuid4().hex[:8]}"
    address = f"{sub}@example.com"
    id_token = stack.mint_id_token(sub, email=address)
    invitee = stack.client.get(
        "/users", params={"firebaseId": sub}, headers={"authorization": f"Bearer {id_token}"}
    )
    invitee_id = invitee.raise_for_status().json()["id"]
    team = (
        stack.client.post("/teams", json={"name": "Harbour crew"}, headers=key(stack))
        .raise_for_status()
        .json()
    )
    stack.client.post(
        "/auth/grantees",
        params={"objectType": "team", "objectId": team["id"], "inviteEmail": address},
        json={"type": "user", "role": "member"},
        headers=key(stack),
    ).raise_for_status()
    [sent] = [m for m in stack.client.get("/_local/mail").json() if address in m["destinations"]]
    mail = stack.client.get(f"/_local/mail/{sent['id']}").text
    link = f"{console_url(stack.base_url)}#/invitations?accept=team:{team['id']}"
    assert f'href="{link}"' in mail

    page = browser.new_context().new_page()
    dialogs = no_dialogs(page)
    page.goto(f"{link}&token={id_token}")
    expect(page.get_by_role("heading", name="Topics of Harbour crew")).to_be_visible()
    assert page.url == f"{console_url(stack.base_url)}#/teams/{team['id']}"
    grantees = stack.client.get(
        "/auth/grantees", params={"objectType": "team", "objectId": team["id"]}, headers=key(stack)
    ).raise_for_status()
    assert {"id": invitee_id, "type": "user", "role": "member"} in [
        {k: g[k] for k in ("id", "type", "role")} for g in grantees.json()
    ]
    # A token handed over to the open page (a link followed in the same tab): it signs in anew, as that
    # token's user, on that route, and leaves the address too.
    other = email()
    page.evaluate(
        "(hash) => { location.hash = hash; }", f"#/documents?token={token_for(stack, user_of(stack, other))}"
    )
    expect(page.locator("#who")).to_have_text(other)
    expect(page.get_by_role("heading", name="Documents", exact=True)).to_be_visible()
    assert page.url == f"{console_url(stack.base_url)}#/documents"
    assert dialogs == []


def test_a_broken_handed_over_token_leaves_the_address_and_the_route_waits_for_sign_in(
    stack: RunningStack, browser: Browser
) -> None:
    page = browser.new_context().new_page()
    dialogs = no_dialogs(page)
    page.goto(f"{console_url(stack.base_url)}#/invitations?accept=team:abc&token=%E0%A4%A")
    expect(page.locator("#sign-in-error")).to_have_text("This access token is not valid any more.")
    assert page.url == f"{console_url(stack.base_url)}#/invitations?accept=team:abc"
    assert page.evaluate("() => sessionStorage.length") == 0
    assert dialogs == []


def test_two_people_in_one_convo_see_each_others_steps_live(stack: RunningStack, browser: Browser) -> None:
    ada, bob = email(), email()
    convo_id = shared_convo(stack, ada, bob)
    ada_page = signed_in_page(browser, stack.base_url, stack.api_key, ada)
    bob_page = signed_in_page(browser, stack.base_url, stack.api_key, bob)
    open_convo(ada_page, stack, convo_id)
    open_convo(bob_page, stack, convo_id)

    ask(ada_page, "Hello Bob, Ada here.", answer=False)
    expect(bob_page.locator("li.step .body").last).to_have_text("Hello Bob, Ada here.")
    ask(bob_page, "Hi Ada!", answer=False)
    expect(ada_page.locator("li.step .body").last).to_have_text("Hi Ada!")
    # Each sees who wrote what.
    expect(ada_page.locator("li.step.mine .body")).to_have_text("Hello Bob, Ada here.")
    expect(bob_page.locator("li.step.mine .body")).to_have_text("Hi Ada!")

    # Ada edits her step, then deletes it: Bob sees both; only her own steps offer either.
    mine = ada_page.locator("li.step.mine")
    assert ada_page.locator("li.step:not(.mine)").get_by_role("button", name="Edit").count() == 0
    mine.get_by_role("button", name="Edit").click()
    mine.get_by_label("Edit your message").fill("Hello Bob, Ada here (edited).")
    mine.get_by_role("button", name="Save").click()
    expect(bob_page.locator("li.step .body").first).to_have_text("Hello Bob, Ada here (edited).")
    mine.get_by_role("button", name="Delete").click()
    mine.get_by_role("button", name="Confirm: delete").click()
    expect(bob_page.locator("li.step")).to_have_count(1)

    # An answer one asks for streams to the other too; a like by one is counted for both.
    ask(bob_page, "What colour is the sky?")
    answer = answers(ada_page).last
    expect(answer).to_have_attribute("data-status", "completed", timeout=ANSWER_SECONDS)
    expect(answer.locator(".body")).to_contain_text("Rayleigh")
    answer.get_by_role("button", name="Like (0)", exact=True).click()
    expect(answer.get_by_role("button", name="Like (1)", exact=True)).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(answers(bob_page).last.get_by_role("button", name="Like (1)", exact=True)).to_have_attribute(
        "aria-pressed", "false"
    )


def test_regen_keeps_the_replaced_answer_to_page_back_to(stack: RunningStack, browser: Browser) -> None:
    page = signed_in_page(browser, stack.base_url, stack.api_key, address := email())
    open_convo(page, stack, shared_convo(stack, address))
    ask(page, "Why is the sky blue?")
    answer = answers(page).last
    expect(answer).to_have_attribute("data-status", "completed", timeout=ANSWER_SECONDS)
    first = answer.locator(".body").inner_text()

    answer.get_by_role("button", name="Regenerate").click()
    expect(answer.locator(".version")).to_have_text("2/2", timeout=ANSWER_SECONDS)
    expect(answer).to_have_attribute("data-status", "completed", timeout=ANSWER_SECONDS)
    second = answer.locator(".body").inner_text()
    assert second != first and "Rayleigh" in second

    answer.get_by_role("button", name="Previous version").click()
    expect(answer.locator(".version")).to_have_text("1/2")
    expect(answer.locator(".body")).to_have_text(first)
    answer.get_by_role("button", name="Next version").click()
    expect(answer.locator(".version")).to_have_text("2/2")
    expect(answer.locator(".body")).to_have_text(second)
    assert answers(page).count() == 1


def test_a_running_answer_stops_and_keeps_its_text(stack: RunningStack, browser: Browser) -> None:
    page = signed_in_page(browser, stack.base_url, stack.api_key, address := email())
    open_convo(page, stack, shared_convo(stack, address))
    ask(page, "Tell me slowly why the sky is blue.")
    answer = answers(page).last
    expect(answer.locator(".body")).to_contain_text("Answer")  # deltas are arriving
    answer.get_by_role("button", name="Stop").click()
    expect(answer).to_have_attribute("data-status", "stopped")
    expect(page.locator("p.status")).to_have_text("Connected")
    kept = answer.locator(".body").inner_text()
    assert kept.startswith("Answer") and "reds remain" not in kept
    expect(answer.get_by_role("button", name="Stop")).to_have_count(0)
    expect(answer.get_by_role("button", name="Regenerate")).to_be_visible()


def test_hostile_markdown_renders_inert(stack: RunningStack, browser: Browser) -> None:
    ada, bob = email(), email()
    convo_id = shared_convo(stack, ada, bob)
    writer = signed_in_page(browser, stack.base_url, stack.api_key, ada)
    reader = signed_in_page(browser, stack.base_url, stack.api_key, bob)
    writer_dialogs, reader_dialogs = no_dialogs(writer), no_dialogs(reader)
    open_convo(writer, stack, convo_id)
    open_convo(reader, stack, convo_id)

    ask(writer, "<img src=x onerror=alert(1)>", answer=False)
    ask(writer, '[click me](javascript:alert(1)) and <a href="javascript:alert(2)">me</a>', answer=False)
    ask(writer, "<script>alert(3)</script><svg onload=alert(4)></svg>", answer=False)
    for page in (writer, reader):
        expect(page.locator("li.step")).to_have_count(3)
        view = page.locator("#view")
        assert view.locator("[onerror], [onload], script").count() == 0
        image = view.locator("li.step img")
        assert image.count() == 0 or image.first.get_attribute("src") in (None, "")
        links = view.locator("li.step .body a")
        assert links.count() == 2
        assert [links.nth(i).get_attribute("href") for i in range(2)] == [None, None]
        links.first.click()
        links.nth(1).click()
    # Read back over REST (a reload asks to sign in again: the key was in memory), just as inert.
    reader.reload()
    reader.get_by_label("Service account API key").fill(stack.api_key)
    reader.get_by_label("User email").fill(bob)
    reader.get_by_role("button", name="Sign in").click()
    expect(reader.locator("li.step")).to_have_count(3)
    assert reader.locator("#view [onerror], #view script").count() == 0
    reader.wait_for_timeout(300)
    assert writer_dialogs == [] and reader_dialogs == []


def test_axe_finds_nothing_serious_on_sign_in_convo_list_and_live_convo(
    stack: RunningStack, browser: Browser
) -> None:
    page = browser.new_context().new_page()
    page.goto(console_url(stack.base_url))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert serious_violations(page) == []

    sign_in_with_key(page, stack.base_url, stack.api_key, address := email())
    convo_id = shared_convo(stack, address)
    topic_id = stack.client.get(f"/convos/{convo_id}", headers=key(stack)).json()["topicId"]
    page.goto(f"{console_url(stack.base_url)}#/topics/{topic_id}")
    expect(page.get_by_role("link", name="Together")).to_be_visible()
    assert serious_violations(page) == []

    open_convo(page, stack, convo_id)
    ask(page, "Why is the sky blue?")
    expect(answers(page).last).to_have_attribute("data-status", "completed", timeout=ANSWER_SECONDS)
    assert serious_violations(page) == []


def test_the_keyboard_reaches_the_ask_box_and_enter_sends(stack: RunningStack, browser: Browser) -> None:
    page = signed_in_page(browser, stack.base_url, stack.api_key, address := email())
    open_convo(page, stack, shared_convo(stack, address))
    page.locator("body").focus()
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "ask":
            break
    else:
        pytest.fail("Tab never reached the ask box")
    page.keyboard.type("Typed, not clicked")
    page.keyboard.press("Enter")
    expect(page.locator("li.step[data-author=user] .body")).to_have_text("Typed, not clicked")
    expect(page.get_by_label("Your message")).to_have_value("")


@pytest.mark.parametrize("how", ["key kept for the tab", "token in the address"])
def test_sign_out_leaves_no_secret_in_the_browser(stack: RunningStack, browser: Browser, how: str) -> None:
    context = browser.new_context()
    page = context.new_page()
    address = email()
    if how == "token in the address":
        page.goto(f"{console_url(stack.base_url)}#token={token_for(stack, user_of(stack, address))}")
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    else:
        sign_in_with_key(page, stack.base_url, stack.api_key, address, keep=True)
        # Kept for this tab: a reload signs in again without asking.
        page.reload()
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    assert page.evaluate("localStorage.length") == 0
    assert page.evaluate("sessionStorage.length") == 1

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("localStorage.length") == 0
    assert page.evaluate("sessionStorage.length") == 0
    assert context.cookies() == []
    content = page.content()
    assert stack.api_key not in content and "eyJ" not in content
    page.reload()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
