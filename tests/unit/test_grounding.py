"""Grounding (kallo.services.grounding): which data sources an answer draws on, the passages it reads
(with the per-container index cache and the token budget), and the citations of what it used."""

from __future__ import annotations

from typing import Any

import pytest

from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.clock import now_iso
from kallo.documents import passages
from kallo.documents.bm25 import Hit, Index
from kallo.documents.passages import Passage
from kallo.services import grounding
from kallo.store import blobs, grants, keys
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.world import grant, make_object, make_user, ref_of


def owner_principal(owner: Ref) -> Principal:
    return Principal(user_id=owner.id, scheme="api_key")


HERON = (
    "Project Heron is our internal codename for the new billing system.\n\n"
    "The launch code of project Heron is ZX-42. It was chosen by the platform team in March.\n\n"
    "Invoices are sent on the first working day of each month."
)
WEATHER = "The office is in Lisbon. It rains rarely in summer, and the terrace is open from May."


# -- helpers ----------------------------------------------------------------------------------------------


def data_source(
    owner: Ref, text: str | None = None, *, status: str = "ready", **fields: Any
) -> dict[str, Any]:
    """A data source item; with `text`, its index is stored where its `location` says."""
    ref = make_object("data_source", owner, status=status, type="upload", **fields)
    location = blobs.location(owner, ref.id)
    table().update(keys.object_key(ref), {"location": location})
    if text is not None:
        index = Index.build(passages.split(text))
        blobs.put(blobs.key(location, blobs.INDEX), index.to_bytes(), content_type="application/json")
    return {"id": ref.id, "location": location, "status": status, **fields}


def link(data_source_id: str, target: Ref, at: str) -> None:
    """A dependent grant (a link) made at a chosen time."""
    source = Ref("data_source", data_source_id)
    table().put(grants.item(source, target, "dependent", created_by="someone", created_at=at))


def hit(source_id: str, text: str, *, start: int = 0, score: float = 1.0) -> Hit:
    return Hit(source_id, Passage(start, start + len(text), text), score)


@pytest.fixture
def owner(aws) -> Ref:
    return ref_of(make_user())


# -- named_sources (I6) -----------------------------------------------------------------------------------


def test_named_ids_another_tenant_owns_are_dropped(owner, aws_calls):
    """I6: a config (a topic's defaults, a stored step config) naming another tenant's data source
    grounds nothing on it: the id is checked for the reader now, and dropped silently."""
    own = data_source(owner)
    theirs = data_source(ref_of(make_user()))
    aws_calls.reset()
    named = grounding.named_sources(
        {"dataSourceIds": [theirs["id"], own["id"]]}, [Access(owner_principal(owner))]
    )
    assert named == [own["id"]]
    assert aws_calls.calls == {"dynamodb:Query": 2, "dynamodb:BatchGetItem": 1}


def test_every_reader_must_view_a_named_source(owner):
    """A regen by someone else: what either of the two cannot view is dropped (the stricter)."""
    other = make_user()
    own = data_source(owner)
    shared = data_source(owner)
    grant(Ref("data_source", shared["id"]), other, "viewer")
    readers = [Access(owner_principal(owner)), Access(other)]
    config = {"dataSourceIds": [own["id"], shared["id"]]}
    assert grounding.named_sources(config, readers) == [shared["id"]]
    assert grounding.named_sources(config, []) == []


@pytest.mark.parametrize("value", [None, "not-a-list", [1, None], []])
def test_malformed_named_ids_name_nothing(owner, value, aws_calls):
    aws_calls.reset()
    assert grounding.named_sources({"dataSourceIds": value}, [Access(owner_principal(owner))]) == []
    assert aws_calls.total == 0


# -- sources_for ------------------------------------------------------------------------------------------


def test_sources_are_the_convo_and_topic_links_and_the_config_ids_newest_first(owner, aws_calls):
    topic = make_object("topic", owner)
    convo = make_object("convo", owner, topicId=topic.id)
    old = data_source(owner)
    new = data_source(owner)
    on_topic = data_source(owner)
    named = data_source(owner)
    link(old["id"], convo, "2026-01-01T00:00:00.000Z")
    link(new["id"], convo, "2026-03-01T00:00:00.000Z")
    link(on_topic["id"], topic, "2026-02-01T00:00:00.000Z")
    link(named["id"], convo, "2025-01-01T00:00:00.000Z")  # linked and named: once, where named
    aws_calls.reset()
    found = grounding.sources_for({"id": convo.id}, {"id": topic.id}, [named["id"]])
    assert [s["id"] for s in found] == [named["id"], new["id"], on_topic["id"], old["id"]]
    assert aws_calls.calls == {"dynamodb:Query": 2, "dynamodb:BatchGetItem": 1}


def test_only_existing_ready_sources_count(owner):
    convo = make_object("convo", owner)
    ready = data_source(owner)
    for status in ("processing", "failed", "awaiting_upload"):
        link(data_source(owner, status=status)["id"], convo, now_iso())
    link(ready["id"], convo, now_iso())
    link("00000000-0000-4000-8000-000000000000", convo, now_iso())  # deleted, its link not purged yet
    assert [s["id"] for s in grounding.sources_for({"id": convo.id}, None)] == [ready["id"]]


def test_at_most_twenty_sources_most_recent_first(owner):
    convo = make_object("convo", owner)
    made = [data_source(owner) for _ in range(22)]
    for n, source in enumerate(made):
        link(source["id"], convo, f"2026-01-01T00:00:{n:02d}.000Z")
    found = grounding.sources_for({"id": convo.id}, None)
    assert [s["id"] for s in found] == [s["id"] for s in reversed(made)][: grounding.MAX_SOURCES]


def test_without_links_or_ids_only_the_links_are_read(owner, aws_calls):
    convo = make_object("convo", owner)
    aws_calls.reset()
    assert grounding.sources_for({"id": convo.id}, None, []) == []
    assert aws_calls.calls == {"dynamodb:Query": 1}


def test_an_unlinked_source_is_no_longer_used(owner):
    convo = make_object("convo", owner)
    source = data_source(owner)
    link(source["id"], convo, now_iso())
    assert [s["id"] for s in grounding.sources_for({"id": convo.id}, None)] == [source["id"]]
    table().delete(keys.grant_key(Ref("data_source", source["id"]), convo))
    assert grounding.sources_for({"id": convo.id}, None) == []


# -- retrieve ---------------------------------------------------------------------------------------------


def test_the_passage_with_the_fact_is_retrieved_first(owner):
    heron = data_source(owner, HERON, versionId="v1", processedAt="2026-01-01T00:00:00.000Z")
    weather = data_source(owner, WEATHER, versionId="v1", processedAt="2026-01-01T00:00:00.000Z")
    hits = grounding.retrieve(
        [weather, heron], "What is the launch code of Heron?", k=4, budget_tokens=10_000
    )
    assert hits and hits[0].source_id == heron["id"]
    assert "ZX-42" in hits[0].passage.text
    assert all(h.source_id != weather["id"] for h in hits)  # shares no term with the question


def test_passages_far_below_the_best_are_left_out(owner):
    heron = data_source(owner, HERON, processedAt="p")
    weather = data_source(owner, WEATHER, processedAt="p")
    question = "What is the launch code of project Heron this summer?"
    indexes = {s["id"]: grounding._index(s) for s in (heron, weather)}
    assert {h.source_id for h in grounding.bm25.search(indexes, question, k=4)} == {
        heron["id"],
        weather["id"],
    }
    hits = grounding.retrieve([heron, weather], question, k=4, budget_tokens=10_000)
    assert {h.source_id for h in hits} == {heron["id"]}  # the weather matched "summer" only


def test_a_warm_worker_reads_an_index_once_per_processed_version(owner, aws_calls):
    source = data_source(owner, HERON, versionId="v1", processedAt="2026-01-01T00:00:00.000Z")
    aws_calls.reset()
    grounding.retrieve([source], "launch code", k=4, budget_tokens=10_000)
    grounding.retrieve([source], "invoices", k=4, budget_tokens=10_000)
    assert aws_calls.calls == {"s3:GetObject": 1}
    reprocessed = {**source, "processedAt": "2026-02-01T00:00:00.000Z"}
    grounding.retrieve([reprocessed], "launch code", k=4, budget_tokens=10_000)
    assert aws_calls.calls == {"s3:GetObject": 2}


def test_the_cache_keeps_the_most_recently_used_indexes(owner, monkeypatch, aws_calls):
    monkeypatch.setattr(grounding, "CACHE_SIZE", 2)
    first, second, third = (data_source(owner, HERON, processedAt="p") for _ in range(3))
    aws_calls.reset()
    for source in (first, second, first, third):  # third evicts second, the least recently used
        grounding.retrieve([source], "launch code", k=1, budget_tokens=10_000)
    assert aws_calls["s3:GetObject"] == 3
    grounding.retrieve([first], "launch code", k=1, budget_tokens=10_000)
    assert aws_calls["s3:GetObject"] == 3
    grounding.retrieve([second], "launch code", k=1, budget_tokens=10_000)
    assert aws_calls["s3:GetObject"] == 4


def test_hits_are_kept_within_the_token_budget(owner):
    long = "Heron " + "words about heron and its launch " * 60  # one ~2000-character passage
    big = data_source(owner, long, processedAt="p")
    small = data_source(owner, "The Heron launch code is ZX-42.", processedAt="p")
    both = grounding.retrieve([big, small], "heron launch", k=4, budget_tokens=10_000)
    assert {h.source_id for h in both} == {big["id"], small["id"]}
    budget = grounding.excerpt_tokens(hit("x", "The Heron launch code is ZX-42."))
    [only] = grounding.retrieve([big, small], "heron launch", k=4, budget_tokens=budget)
    assert only.source_id == small["id"]  # the bigger one did not fit, the smaller one after it did
    assert grounding.retrieve([big, small], "heron launch", k=4, budget_tokens=budget - 1) == []


def test_an_unreadable_index_leaves_its_source_out(owner):
    missing = data_source(owner, processedAt="p")  # no index stored
    heron = data_source(owner, HERON, processedAt="p")
    hits = grounding.retrieve([missing, heron], "launch code", k=4, budget_tokens=10_000)
    assert {h.source_id for h in hits} == {heron["id"]}


def test_excerpts_are_numbered_with_their_source_name():
    hits = [hit("a", "First passage."), hit("b", "Second passage.")]
    text = grounding.excerpts(hits, [{"id": "a", "name": "notes.md"}, {"id": "b", "name": "plan.pdf"}])
    assert text == '[1] From "notes.md":\nFirst passage.\n\n[2] From "plan.pdf":\nSecond passage.'


# -- citations --------------------------------------------------------------------------------------------


def test_cited_markers_say_which_passages_were_used():
    hits = [
        hit("a", "Invoices go out monthly. The launch code is ZX-42.", start=100),
        hit("b", "The office is in Lisbon."),
        hit("c", "Heron is the billing system."),
    ]
    found = grounding.citations(hits, "The code is ZX-42 [1], for Heron [3]. [9] is not an excerpt.")
    assert found == [
        {
            "type": "citation",
            "dataSourceId": "a",
            "text": "The launch code is ZX-42.",
            "start": 125,
            "end": 150,
        },
        {
            "type": "citation",
            "dataSourceId": "c",
            "text": "Heron is the billing system.",
            "start": 0,
            "end": 28,
        },
    ]


def test_citations_carry_the_display_name_of_their_own_source_only():
    hits = [hit("a", "The launch code is ZX-42."), hit("b", "Heron is the billing system.")]
    names = {"a": "heron.md", "b": "billing.pdf", "z": "someone else's.pdf"}
    found = grounding.citations(hits, "ZX-42 [1], Heron [2].", names)
    assert [(c["dataSourceId"], c["dataSourceName"]) for c in found] == [
        ("a", "heron.md"),
        ("b", "billing.pdf"),
    ]
    # A source without a known name is cited without one (never with another source's).
    [unnamed] = grounding.citations(hits[:1], "ZX-42 [1].", {"b": "billing.pdf"})
    assert "dataSourceName" not in unnamed


def test_without_markers_the_passages_sharing_words_with_the_answer_are_cited():
    hits = [
        hit("a", "The office is in Lisbon."),
        hit("b", "Project Heron launched in March. Its launch code is ZX-42."),
    ]
    [citation] = grounding.citations(hits, "Heron's launch code is ZX-42.")
    assert (citation["dataSourceId"], citation["text"]) == ("b", "Its launch code is ZX-42.")


def test_a_passage_sharing_only_common_words_is_not_cited_beside_the_best():
    hits = [
        hit("a", "Passwords live in Vaultkeep, our password manager, on every system."),
        hit("b", "Parking is limited; everyone else can use the bike scheme the company pays for."),
    ]
    found = grounding.citations(hits, "The company uses a password manager called Vaultkeep.")
    assert [c["dataSourceId"] for c in found] == ["a"]
    both = grounding.citations(hits, "The company uses Vaultkeep as password manager and pays for bikes.")
    assert [c["dataSourceId"] for c in both] == ["a", "b"]


def test_when_nothing_matches_the_best_ranked_hit_is_cited():
    hits = [hit("a", "The office is in Lisbon."), hit("b", "Heron is the billing system.")]
    [citation] = grounding.citations(hits, "I could not find that.")
    assert citation["dataSourceId"] == "a"


def test_at_most_three_citations_without_duplicates():
    same = hit("a", "The launch code is ZX-42.")
    hits = [same, same, *(hit(str(n), f"Fact {n} about the launch code ZX-42.") for n in range(4))]
    found = grounding.citations(hits, "[1][2][3][4][5][6]")
    assert [c["dataSourceId"] for c in found] == ["a", "0", "1"]


def test_no_hits_no_citations():
    assert grounding.citations([], "Anything [1].") == []
