"""Grounded answers: which data sources an answer may draw on, the passages it reads, what it cites.

I6 (grounding): every passage in an answer, and so every citation, comes from a data source that is
linked to the convo or its topic (a `dependent` grant, checked when it was made: whoever linked it may
use both objects), or that the step's author can view at the moment the answer is made. Ids in
configs (the step's `dataSourceIds`, those stored on an LLM step that a regen reuses, a topic's
`config.defaults`) are never trusted: `named_sources` checks them again, for the readers the LLM step
worker gives (`kallo.services.replies`), and drops silently those one of them cannot view.

The LLM step worker asks four things, in order:
1. `named_sources`: the ids the answer's config names that its readers may view now;
2. `sources_for`: the ready data sources of the convo being answered: those linked to the convo and to
   its topic (their `dependent` grants, GSI1, access pattern 6) and the checked named ones, most
   recently linked first, at most 20;
3. `retrieve`: the passages of those sources that best match the question (`kallo.documents.bm25`,
   fused with embeddings when a model is configured), within a token budget. Each source's index is
   read from S3 once per warm container: a small LRU keyed by the processed version.
4. `citations`: after the answer, the passages it used (only ever hits of those sources), each quoted by
   its best sentence with offsets in the data source's extracted text (convoAnnotation, API.md).

AWS calls: for named ids, the readers' checks (1 Query per named data source + 1 BatchGetItem per
reader); 1 Query per linked object (the convo, its topic) + 1 BatchGetItem (the data sources, only
when there are any) + 1 GetObject per index not in the cache (+ 1 embedding call when configured).
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aws_lambda_powertools import Logger

from kallo.authz.access import Access
from kallo.authz.policy import ObjectType, Permission
from kallo.documents import bm25, embeddings, quotes
from kallo.documents.bm25 import Hit, Index
from kallo.store import blobs, grants, objects
from kallo.store.keys import Ref

logger = Logger(child=True)

READY = "ready"
MAX_SOURCES = 20
MAX_CITATIONS = 3
CHARS_PER_TOKEN = 4
# What numbering and the source's name add around each excerpt, in tokens.
EXCERPT_OVERHEAD_TOKENS = 12
# A passage counts as used when its best sentence shares this many distinct terms with the answer.
MIN_SHARED_TERMS = 2
SHARED_TERMS_RATIO = 0.75
CACHE_SIZE = 16
# A BM25 hit scoring under this share of the best hit's score is left out: it only shares a common
# word or two with the question, and a small model's context is better spent on the best passages.
RELATIVE_SCORE_FLOOR = 0.5

_MARKER = re.compile(r"\[(\d{1,2})\]")
_indexes: OrderedDict[tuple[str, str, str], Index] = OrderedDict()


# -- which sources ----------------------------------------------------------------------------------------


def _linked(grantees: Iterable[Ref]) -> list[str]:
    """Ids of the data sources linked to these objects, most recently linked first."""
    found = [g for grantee in grantees for g in grants.links_to(grantee, "data_source")]
    found.sort(key=lambda g: g.get("createdAt", ""), reverse=True)
    return [g["objectId"] for g in found]


def named_sources(config: dict[str, Any], readers: Sequence[Access]) -> list[str]:
    """I6 (grounding): the data sources `config` names (`dataSourceIds`) that every one of `readers`
    may view now, in order; the others are dropped silently. No readers: none."""
    named = config.get("dataSourceIds")
    ids = (
        list(dict.fromkeys(i for i in named if isinstance(i, str)))[:MAX_SOURCES]
        if isinstance(named, list)
        else []
    )
    if not ids or not readers:
        return []
    refs = [Ref(ObjectType.data_source.value, i) for i in ids]
    for reader in readers:
        reader.preload(refs)
    return [ref.id for ref in refs if all(reader.can(ref, Permission.can_view) for reader in readers)]


def sources_for(convo: dict[str, Any], topic: dict[str, Any] | None, named: Sequence[str] = ()) -> list[dict]:
    """The ready data sources an answer in `convo` is grounded on (see the module docstring): those
    linked to the convo and its topic, and `named`, which `named_sources` checked."""
    grantees = [Ref("convo", convo["id"])] + ([Ref("topic", topic["id"])] if topic else [])
    ids = list(dict.fromkeys([*named, *_linked(grantees)]))[:MAX_SOURCES]
    if not ids:
        return []
    found = objects.batch_get([Ref("data_source", i) for i in ids])
    items = (found.get(Ref("data_source", i)) for i in ids)
    return [
        item for item in items if item is not None and item.get("status") == READY and item.get("location")
    ]


def names_of(data_source_ids: Iterable[str]) -> dict[str, str]:
    """The names of data sources an answer cited (its annotations name only sources it was grounded
    on, I6): one BatchGetItem; a source deleted since is left out."""
    refs = [Ref(ObjectType.data_source.value, i) for i in dict.fromkeys(data_source_ids)]
    found = objects.batch_get(refs) if refs else {}
    return {ref.id: found[ref].get("name") or "" for ref in refs if found.get(ref) is not None}


# -- which passages ---------------------------------------------------------------------------------------


def _index(source: dict[str, Any]) -> Index:
    """The source's index, from the cache while its processed version is unchanged."""
    key = (
        source["id"],
        source.get("versionId") or "",
        source.get("processedAt") or source.get("updatedAt", ""),
    )
    cached = _indexes.get(key)
    if cached is not None:
        _indexes.move_to_end(key)
        return cached
    index = Index.from_bytes(blobs.get(blobs.key(source["location"], blobs.INDEX)))
    _indexes[key] = index
    while len(_indexes) > CACHE_SIZE:
        _indexes.popitem(last=False)
    return index


def excerpt_tokens(hit: Hit) -> int:
    """The estimated cost of one excerpt in the prompt (4 characters per token, as for turns)."""
    return math.ceil(len(hit.passage.text) / CHARS_PER_TOKEN) + EXCERPT_OVERHEAD_TOKENS


def retrieve(sources: list[dict[str, Any]], question: str, *, k: int, budget_tokens: int) -> list[Hit]:
    """The best passages of `sources` for `question`, best first, at most `k`, none far below the best
    (`RELATIVE_SCORE_FLOOR`), within `budget_tokens` (a passage that does not fit makes room for a
    shorter one ranked after it). A source whose index
    cannot be read is left out, so one broken file does not keep the others from answering."""
    indexes: dict[str, Index] = {}
    for source in sources:
        try:
            indexes[source["id"]] = _index(source)
        except Exception:
            logger.warning(
                "a data source's index could not be read", extra={"dataSourceId": source["id"]}, exc_info=True
            )
    if not indexes or not question.strip():
        return []
    vectors = embeddings.embed([question])
    hits = bm25.search(indexes, question, k=k, query_vector=vectors[0] if vectors else None)
    if hits and not vectors:  # fused ranks are not scores to compare this way
        hits = [h for h in hits if h.score >= hits[0].score * RELATIVE_SCORE_FLOOR]
    kept, used = [], 0
    for hit in hits:
        cost = excerpt_tokens(hit)
        if used + cost <= budget_tokens:
            kept.append(hit)
            used += cost
    return kept


def excerpts(hits: list[Hit], sources: list[dict[str, Any]]) -> str:
    """The hits as numbered excerpts for the system prompt; the numbers are what the answer cites."""
    names = {s["id"]: s.get("name") or "a document" for s in sources}
    return "\n\n".join(
        f'[{n}] From "{names.get(hit.source_id, "a document")}":\n{hit.passage.text.strip()}'
        for n, hit in enumerate(hits, start=1)
    )


# -- what the answer cites --------------------------------------------------------------------------------


def _words(text: str) -> set[str]:
    """Distinct index terms (stemmed, stop words dropped): what shows that an answer drew on a sentence."""
    return set(bm25.terms(text))


def _cited(hits: list[Hit], answer_text: str) -> list[Hit]:
    """The hits the answer cites with [n] markers, in the order it first cites them."""
    numbers = dict.fromkeys(int(m) for m in _MARKER.findall(answer_text))
    return [hits[n - 1] for n in numbers if 1 <= n <= len(hits)]


def citations(
    hits: list[Hit], answer_text: str, names: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """convoAnnotations for the passages the answer used: those it cites as [n]; else those whose best
    sentence shares enough words with it (at least `MIN_SHARED_TERMS`, and nearly as many as the best
    one); else the best-ranked one (the answer was made with it in
    view). Each quotes the passage's sentence closest to the answer; at most 3, no duplicates.
    `names`: the display names of the answer's sources, carried as `dataSourceName`, so a reader who
    may not GET the data source still sees what is cited. I6: `hits` come only from the sources the
    answer was allowed to use, and a name is only ever looked up for a hit's own source."""
    if not hits:
        return []
    used = _cited(hits, answer_text)
    if not used:
        words = _words(answer_text)
        shared = [len(_words(quotes.best_sentence(h.passage, answer_text).text) & words) for h in hits]
        # Beside the best-supported passage, only those sharing nearly as much with the answer: two
        # common words ("company", "use") are not support.
        floor = max(MIN_SHARED_TERMS, math.ceil(max(shared) * SHARED_TERMS_RATIO))
        used = [h for h, count in zip(hits, shared, strict=True) if count >= floor]
    annotations: dict[tuple[str, int, int], dict[str, Any]] = {}
    for hit in used or hits[:1]:
        quote = quotes.best_sentence(hit.passage, answer_text)
        place = (hit.source_id, quote.start, quote.end)
        if place not in annotations:
            annotations[place] = {
                "type": "citation",
                "dataSourceId": hit.source_id,
                "text": quote.text,
                "start": quote.start,
                "end": quote.end,
            }
            if names and names.get(hit.source_id):
                annotations[place]["dataSourceName"] = names[hit.source_id]
        if len(annotations) == MAX_CITATIONS:
            break
    return list(annotations.values())
