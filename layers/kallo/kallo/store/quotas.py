"""Quota counters (access pattern 22): one item per (subject, counter, window), `QUOTA#<type>#<id>` /
`<counter>#<window start>`, holding `used` and expiring through the table's TTL after its window.

Every change is one `UpdateItem` with `ADD` (several counters at once: one `TransactWriteItems`), so
concurrent requests never lose a count and nothing is read first; `add_within` refuses, with a
condition, an amount that would take a counter past its limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from kallo import aws
from kallo.store import keys
from kallo.store.keys import Ref
from kallo.store.table import serialize, table


@dataclass(frozen=True)
class Counter:
    """One window of one counter of one subject (a user, a team, an OIDC identity)."""

    subject: Ref
    name: str
    window_start: int

    @property
    def key(self) -> dict[str, str]:
        return keys.quota_key(self.subject, self.name, self.window_start)


def _update(counter: Counter, amount: int, ttl: int, limit: int | None) -> dict:
    params: dict = {
        "TableName": table().name,
        "Key": serialize(counter.key),
        "UpdateExpression": "ADD #used :amount SET #ttl = :ttl, #entity = :entity",
        "ExpressionAttributeNames": {"#used": "used", "#ttl": "ttl", "#entity": "entity"},
        "ExpressionAttributeValues": serialize({":amount": amount, ":ttl": ttl, ":entity": "quota"}),
    }
    if limit is not None:
        params["ConditionExpression"] = "attribute_not_exists(#used) OR #used <= :room"
        params["ExpressionAttributeValues"].update(serialize({":room": limit - amount}))
    return params


def add(counter: Counter, amount: int, *, ttl: int) -> int:
    """Add `amount` to a counter; returns its new value (one UpdateItem)."""
    response = aws.client("dynamodb").update_item(
        **_update(counter, amount, ttl, None), ReturnValues="UPDATED_NEW"
    )
    return int(response["Attributes"]["used"]["N"])


def add_all(counters: list[Counter], amount: int, *, ttl: int) -> None:
    """Add `amount` to every counter (one UpdateItem, or one TransactWriteItems for several)."""
    if len(counters) == 1:
        add(counters[0], amount, ttl=ttl)
    elif counters:
        aws.client("dynamodb").transact_write_items(
            TransactItems=[{"Update": _update(c, amount, ttl, None)} for c in counters]
        )


def add_within(limited: list[tuple[Counter, int]], amount: int, *, ttl: int) -> Counter | None:
    """Add `amount` to every counter unless that takes one past its limit; returns the first counter
    that had no room (nothing is added then), or None when all were charged. One write (none when the
    amount alone is over a limit: the condition below lets anything into a counter not yet started)."""
    for counter, limit in limited:
        if amount > limit:
            return counter
    client = aws.client("dynamodb")
    if len(limited) == 1:
        counter, limit = limited[0]
        try:
            client.update_item(**_update(counter, amount, ttl, limit))
        except client.exceptions.ConditionalCheckFailedException:
            return counter
        return None
    try:
        client.transact_write_items(
            TransactItems=[{"Update": _update(c, amount, ttl, limit)} for c, limit in limited]
        )
    except client.exceptions.TransactionCanceledException as error:
        reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
        if "ConditionalCheckFailed" not in reasons:
            raise
        return limited[reasons.index("ConditionalCheckFailed")][0]
    return None


def used(counters: list[Counter]) -> dict[Counter, int]:
    """How much of each counter is used (0 for a window not started); one BatchGetItem."""
    found = {(i["PK"], i["SK"]): int(i.get("used", 0)) for i in table().batch_get(c.key for c in counters)}
    return {c: found.get((c.key["PK"], c.key["SK"]), 0) for c in counters}
