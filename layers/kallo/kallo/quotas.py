"""Quotas and throttles. I10 (cost): per-principal request rates and per-user / per-team budgets of
LLM tokens, uploaded bytes, summaries and exports, each answering 429 with `Retry-After` (the end of
the window) when used up. Limits are `Settings` fields (`KALLO_REQUESTS_PER_MINUTE`, ...; the main ones
are stack parameters).

Counters are fixed windows (a minute for requests, a UTC day for the rest) kept in the single table
(`kallo.store.quotas`, access pattern 22): one write per check on the hot path, never a Scan.
- Requests: the REST authorizer counts every request of a principal (one UpdateItem, even when the
  credential is cached) and hands the verdict to the function in its context (`THROTTLED`), because an
  authorizer can only allow or deny; `kallo.web.principal_of` turns it into 429. Each WebSocket client
  message (they all write) is counted the same way by the message glue. The limit is per principal (a
  user, or an OIDC identity without one), so one tenant cannot use up another's share; API Gateway's
  stage throttle stays as the outer bound.
- Tokens: a request for an answer (convoNewStep / convoNewStepGroup / convoStepGroupAddition with
  `reply`, convoStepRegen) is refused while the requester's day budget, or that of the team whose topic
  owns the convo, is used up (one BatchGetItem); the answer is charged afterwards with the provider's own
  counts (`kallo.llm.Usage`), to both.
- Uploads, summaries, exports, invitation emails: charged when asked for, with a condition that refuses
  what would go past the limit (one UpdateItem; a TransactWriteItems for a user and a team at once).
  Invitation emails are refused with a code of their own, `invitation_mail_limit` (I9).
"""

from __future__ import annotations

import math
from typing import Any

from kallo import metrics
from kallo.authz.access import Access
from kallo.clock import now
from kallo.errors import TooManyRequests
from kallo.settings import get_settings
from kallo.store import grants
from kallo.store import quotas as store
from kallo.store.keys import Ref
from kallo.store.quotas import Counter

MINUTE = 60
DAY = 86400
# The authorizer's context key saying how long the principal must wait (absent: within its rate).
THROTTLED = "throttledFor"
QUOTA_EXCEEDED = "quota_exceeded"
# Over the day's invitation emails (I9): a code of its own, so an inviter is told why no one was invited.
INVITATION_MAIL_LIMIT = "invitation_mail_limit"
REQUESTS, TOKENS, UPLOAD_BYTES, SUMMARIES, EXPORTS, INVITATION_MAILS = (
    "requests",
    "tokens",
    "upload_bytes",
    "summaries",
    "exports",
    "invitation_mails",
)


def _window(seconds: int) -> tuple[int, int]:
    """The start of the current window and the seconds left in it (at least 1)."""
    moment = now().timestamp()
    start = int(moment // seconds * seconds)
    return start, max(1, math.ceil(start + seconds - moment))


def _subject(principal_user_id: str | None, firebase_id: str | None) -> Ref:
    return Ref("user", principal_user_id) if principal_user_id else Ref("oidc", firebase_id or "")


def count_request(user_id: str | None, firebase_id: str | None = None) -> int | None:
    """Count one request of a principal; returns the seconds to wait when it is over its rate, else
    None. One UpdateItem."""
    start, left = _window(MINUTE)
    counter = Counter(_subject(user_id, firebase_id), REQUESTS, start)
    used = store.add(counter, 1, ttl=start + MINUTE)
    return left if used > get_settings().requests_per_minute else None


def _too_many_requests(retry_after: int) -> TooManyRequests:
    metrics.count(metrics.THROTTLED_REQUESTS)  # every refusal for the rate is made here
    limit = get_settings().requests_per_minute
    return TooManyRequests(
        f"too many requests: at most {limit} a minute for each caller; retry in {retry_after} s",
        retry_after=retry_after,
    )


def raise_if_throttled(authorizer_context: dict[str, Any]) -> None:
    """The authorizer's verdict on this request's rate, as 429 when it is over."""
    retry_after = authorizer_context.get(THROTTLED)
    if retry_after is not None and str(retry_after).isdigit():
        raise _too_many_requests(int(retry_after))


def require_message_rate(user_id: str | None, firebase_id: str | None = None) -> None:
    """Count one WebSocket message, or one request to a compatibility surface (which has no authorizer
    to count it), of a principal (one UpdateItem); 429 over the rate."""
    retry_after = count_request(user_id, firebase_id)
    if retry_after is not None:
        raise _too_many_requests(retry_after)


def _exceeded(what: str, retry_after: int, code: str = QUOTA_EXCEEDED) -> TooManyRequests:
    metrics.count(metrics.QUOTA_REFUSALS)  # every refusal for a daily quota is made here
    return TooManyRequests(
        f"{what} is used up for today; it renews in {retry_after} s", retry_after=retry_after, code=code
    )


# -- tokens -----------------------------------------------------------------------------------------


def team_paying_for(access: Access, convo: Ref) -> str | None:
    """The team whose budget a convo's answers also use: the owner of the topic that owns the convo,
    when that is a team. Read from the grants the permission check on the convo already loaded."""
    owner = grants.owner_of(access.structural_grants(convo))
    if owner is not None and owner.type == "topic":
        owner = grants.owner_of(access.structural_grants(owner))
    return owner.id if owner is not None and owner.type == "team" else None


def _token_counters(user_id: str, team_id: str | None, start: int) -> list[tuple[Counter, int, str]]:
    settings = get_settings()
    found = [
        (Counter(Ref("user", user_id), TOKENS, start), settings.user_tokens_per_day, "your token budget")
    ]
    if team_id:
        found.append(
            (
                Counter(Ref("team", team_id), TOKENS, start),
                settings.team_tokens_per_day,
                "the team's token budget",
            )
        )
    return found


def require_token_budget(user_id: str, team_id: str | None) -> None:
    """Refuse (429 `quota_exceeded`) a request for an answer while the user's or the team's token
    budget for the day is used up. One BatchGetItem."""
    start, left = _window(DAY)
    counters = _token_counters(user_id, team_id, start)
    used = store.used([c for c, _, _ in counters])
    for counter, limit, what in counters:
        if used[counter] >= limit:
            raise _exceeded(what, left)


def charge_tokens(user_id: str, team_id: str | None, tokens: int) -> None:
    """Charge an answer's tokens to its requester and team (one write; the budget was checked when the
    answer was asked for, so this never refuses: the last answer of a day may go past it)."""
    if tokens <= 0:
        return
    start, _ = _window(DAY)
    store.add_all([c for c, _, _ in _token_counters(user_id, team_id, start)], tokens, ttl=start + DAY)


# -- uploads, summaries, exports, invitation emails -------------------------------------------------


def charge_upload(user_id: str, team_id: str | None, size: int) -> None:
    """Charge an upload's bytes to the uploader and, for a team's data source, the team; 429
    `quota_exceeded` (nothing charged) when that would pass a day's limit. One write."""
    settings = get_settings()
    start, left = _window(DAY)
    limited = [(Counter(Ref("user", user_id), UPLOAD_BYTES, start), settings.user_upload_bytes_per_day)]
    if team_id:
        limited.append(
            (Counter(Ref("team", team_id), UPLOAD_BYTES, start), settings.team_upload_bytes_per_day)
        )
    full = store.add_within(limited, size, ttl=start + DAY)
    if full is not None:
        raise _exceeded(
            "the team's upload allowance" if full.subject.type == "team" else "your upload allowance", left
        )


def _count_daily(user_id: str, counter: str, limit: int, what: str, code: str = QUOTA_EXCEEDED) -> None:
    start, left = _window(DAY)
    if store.add_within([(Counter(Ref("user", user_id), counter, start), limit)], 1, ttl=start + DAY):
        raise _exceeded(what, left, code)


def count_summary(user_id: str) -> None:
    """One more summary started by a user today (one write); 429 `quota_exceeded` past the limit."""
    _count_daily(user_id, SUMMARIES, get_settings().summaries_per_day, "your allowance of summaries")


def count_export(user_id: str) -> None:
    """One more export requested by a user today (one write); 429 `quota_exceeded` past the limit.
    Part of I9 (outbound mail at a bounded rate)."""
    _count_daily(user_id, EXPORTS, get_settings().exports_per_day, "your allowance of exports")


def count_invitation_mail(user_id: str) -> None:
    """One more invitation email sent by a user today (one write); 429 `invitation_mail_limit` past the
    limit, before anything is stored. I9 (outbound mail at a bounded rate): the counter is the inviting
    user's, whatever the object or the address, so inviting to many objects never multiplies it, and
    nobody else's invitations use it up."""
    _count_daily(
        user_id,
        INVITATION_MAILS,
        get_settings().invitation_mails_per_day,
        "your allowance of invitation emails",
        INVITATION_MAIL_LIMIT,
    )
