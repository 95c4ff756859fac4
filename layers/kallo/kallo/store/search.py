"""The word index of step texts (access pattern 19): Query Steps without a Scan.

Every distinct word of a step's text is a posting item in the step's convo partition
(`TERM#<stepId>#<term>`), indexed by word in GSI1 (`TERM#<term>`, sorted by `<createdAt>#<stepId>`),
so "the steps containing word W, newest first" is one Query, and the purge worker deletes a convo's
postings with the rest of its partition. A posting carries `convoId` so a search can check the
caller's access per convo before reading any step.

Postings are written after the step is stored and are not part of its transaction: a posting whose
step is gone (or whose text changed) is harmless, because a search reads the steps themselves and
keeps only those whose current text holds every word searched for.

The LLM step worker calls `index(step)` when an answer completes; the steps service indexes user
steps, re-indexes them when their text changes (`reindex`) and calls `unindex` when a step goes.
`unindex` and `reindex` recompute the old postings from the old text: changing `terms` means
re-indexing the stored steps.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

from kallo import aws
from kallo.store import keys
from kallo.store.table import BATCH_WRITE_LIMIT, Page, serialize, table

MIN_TERM_LENGTH = 2
MAX_TERM_LENGTH = 40
MAX_TERMS_PER_STEP = 100
# Runs of Unicode letters and digits (`\w` without the underscore).
_WORD = re.compile(r"[^\W_]+")
# BatchWriteItem leaves items unprocessed when throttled: retry them with a growing pause, a few times.
_RETRY_PAUSES = (0.05, 0.1, 0.2, 0.4, 0.8)


def terms(text: str, *, limit: int | None = MAX_TERMS_PER_STEP) -> list[str]:
    """The indexed words of a text: lower-cased runs of letters and digits of 2 to 40 characters,
    each once, in order of first appearance, at most `limit` of them (None: all)."""
    found: dict[str, None] = {}
    for match in _WORD.finditer(text.lower()):
        word = match.group()
        if MIN_TERM_LENGTH <= len(word) <= MAX_TERM_LENGTH:
            found[word] = None
            if limit is not None and len(found) >= limit:
                break
    return list(found)


def text_of(step: Mapping[str, Any]) -> str:
    """A stored step's text (empty when it has none)."""
    content = step.get("content")
    text = content.get("text") if isinstance(content, Mapping) else None
    return text if isinstance(text, str) else ""


def _posting(step: Mapping[str, Any], term: str) -> dict[str, Any]:
    return {
        **keys.posting_key(step["convoId"], step["id"], term),
        **keys.posting_index_keys(term, step["createdAt"], step["id"]),
        "entity": "posting",
        "convoId": step["convoId"],
        "stepId": step["id"],
        "createdAt": step["createdAt"],
    }


def index(step: Mapping[str, Any]) -> int:
    """Write the postings of a stored step (as the store returns it: `createdAt` normalized); returns
    how many. Safe to repeat: a posting is overwritten by itself."""
    return index_many([step])


def index_many(stored: Iterable[Mapping[str, Any]]) -> int:
    """`index` for several steps, their postings batched together."""
    return write_postings(posting_items(stored))


def posting_items(stored: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The posting items of stored steps (to write in the steps' own transaction when they fit)."""
    puts = []
    for step in stored:
        puts += [_posting(step, t) for t in terms(text_of(step))]
    return puts


def write_postings(puts: list[dict[str, Any]]) -> int:
    """Write posting items (`posting_items`) through BatchWriteItem; returns how many."""
    return _write(puts=puts, deletes=[])


def unindex(step: Mapping[str, Any]) -> int:
    """Delete the postings of a step (as it was stored, text included); returns how many."""
    found = terms(text_of(step))
    return _write(puts=[], deletes=[keys.posting_key(step["convoId"], step["id"], t) for t in found])


def reindex(before: Mapping[str, Any], after: Mapping[str, Any]) -> int:
    """Bring a step's postings from its old text to its new one: only the words that came or went are
    written. Returns how many postings were written or deleted."""
    old, new = set(terms(text_of(before))), terms(text_of(after))
    gone = [keys.posting_key(before["convoId"], before["id"], t) for t in old.difference(new)]
    return _write(puts=[_posting(after, t) for t in new if t not in old], deletes=gone)


def postings(term: str, *, limit: int, start_key: dict[str, Any] | None = None) -> Page:
    """One page of the postings of a word, newest step first (items: `convoId`, `stepId`,
    `createdAt`). Raises `BadRequest` (`invalid_next_token`) for a start key of another query.

    The page's `last_key` names a posting of any tenant (its convo and step ids): it leaves the server
    only as an opaque cursor (`kallo.paging`)."""
    return table().query(
        keys.term_pk(term), index="GSI1", limit=limit, start_key=start_key, newest_first=True
    )


def _write(*, puts: Iterable[dict[str, Any]], deletes: Iterable[dict[str, str]]) -> int:
    """Puts and deletes through BatchWriteItem, 25 per request (the table module only batches
    deletes). The requests must not name one item twice."""
    requests = [{"PutRequest": {"Item": serialize(p)}} for p in puts]
    requests += [{"DeleteRequest": {"Key": serialize(d)}} for d in deletes]
    client, name = aws.client("dynamodb"), table().name
    for start in range(0, len(requests), BATCH_WRITE_LIMIT):
        pending: dict[str, Any] | None = {name: requests[start : start + BATCH_WRITE_LIMIT]}
        for pause in (*_RETRY_PAUSES, None):
            response = client.batch_write_item(RequestItems=pending)
            pending = response.get("UnprocessedItems") or None
            if not pending:
                break
            if pause is None:
                raise RuntimeError("DynamoDB left search postings unprocessed after retries")
            time.sleep(pause)
    return len(requests)
