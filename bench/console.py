"""The console in a real browser over the local stack: what it transfers, how soon it is usable, and
how soon an answer's first delta reaches it compared with a Python WebSocket client.

    python -m bench.console [--runs 3] [--model embedded:smollm2 | --scripted] [--max-tokens 16]

- Size: every file the page loads to sign in and show a live convo (HTML, CSS, modules, vendored
  libraries, config.json; not the API's JSON), raw and gzipped (API Gateway gzips responses over 1 KB
  for browsers, `MinimumCompressionSize`; the local stack does not, so gzip is computed here, level 6).
- Time to interactive: navigation start to the sign-in form usable (`kallo:ready` mark), and, for a
  returning operator (key kept for the tab), a reload of `#/convos/<id>` to the convo's steps rendered
  (`kallo:convo-rendered`) and its WebSocket open (`kallo:convo-connected`). Median of `--runs`.
- First delta: a browser page and a Python client (websockets) on the same convo; each run, one of
  them asks the same prompt (alternating, so each asks `--runs` times); each side's time from the
  send to the first `delta` message, both read on this machine's wall clock (Date.now / time.time).
  The browser's time is when its page receives the message (a WebSocket wrapper added by this bench,
  not by the console) and when the text is on screen.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.sync_api import Page, Response, expect
from websockets.sync.client import connect

from tests.support.browser import console_url, launched_browser, sign_in_with_key
from tests.support.local_stack import RunningStack, start_stack
from tests.support.scripted_endpoint import ScriptedEndpoint, stack_environment

PROMPT = "In one sentence: why is the sky blue?"
EMAIL = "bench@example.com"
TIMEOUT_MS = 180_000
# Records, in the page, when each answer's first delta arrives and when its first text is on the page;
# added before the console runs.
WATCH_SOCKETS = """
window.benchDeltas = {};
const Native = window.WebSocket;
window.WebSocket = class extends Native {
  constructor(...args) {
    super(...args);
    this.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      const p = message.payload || {};
      if (message.type === "convoStepUpdate" && p.delta != null && !(p.id in window.benchDeltas)) {
        window.benchDeltas[p.id] = Date.now();
      }
    });
  }
};
window.benchPainted = {};
new MutationObserver(() => {
  for (const answer of document.querySelectorAll("li.step[data-author=llm]")) {
    const id = answer.dataset.stepId;
    if (!(id in window.benchPainted) && answer.querySelector(".body").textContent.trim()) {
      window.benchPainted[id] = Date.now();
    }
  }
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


def median_ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} ms" if values else "n/a"


def measure_size(page: Page, stack: RunningStack, convo_id: str) -> list[tuple[str, int, int]]:
    """(path, raw bytes, gzipped bytes) of each console file a sign-in and a convo view load."""
    loaded: dict[str, bytes] = {}

    def keep(response: Response) -> None:
        if "/console/" in response.url and response.status == 200:
            loaded[response.url.split("/console/", 1)[1] or "index.html"] = response.body()

    page.on("response", keep)
    sign_in_with_key(page, stack.base_url, stack.api_key, EMAIL, keep=True)
    page.goto(f"{console_url(stack.base_url)}#/convos/{convo_id}")
    expect(page.get_by_role("status").filter(has_text="Connected")).to_be_visible()
    page.remove_listener("response", keep)
    return [(path, len(body), len(gzip.compress(body, 6))) for path, body in sorted(loaded.items())]


def mark(page: Page, name: str) -> float:
    """Seconds from navigation start to the performance mark `name`, once it exists."""
    page.wait_for_function(f"performance.getEntriesByName({name!r}).length > 0", timeout=TIMEOUT_MS)
    return page.evaluate(f"performance.getEntriesByName({name!r})[0].startTime") / 1000


def user_token(stack: RunningStack, user_id: str) -> str:
    expires = (datetime.now(UTC) + timedelta(minutes=30)).isoformat()
    body = {"userId": user_id, "scopeObjects": [{"type": "user", "id": user_id}], "expiresAt": expires}
    minted = stack.client.post("/auth/access-tokens", json=body, headers={"x-api-key": stack.api_key})
    return minted.raise_for_status().json()["jwt"]


def new_convo(stack: RunningStack, token: str, max_tokens: int, model: str) -> str:
    """A convo of a topic of the user's own, whose defaults answer with `model`."""
    user = {"authorization": f"Bearer {token}"}
    defaults = {"model": model, "maxTokens": max_tokens, "temperature": 0}
    topic = stack.client.post(
        "/topics", json={"name": "Bench", "description": "", "config": {"defaults": defaults}}, headers=user
    ).raise_for_status()
    convo = stack.client.post(
        "/convos", params={"topicId": topic.json()["id"]}, json={"name": "Bench"}, headers=user
    )
    return convo.raise_for_status().json()["id"]


def python_first_delta(socket: Any, deadline: float) -> tuple[str, float]:
    """(answer id, wall time) of the next answer's first delta this client hears; then its end."""
    first: tuple[str, float] | None = None
    while time.monotonic() < deadline:
        message = json.loads(socket.recv(timeout=max(deadline - time.monotonic(), 0.01)))
        payload = message.get("payload") or {}
        if message["type"] == "convoStepUpdate" and "delta" in payload and first is None:
            first = (payload["id"], time.time())
        if message["type"] == "convoStatus" and payload.get("status") == "idle" and first is not None:
            return first
    raise TimeoutError("no answer within the timeout")


def run(arguments: argparse.Namespace) -> int:
    endpoint = ScriptedEndpoint() if arguments.scripted else None
    environment = stack_environment(endpoint) if endpoint else {}
    model = "openai:scripted" if endpoint else arguments.model
    try:
        with start_stack(**environment) as stack, launched_browser() as browser:
            # bypass_csp: Playwright's wait_for_function polls with eval, which the console's policy forbids.
            context = browser.new_context(viewport={"width": 1200, "height": 800}, bypass_csp=True)
            context.add_init_script(WATCH_SOCKETS)
            page = context.new_page()

            user_id = stack.client.get(
                "/users", params={"email": EMAIL}, headers={"x-api-key": stack.api_key}
            ).json()["id"]
            token = user_token(stack, user_id)
            convo_id = new_convo(stack, token, arguments.max_tokens, model)

            files = measure_size(page, stack, convo_id)
            print("Console files loaded (sign-in and a convo view):")
            for path, raw, packed in files:
                print(f"  {path:28} {raw:8,d} B  {packed:7,d} B gzipped")
            print(
                f"  {'total':28} {sum(f[1] for f in files):8,d} B  {sum(f[2] for f in files):7,d} B gzipped"
            )

            ready, rendered, connected = [], [], []
            for _ in range(arguments.runs):
                fresh = browser.new_context(bypass_csp=True).new_page()
                fresh.goto(console_url(stack.base_url))
                ready.append(mark(fresh, "kallo:ready"))
                fresh.context.close()
                page.goto(f"{console_url(stack.base_url)}#/convos/{convo_id}")
                page.reload()
                rendered.append(mark(page, "kallo:convo-rendered"))
                connected.append(mark(page, "kallo:convo-connected"))
            print(f"\nTime to interactive (median of {arguments.runs}, navigation start to ...):")
            print(f"  sign-in form usable                {median_ms(ready)}")
            print(f"  convo rendered (key kept, reload)  {median_ms(rendered)}")
            print(f"  convo WebSocket open               {median_ms(connected)}")

            expect(page.get_by_role("status").filter(has_text="Connected")).to_be_visible()
            browser_times: dict[str, list[float]] = {"browser": [], "python": []}
            python_times: dict[str, list[float]] = {"browser": [], "python": []}
            painted: list[float] = []
            with connect(f"{stack.ws_url}/ws?convoId={convo_id}&token={token}", max_size=None) as socket:
                # A first, unmeasured answer loads the model.
                warm(page)
                python_first_delta(socket, time.monotonic() + TIMEOUT_MS / 1000)
                for index in range(2 * arguments.runs):
                    asker = "browser" if index % 2 == 0 else "python"
                    answers = page.locator("li.step[data-author=llm]").count()
                    deadline = time.monotonic() + TIMEOUT_MS / 1000
                    if asker == "browser":
                        sent = ask_in_browser(page)
                    else:
                        sent = time.time()
                        step = {"content": {"text": PROMPT}, "config": {"reply": True}}
                        socket.send(
                            json.dumps(
                                {"type": "convoNewStep", "payload": step, "requestId": str(uuid.uuid4())}
                            )
                        )
                    answer_id, heard = python_first_delta(socket, deadline)
                    seen = page.wait_for_function(
                        f"window.benchDeltas[{answer_id!r}]", timeout=TIMEOUT_MS
                    ).json_value()
                    python_times[asker].append(heard - sent)
                    browser_times[asker].append(seen / 1000 - sent)
                    if asker == "browser":
                        shown = page.evaluate(f"window.benchPainted[{answer_id!r}]")
                        painted.append(shown / 1000 - sent)
                    expect(page.locator("li.step[data-author=llm]")).to_have_count(answers + 1)
                    expect(page.locator("p.status")).to_have_text("Connected", timeout=TIMEOUT_MS)
            print(
                f"\nFirst delta, send to first `delta` message (model {model}, median of {arguments.runs}):"
            )
            for asker in ("browser", "python"):
                print(
                    f"  asked by the {asker:7}: browser {median_ms(browser_times[asker])}, "
                    f"Python client {median_ms(python_times[asker])}"
                )
            print(f"  asked by the browser, first text on screen: {median_ms(painted)}")
    finally:
        if endpoint:
            endpoint.close()
    return 0


def warm(page: Page) -> None:
    count = page.locator("li.step[data-author=llm]").count()
    ask_in_browser(page)
    expect(page.locator("li.step[data-author=llm]")).to_have_count(count + 1, timeout=TIMEOUT_MS)
    expect(page.locator("p.status")).to_have_text("Connected", timeout=TIMEOUT_MS)


def ask_in_browser(page: Page) -> float:
    """Sends PROMPT from the page; the wall time of the send, as the page read it."""
    page.get_by_label("Your message").fill(PROMPT)
    return (
        page.evaluate(
            """() => { const t = Date.now(); document.querySelector("form.ask").requestSubmit(); return t; }"""
        )
        / 1000
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", default="embedded:smollm2")
    parser.add_argument("--scripted", action="store_true", help="answer with the scripted endpoint")
    parser.add_argument("--max-tokens", type=int, default=16)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
