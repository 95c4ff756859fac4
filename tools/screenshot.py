"""docs/console.png from a real browser session: starts the local stack (the embedded model answers),
signs in to the console with the stack's API key, makes a team, a topic and a convo through the page,
asks a question, waits for the answer and its follow-up suggestions, and saves a 1200x800 screenshot
(a few minutes on a busy machine: the embedded model answers twice).

    python -m tools.screenshot [--out docs/console.png]

Needs chromium (tools/install_chromium.sh) and the embedded model (`make run` builds it once).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from playwright.sync_api import expect

from tests.support.browser import launched_browser, sign_in_with_key
from tests.support.local_stack import ROOT, StackFailed, start_stack

QUESTION = "In two short sentences: what makes a support answer helpful?"
ANSWER_TIMEOUT_MS = 600_000  # the embedded model on a busy machine


def shoot(out: Path) -> None:
    with start_stack() as stack, launched_browser() as browser:
        page = browser.new_context(viewport={"width": 1200, "height": 800}).new_page()
        sign_in_with_key(page, stack.base_url, stack.api_key, "ada@example.com")
        page.get_by_label("New team name").fill("Acme support")
        page.get_by_role("button", name="Create team").click()
        page.get_by_label("New topic name").fill("Product questions")
        page.get_by_role("button", name="Create topic").click()
        page.get_by_label("Max tokens").fill("60")
        page.get_by_label("Temperature (0-2)").fill("0.3")
        page.get_by_role("button", name="Save topic").click()
        expect(page.get_by_text("Topic saved.")).to_be_visible()
        page.get_by_label("New convo name").fill("Writing good answers")
        page.get_by_role("button", name="Start convo").click()
        expect(page.get_by_role("status").filter(has_text="Connected")).to_be_visible()

        box = page.get_by_label("Your message")
        box.fill(QUESTION)
        box.press("Enter")
        answer = page.locator("li.step[data-author=llm]").last
        expect(answer).to_have_attribute("data-status", "completed", timeout=ANSWER_TIMEOUT_MS)
        # Follow-up chips when the model suggests some (a small model sometimes has none).
        answer.get_by_role("button", name="Suggest follow-ups").click()
        expect(answer.get_by_role("button", name="Suggest follow-ups")).to_have_count(
            0, timeout=ANSWER_TIMEOUT_MS
        )
        page.wait_for_timeout(5500)  # the toast fades
        page.evaluate("document.activeElement.blur()")  # no focus ring in the picture
        page.screenshot(path=str(out))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "console.png")
    arguments = parser.parse_args(argv)
    try:
        shoot(arguments.out)
    except StackFailed as error:
        print(f"the local stack failed: {error}", file=sys.stderr)
        return 1
    print(f"wrote {arguments.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
