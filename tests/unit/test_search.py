"""The word index of step texts (access pattern 19): which words are indexed, the posting items in the
convo's partition and GSI1, re-indexing a changed text, and the purge of a deleted convo."""

from uuid import uuid4

import pytest

from kallo.models.steps import Step
from kallo.services import purge
from kallo.store import keys, search, steps
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.world import make_object, make_user, ref_of


def test_terms_are_lower_cased_unicode_words_of_2_to_40_characters_once_each():
    assert search.terms("Hello, hello WORLD! a I x2 3 42") == ["hello", "world", "x2", "42"]
    assert search.terms("Ça coûte 12€ à São Paulo; naïve_café") == [
        "ça",
        "coûte",
        "12",
        "são",
        "paulo",
        "naïve",
        "café",
    ]
    assert search.terms("東京 ΑΘΗΝΑ мир") == ["東京", "αθηνα", "мир"]
    assert search.terms("x" * 40 + " " + "y" * 41) == ["x" * 40]
    assert search.terms("") == [] and search.terms("!!! ... a") == []


def test_at_most_100_terms_per_step_the_first_ones():
    text = " ".join(f"w{i:03d}" for i in range(150))
    found = search.terms(text)
    assert len(found) == 100 and found[0] == "w000" and found[-1] == "w099"
    assert len(search.terms(text, limit=None)) == 150


@pytest.fixture
def convo(aws) -> Ref:
    return make_object("convo", ref_of(make_user()))


def stored(convo: Ref, text: str, at: str = "2026-11-22T10:00:00.000Z") -> dict:
    step = Step(
        id=str(uuid4()),
        convoId=convo.id,
        authorType="user",
        authorId=str(uuid4()),
        content={"text": text},
        createdAt=at,
        updatedAt=at,
    )
    return steps.add(step.record())


def postings_of(convo: Ref, step_id: str) -> list[dict]:
    return table().query_all(keys.object_pk(convo), prefix=f"TERM#{step_id}#")


def test_index_writes_one_posting_per_word_in_the_convo_partition_and_gsi1(convo, aws_calls):
    step = stored(convo, "Lisbon trams, Lisbon food")
    aws_calls.reset()
    assert search.index(step) == 3
    assert dict(aws_calls.calls) == {"dynamodb:BatchWriteItem": 1}
    items = postings_of(convo, step["id"])
    assert sorted(i["SK"] for i in items) == [f"TERM#{step['id']}#{w}" for w in ("food", "lisbon", "trams")]
    lisbon = next(i for i in items if i["SK"].endswith("#lisbon"))
    assert lisbon["GSI1PK"] == "TERM#lisbon" and lisbon["GSI1SK"] == f"{step['createdAt']}#{step['id']}"
    assert lisbon["convoId"] == convo.id and lisbon["stepId"] == step["id"]
    # Indexing again changes nothing.
    search.index(step)
    assert len(postings_of(convo, step["id"])) == 3


def test_many_words_are_written_25_per_request(convo, aws_calls):
    step = stored(convo, " ".join(f"word{i}" for i in range(60)))
    aws_calls.reset()
    assert search.index(step) == 60
    assert aws_calls["dynamodb:BatchWriteItem"] == 3


def test_postings_are_newest_first_and_paged(convo):
    made = [stored(convo, f"harbour view {i}", at=f"2026-11-22T10:00:0{i}.000Z") for i in range(5)]
    search.index_many(made)
    page = search.postings("harbour", limit=3)
    assert [p["stepId"] for p in page.items] == [s["id"] for s in reversed(made[2:])]
    rest = search.postings("harbour", limit=3, start_key=page.last_key)
    assert [p["stepId"] for p in rest.items] == [made[1]["id"], made[0]["id"]] and rest.last_key is None
    assert search.postings("nowhere", limit=3).items == []


def test_reindex_writes_only_the_words_that_came_or_went(convo, aws_calls):
    before = stored(convo, "red green blue")
    search.index(before)
    after = {**before, "content": {"text": "green blue yellow"}}
    aws_calls.reset()
    assert search.reindex(before, after) == 2  # red goes, yellow comes
    assert aws_calls["dynamodb:BatchWriteItem"] == 1
    words = sorted(i["SK"].rsplit("#", 1)[1] for i in postings_of(convo, before["id"]))
    assert words == ["blue", "green", "yellow"]
    aws_calls.reset()
    assert search.reindex(after, after) == 0 and aws_calls.total == 0


def test_unindex_deletes_the_postings(convo):
    step = stored(convo, "alpha beta")
    search.index(step)
    assert search.unindex(step) == 2
    assert postings_of(convo, step["id"]) == [] and search.postings("alpha", limit=10).items == []


def test_a_text_without_words_costs_nothing(convo, aws_calls):
    step = stored(convo, "?! a")
    aws_calls.reset()
    assert search.index(step) == 0 and search.unindex(step) == 0 and aws_calls.total == 0


def test_the_purge_of_a_deleted_convo_removes_its_postings(convo):
    step = stored(convo, "ephemeral words")
    search.index(step)
    table().delete(keys.object_key(convo))
    purge.purge(convo)
    assert table().query_all(keys.object_pk(convo)) == []
    assert search.postings("ephemeral", limit=10).items == []
