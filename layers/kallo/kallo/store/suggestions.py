"""A completed answer's follow-up suggestions, kept on its step item (`suggestions`), and the lease
under which one caller makes them (`suggestionsLeasedUntil`, epoch seconds): see `kallo.store.keys`.
The step is given as `kallo.store.steps` returns it."""

from __future__ import annotations

from typing import Any

from kallo.store import steps
from kallo.store.table import table

KEPT, LEASE = "suggestions", "suggestionsLeasedUntil"


def lease(step: dict[str, Any], until: int, *, now: int) -> None:
    """Take the lease on making the step's suggestions until `until`: only while no one holds it (or
    its holder's lease ended at `now` or before) and none are kept yet (UpdateItem). Raises `Conflict`
    when the lease is held, the suggestions are kept, or the step is gone."""
    table().lease(steps.key(step), LEASE, until, now=now, unless=KEPT)


def keep(step: dict[str, Any], made: list[str]) -> None:
    """Keep the suggestions made on the step and give the lease back (UpdateItem); raises `Conflict`
    when the step was deleted meanwhile."""
    table().update(steps.key(step), {KEPT: made}, remove=(LEASE,))


def release(step: dict[str, Any], until: int) -> None:
    """Give the lease back without suggestions, only while it is still the one that ends at `until`
    (this caller's); raises `Conflict` when it was taken over or the step is gone."""
    table().update(steps.key(step), {}, remove=(LEASE,), expect=((LEASE,), until))
