"""kallo.quotas and its counters (kallo.store.quotas): fixed windows, one write per check, a refused
amount never charged, the verdict the authorizer hands to functions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kallo import quotas
from kallo.errors import TooManyRequests
from kallo.settings import get_settings
from kallo.store import keys
from kallo.store import quotas as counters
from kallo.store.keys import Ref
from kallo.store.quotas import Counter
from kallo.store.table import table

MOMENT = datetime(2026, 12, 3, 8, 0, 45, tzinfo=UTC)


@pytest.fixture
def at_moment(monkeypatch) -> datetime:
    monkeypatch.setattr(quotas, "now", lambda: MOMENT)
    return MOMENT


def test_a_request_counter_is_one_update_of_one_item_that_expires_with_its_window(aws, at_moment, aws_calls):
    aws_calls.reset()
    assert quotas.count_request("u1") is None
    assert dict(aws_calls.calls) == {"dynamodb:UpdateItem": 1}
    start = int(MOMENT.timestamp()) // 60 * 60
    item = table().get(keys.quota_key(Ref("user", "u1"), "requests", start))
    assert item["used"] == 1 and item["ttl"] == start + 60 and item["entity"] == "quota"
    # An OIDC identity without a user is counted under its subject.
    quotas.count_request(None, "sub-1")
    assert table().get(keys.quota_key(Ref("oidc", "sub-1"), "requests", start))["used"] == 1


def test_past_the_limit_the_wait_is_what_is_left_of_the_minute(aws, at_moment, monkeypatch):
    monkeypatch.setenv("KALLO_REQUESTS_PER_MINUTE", "2")
    get_settings.cache_clear()
    assert quotas.count_request("u1") is None and quotas.count_request("u1") is None
    assert quotas.count_request("u1") == 15  # 08:00:45 → 08:01:00
    assert quotas.count_request("u2") is None


def test_the_authorizers_verdict_becomes_429(aws):
    quotas.raise_if_throttled({"scheme": "api_key"})
    with pytest.raises(TooManyRequests) as raised:
        quotas.raise_if_throttled({"scheme": "api_key", quotas.THROTTLED: "12"})
    assert raised.value.status == 429 and raised.value.retry_after == 12 and raised.value.code == "throttled"


def test_a_refused_amount_is_not_charged(aws, at_moment):
    start = 0
    user, team = (
        Counter(Ref("user", "u"), "upload_bytes", start),
        Counter(Ref("team", "t"), "upload_bytes", start),
    )
    assert counters.add_within([(user, 100), (team, 50)], 40, ttl=1) is None
    assert counters.add_within([(user, 100), (team, 50)], 20, ttl=1) == team
    assert counters.add_within([(user, 50)], 20, ttl=1) == user
    assert counters.used([user, team]) == {user: 40, team: 40}
    # An amount over a limit by itself is refused even on a counter not started yet (a limit of 0).
    fresh = Counter(Ref("user", "v"), "upload_bytes", start)
    assert counters.add_within([(fresh, 0)], 1, ttl=1) == fresh
    assert counters.add_within([(user, 100), (fresh, 10)], 11, ttl=1) == fresh
    assert counters.used([user, fresh]) == {user: 40, fresh: 0}


def test_a_token_budget_used_up_refuses_until_the_day_ends(aws, at_moment, monkeypatch, aws_calls):
    monkeypatch.setenv("KALLO_USER_TOKENS_PER_DAY", "100")
    get_settings.cache_clear()
    quotas.charge_tokens("u", "t", 99)
    aws_calls.reset()
    quotas.require_token_budget("u", "t")
    assert dict(aws_calls.calls) == {"dynamodb:BatchGetItem": 1}
    quotas.charge_tokens("u", None, 1)
    with pytest.raises(TooManyRequests) as raised:
        quotas.require_token_budget("u", None)
    assert raised.value.code == "quota_exceeded"
    assert raised.value.retry_after == 86400 - (8 * 3600 + 45)


def test_invitation_emails_are_counted_per_inviting_user_and_refused_with_their_own_code(
    aws, at_moment, monkeypatch, aws_calls
):
    monkeypatch.setenv("KALLO_INVITATION_MAILS_PER_DAY", "2")
    get_settings.cache_clear()
    aws_calls.reset()
    quotas.count_invitation_mail("u1")
    assert dict(aws_calls.calls) == {"dynamodb:UpdateItem": 1}
    quotas.count_invitation_mail("u1")
    with pytest.raises(TooManyRequests) as raised:
        quotas.count_invitation_mail("u1")
    assert raised.value.status == 429 and raised.value.code == "invitation_mail_limit"
    assert raised.value.retry_after == 86400 - (8 * 3600 + 45)  # to the next UTC midnight
    # The refused one was not charged; another user has an allowance of its own.
    day = int(MOMENT.timestamp()) // 86400 * 86400
    item = table().get(keys.quota_key(Ref("user", "u1"), "invitation_mails", day))
    assert item["used"] == 2 and item["ttl"] == day + 86400
    quotas.count_invitation_mail("u2")
