"""Query Steps (`GET /steps?searchTerm=`): the steps whose text holds every word searched for, among
those the caller may view, through the word index of step texts (`kallo.store.search`).

Costs in AWS calls: Query (the rarest word's postings) + one Query per distinct convo among the hits
(+ its topic) + BatchGetItem (the caller's grants) + BatchGetItem (the steps).
"""

from __future__ import annotations

from typing import Any

from kallo import paging
from kallo.authz.access import Access
from kallo.authz.policy import ObjectType, Permission
from kallo.errors import BadRequest
from kallo.store import search
from kallo.store import steps as store
from kallo.store.keys import Ref


def query_steps(
    access: Access, search_term: str, *, limit: int, next_token: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the steps whose text holds every word of `search_term`, newest first, among those
    the caller may view, and the cursor of the next page. The rarest-looking (longest) word is looked
    up in the index; the other words are checked against the steps' text. A page may hold fewer than
    `limit` steps (even none, with a cursor) when hits are hidden or lack another word."""
    words = search.terms(search_term, limit=None)
    if not words:
        raise BadRequest(
            "searchTerm must hold a word of 2 to 40 letters or digits", code="search_term_has_no_words"
        )
    anchor = max(words, key=len)
    # I7 (cursors): the index's keys name postings of every tenant; the cursor hides them.
    kind = f"step-search/{anchor}"
    start = paging.position(next_token, kind=kind, principal=access.principal)
    page = search.postings(anchor, limit=limit, start_key=start)
    convo_ids = list(dict.fromkeys(p["convoId"] for p in page.items))
    refs = [Ref(ObjectType.convo.value, c) for c in convo_ids]
    if refs:
        access.preload(refs)
    visible = {r.id for r in refs if access.can(r, Permission.can_view)}
    wanted = [
        {"convoId": p["convoId"], "createdAt": p["createdAt"], "id": p["stepId"]}
        for p in page.items
        if p["convoId"] in visible
    ]
    found = store.batch_get(wanted)
    needed = set(words)
    hits = []
    for want in wanted:
        step = found.get(want["id"])
        # The index may lag a change of text (or a deletion): the step itself decides.
        if step is not None and needed <= set(search.terms(search.text_of(step), limit=None)):
            hits.append(step)
    return hits, paging.cursor(page.last_key, kind=kind, principal=access.principal)
