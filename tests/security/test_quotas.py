"""I10 (cost): quotas and throttles answer 429 with Retry-After, per principal, not per stage. A stack of
its own, with limits low enough to reach in a test (the cost settings `KALLO_REQUESTS_PER_MINUTE` and
`KALLO_USER_UPLOAD_BYTES_PER_DAY`)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.e2e import start_stack
from tests.support.local_stack import RunningStack
from tests.support.tenants import Api, service_account

pytestmark = [pytest.mark.e2e, pytest.mark.security]

REQUESTS_PER_MINUTE = 10
UPLOAD_BYTES_PER_DAY = 1000


@pytest.fixture(scope="module")
def limited_stack() -> Iterator[RunningStack]:
    environment = {
        "KALLO_REQUESTS_PER_MINUTE": str(REQUESTS_PER_MINUTE),
        "KALLO_USER_UPLOAD_BYTES_PER_DAY": str(UPLOAD_BYTES_PER_DAY),
    }
    with start_stack(None, **environment) as running:
        yield running


def tenant(stack: RunningStack, label: str) -> Api:
    _, key = service_account(stack, label)
    return Api(stack.client, {"x-api-key": key})


def assert_throttled(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert int(response.headers["retry-after"]) > 0, response.headers
    body = response.json()
    assert body.get("code") and body.get("message"), body


def test_i10_finding11_one_tenant_cannot_use_up_the_stage(limited_stack: RunningStack) -> None:
    greedy, other = tenant(limited_stack, "greedy"), tenant(limited_stack, "other")
    # The windows are fixed minutes: the calls may straddle two of them, so one of the two sees more
    # than the limit only when the calls number more than twice the limit.
    answers = [greedy.call("GET", "/teams") for _ in range(2 * REQUESTS_PER_MINUTE + 1)]
    statuses = [a.status_code for a in answers]
    throttled = [a for a in answers if a.status_code == 429]
    assert throttled, f"{len(answers)} requests in a minute, none throttled: {statuses}"
    assert_throttled(throttled[0])
    assert set(statuses) <= {200, 429}, statuses
    # The throttle is the greedy caller's, not the stage's.
    assert other.call("GET", "/teams").status_code == 200


def test_i10_uploads_have_a_daily_quota(limited_stack: RunningStack) -> None:
    uploader = tenant(limited_stack, "uploader")
    document = b"x" * (UPLOAD_BYTES_PER_DAY // 2 + 100) + b"\n"
    answers = [
        uploader.call("POST", "/data-sources/uploads", files={"file": ("notes.txt", document, "text/plain")})
        for _ in range(3)
    ]
    assert answers[0].status_code == 201, answers[0].text
    assert_throttled(answers[-1])
