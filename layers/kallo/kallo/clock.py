"""Time helpers: one RFC 3339 format (millisecond precision, `Z`) for every timestamp the API writes."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def now_iso() -> str:
    return iso(now())


def epoch_seconds(moment: datetime) -> int:
    return int(moment.timestamp())
