"""The console's documents, sharing, invitations and export views in a real chromium, against the
session's local stack: a document uploaded in the page grounds an answer whose citation quotes it and
links to its download; a file above the inline limit goes to S3 by presigned POST with a progress bar;
a convo shared in the page is seen live by its new participant in another browser context; an emailed
invitation's link accepts it, and the invitee exports the convo by email. axe-core finds no serious or
critical violation on the documents and sharing views, and each of their controls is reached with Tab.

Answers come from the browser suite's scripted model (conftest): the fastest that cites, since a
citation quotes the retrieved passage's sentence closest to the answer, whichever model wrote it (the
fixture's fact comes first and no other sentence shares a word with the scripted answer).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import RunningStack
from tests.support.browser import console_url, no_dialogs

pytestmark = pytest.mark.e2e

DOCUMENT = Path(__file__).resolve().parents[2] / "fixtures" / "documents" / "heron-launch.md"
QUESTION = "What is the launch code of project Heron?"
INLINE_LIMIT = 4 * 1024 * 1024
ANSWER_MS = 30_000  # an answer takes about a second; a loaded machine gets slack
PROCESSING_MS = 30_000


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def new_user(stack: RunningStack) -> tuple[dict[str, Any], str]:
    """A user of the bootstrap service account and an access token for the whole user."""
    key = {"x-api-key": stack.api_key}
    user = ok(
        stack.client.get(
            "/users", params={"email": f"views-{uuid.uuid4().hex[:8]}@example.com"}, headers=key
        ),
        201,
    )
    body = {
        "userId": user["id"],
        "scopeObjects": [{"type": "user", "id": user["id"]}],
        "expiresAt": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
    }
    return user, ok(stack.client.post("/auth/access-tokens", json=body, headers=key), 201)["jwt"]


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


class Console:
    """Opens console pages, each in a browser context of its own (one person each), signed in with
    `#token=`; fails the test on any page error or dialog. The package's conftest closes them after
    each test."""

    def __init__(self, browser: Browser, stack: RunningStack) -> None:
        self.browser, self.stack = browser, stack
        self.errors: list[str] = []
        self.dialogs: list[list[str]] = []

    def open(self, token: str, route: str) -> Page:
        context = self.browser.new_context()
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.dialogs.append(no_dialogs(page))
        page.goto(f"{console_url(self.stack.base_url)}#token={token}")
        page.wait_for_selector("body[data-ready=true]")
        self.go(page, route)
        return page

    def go(self, page: Page, route: str) -> None:
        page.evaluate("(route) => { location.hash = route; }", route)
        page.wait_for_function("() => !document.getElementById('view').hasAttribute('aria-busy')")
        if route.startswith("#/convos/"):  # its WebSocket is open
            expect(page.locator("#view .status")).to_contain_text("Connected")


@pytest.fixture
def console(browser: Browser, stack: RunningStack) -> Iterator[Console]:
    opened = Console(browser, stack)
    yield opened
    assert not opened.errors and not any(opened.dialogs), (opened.errors, opened.dialogs)


def no_serious_violations(page: Page) -> None:
    results = Axe().run(page)
    serious = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert not serious, [(v["id"], v["help"], [n["target"] for n in v["nodes"]]) for v in serious]


def reachable_by_keyboard(page: Page) -> None:
    """Every visible enabled control of the view gets the focus by pressing Tab from the top of the page
    (a focusin listener records them, so each press is one round trip)."""
    selector = ", ".join(
        f"#view {c}" for c in ("a[href]", "button:not(:disabled)", "input", "select", "textarea", "summary")
    )
    controls = page.evaluate(
        """(selector) => {
             window.tabbed = new Set();
             document.addEventListener("focusin", (e) => { if (e.target.closest("#view")) window.tabbed.add(e.target); });
             document.activeElement?.blur();
             return [...document.querySelectorAll(selector)].filter((e) => e.offsetParent !== null).length;
           }""",
        selector,
    )
    for _ in range(controls + 12):  # the skip link, the navigation and the header come first
        page.keyboard.press("Tab")
    reached = page.evaluate("() => window.tabbed.size")
    assert reached >= controls, f"Tab reached {reached} of {controls} controls"


def test_an_uploaded_document_grounds_an_answer_with_a_cited_passage_and_download(
    stack: RunningStack, console: Console
) -> None:
    user, token = new_user(stack)
    auth = bearer(token)
    topic_body = {"name": "Heron topic", "description": "", "config": {"defaults": {"reply": True}}}
    topic = ok(
        stack.client.post("/topics", params={"userId": user["id"]}, json=topic_body, headers=auth), 201
    )
    convo = ok(
        stack.client.post("/convos", params={"topicId": topic["id"]}, json={"name": "Heron"}, headers=auth),
        201,
    )

    page = console.open(token, "#/documents")
    page.get_by_label("Files").set_input_files(DOCUMENT)
    page.get_by_role("button", name="Upload").click()
    document = page.locator("li.document", has_text=DOCUMENT.name)
    expect(document.locator(".badge")).to_have_text("ready", timeout=PROCESSING_MS)

    document.locator("summary").click()
    document.get_by_label(f"Link {DOCUMENT.name} to a topic or convo").select_option(label="Heron topic")
    document.get_by_role("button", name="Link", exact=True).click()
    expect(document.get_by_role("link", name="Topic Heron topic")).to_be_visible()
    download = document.locator("a.download").get_attribute("href")
    fetched = httpx.get(download, timeout=10)
    assert fetched.status_code == 200 and fetched.content == DOCUMENT.read_bytes()
    # The summary: 202 while a worker writes it (the page asks again), then the text and its sources.
    document.get_by_role("button", name="Summarise").click()
    expect(document.locator(".summary .markdown")).not_to_be_empty(timeout=PROCESSING_MS)
    no_serious_violations(page)
    reachable_by_keyboard(page)

    console.go(page, f"#/convos/{convo['id']}")
    page.get_by_label("Your message").fill(QUESTION)
    page.get_by_role("button", name="Send").click()
    quoted = page.locator(".step .citations blockquote", has_text="ZX-42")
    expect(quoted).to_be_visible(timeout=ANSWER_MS)
    source = quoted.locator("xpath=..").locator("a.source")
    expect(source).to_have_attribute("href", re.compile(r"^https?://"))
    assert httpx.get(source.get_attribute("href"), timeout=10).status_code == 200

    console.go(page, "#/documents")
    document.locator("summary").click()
    document.get_by_role("button", name="Unlink").click()
    expect(
        document.get_by_role("list", name=f"Topics and convos {DOCUMENT.name} is linked to")
    ).to_contain_text("Not linked")
    assert ok(stack.client.get("/data-sources", params={"topicId": topic["id"]}, headers=auth)) == []


def test_a_file_above_the_inline_limit_goes_by_presigned_post_with_a_progress_bar(
    stack: RunningStack, console: Console, tmp_path: Path
) -> None:
    _, token = new_user(stack)
    page = console.open(token, "#/documents")
    # Above the inline limit; mostly blank lines, so the worker has little text to index. A file on
    # disk: the browser reads it itself (a buffer would cross Playwright's pipe base64-encoded).
    big = tmp_path / "big-heron.md"
    big.write_bytes(DOCUMENT.read_bytes() + b"\n" * (INLINE_LIMIT + 1024))
    sent_to: list[str] = []
    page.on("request", lambda request: request.method == "POST" and sent_to.append(request.url))
    page.get_by_label("Files").set_input_files(big)
    page.get_by_role("button", name="Upload").click()

    upload = page.locator(".upload[data-way=presigned]")
    bar = upload.get_by_role("progressbar")
    expect(bar).to_be_visible()
    expect(bar).to_have_attribute("value", "100")
    expect(upload.locator("label")).to_have_text("Uploaded big-heron.md")
    created, stored = sent_to[0], sent_to[1]
    assert created.endswith("/data-sources/uploads") and "/kallo-local-uploadsbucket" in stored, sent_to
    document = page.locator("li.document", has_text="big-heron.md")
    expect(document.locator(".badge")).not_to_have_text("waiting for the file", timeout=PROCESSING_MS)
    source_id = document.get_attribute("data-id")

    # Delete asks once more in place, then the document and its bytes go.
    document.locator("summary").click()
    document.get_by_role("button", name="Delete").click()
    document.get_by_role("button", name="Confirm: delete").click()
    expect(document).to_have_count(0)
    assert stack.client.get(f"/data-sources/{source_id}", headers=bearer(token)).status_code == 404


def test_a_convo_shared_in_the_console_is_seen_live_by_its_new_participant(
    stack: RunningStack, console: Console
) -> None:
    _, owner_token = new_user(stack)
    guest, guest_token = new_user(stack)
    convo = ok(stack.client.post("/convos", json={"name": "Shared plans"}, headers=bearer(owner_token)), 201)

    sharing = console.open(owner_token, f"#/sharing/convo/{convo['id']}")
    expect(sharing.get_by_role("heading", name="Sharing: Convo Shared plans")).to_be_visible()
    no_serious_violations(sharing)
    reachable_by_keyboard(sharing)
    sharing.get_by_label("User id").fill(guest["id"])
    sharing.get_by_label("Role", exact=True).select_option("participant")
    sharing.get_by_role("button", name="Add user").click()
    role = sharing.get_by_label(f"Role of User {guest['id']}")
    expect(role).to_have_value("participant")
    role.select_option("viewer")  # a new role replaces the old one
    expect(sharing.get_by_text(f"User {guest['id']} is now viewer.")).to_be_visible()
    grantees = ok(
        stack.client.get(
            "/auth/grantees",
            params={"objectType": "convo", "objectId": convo["id"]},
            headers=bearer(owner_token),
        )
    )
    assert {"id": guest["id"], "type": "user", "role": "viewer"} in grantees

    # An address naming no object (here a path that would climb out of /convos/) is refused in the page.
    console.go(sharing, "#/sharing/convo/..%2Fteams")
    expect(sharing.locator("#view .error")).to_have_text(re.compile("names no shareable object"))

    seen = console.open(guest_token, f"#/convos/{convo['id']}")
    expect(seen.get_by_role("heading", name="Shared plans")).to_be_visible()
    console.go(sharing, f"#/convos/{convo['id']}")
    sharing.get_by_label("Ask for an answer").uncheck()
    sharing.get_by_label("Your message").fill("The plans are ready for review.")
    sharing.get_by_role("button", name="Send").click()
    expect(seen.locator(".step", has_text="The plans are ready for review.")).to_be_visible()


def test_an_invitation_link_accepts_it_and_the_invitee_exports_the_convo(
    stack: RunningStack, console: Console
) -> None:
    owner, owner_token = new_user(stack)
    convo = ok(stack.client.post("/convos", json={"name": "Quarterly"}, headers=bearer(owner_token)), 201)
    # The invitee is a person whose email the OpenID Connect issuer verified, registered before the
    # invitation (registration accepts the invitations already waiting).
    sub = f"invitee-{uuid.uuid4().hex[:8]}"
    email = f"{sub}@example.com"
    id_token = stack.mint_id_token(sub, email=email)
    ok(stack.client.get("/users", params={"firebaseId": sub}, headers=bearer(id_token)), 201)

    sharing = console.open(owner_token, f"#/sharing/convo/{convo['id']}")
    sharing.get_by_label("Email address", exact=True).fill(email)
    sharing.get_by_label("Invited role").select_option("viewer")
    sharing.get_by_role("button", name="Invite").click()
    expect(sharing.get_by_role("list", name="Pending invitations")).to_contain_text(f"{email} as viewer")

    invitee = console.open(id_token, f"#/invitations?accept=convo:{convo['id']}")
    expect(invitee.get_by_role("heading", name="Quarterly")).to_be_visible()
    console.go(invitee, "#/invitations")  # used up: the list no longer offers it
    expect(invitee.get_by_role("list", name="Invitations")).to_contain_text("No invitation waiting for you.")
    no_serious_violations(invitee)
    grantees = ok(
        stack.client.get(
            "/auth/grantees",
            params={"objectType": "convo", "objectId": convo["id"]},
            headers=bearer(owner_token),
        )
    )
    assert {"type": "user", "role": "viewer"}.items() <= next(
        g for g in grantees if g["id"] != owner["id"]
    ).items()

    console.go(invitee, f"#/sharing/convo/{convo['id']}")
    invitee.get_by_label("Email addresses").fill(email)
    invitee.get_by_role("button", name="Send export").click()
    expect(invitee.locator(".export-outcome")).to_contain_text(f"Export to {email}")
    deadline = time.monotonic() + PROCESSING_MS / 1000
    while not any(email in m["destinations"] for m in ok(stack.client.get("/_local/mail"))):
        assert time.monotonic() < deadline, "the export email did not arrive"
        time.sleep(0.25)
