"""The step store (access patterns 12 and 13): one transaction per step with its contributor marker and
the convo's latestStep; a convo's steps oldest first, after a time, page by page; a step by id."""

import time
from datetime import UTC, datetime
from unittest import mock
from uuid import uuid4

import pytest
from botocore.exceptions import ClientError

from kallo.errors import BadRequest, Conflict
from kallo.models.steps import Step
from kallo.store import keys, objects, steps
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.world import make_object, make_user, ref_of


def new_step(
    convo: Ref, at: str, *, author: str | None = None, alternate: bool = False, text: str = ""
) -> Step:
    return Step(
        id=str(uuid4()),
        convoId=convo.id,
        authorType="user" if author else "llm",
        authorId=author,
        isAlternate=alternate,
        content={"text": text or f"said at {at}"},
        createdAt=at,
        updatedAt=at,
    )


@pytest.fixture
def convo(aws) -> Ref:
    return make_object("convo", ref_of(make_user()))


def partition(convo: Ref) -> list[dict]:
    return table().query_all(keys.object_pk(convo))


def test_add_writes_the_step_its_marker_and_the_latest_step_in_one_transaction(convo, aws_calls):
    author = str(uuid4())
    step = new_step(convo, "2026-11-22T10:00:00.000Z", author=author, text="Hello")
    aws_calls.reset()
    stored = steps.add(step.record())
    assert aws_calls.total == 1 and aws_calls["dynamodb:TransactWriteItems"] == 1
    assert stored["content"] == {"text": "Hello"} and "PK" not in stored
    assert steps.get(step.id) == stored
    assert objects.get(convo)["latestStep"] == stored
    assert steps.contributors(convo.id) == [author]
    item = table().get({"PK": keys.object_pk(convo), "SK": keys.step_sk(step.created_at, step.id)})
    assert item["entity"] == "step" and item["GSI1PK"] == keys.step_index_pk(step.id)


def test_alternates_and_llm_steps(convo):
    primary = steps.add(new_step(convo, "2026-11-22T10:00:00.000Z", author="u1").record())
    steps.add(new_step(convo, "2026-11-22T10:00:01.000Z", alternate=True).record())
    # An alternate is not the convo's latest (primary) step; an LLM step leaves no contributor.
    assert objects.get(convo)["latestStep"] == primary
    answer = steps.add(new_step(convo, "2026-11-22T10:00:02.000Z").record())
    assert objects.get(convo)["latestStep"] == answer
    steps.add(new_step(convo, "2026-11-22T10:00:03.000Z", author="u1").record())
    assert steps.contributors(convo.id) == ["u1"]


def test_every_change_of_steps_moves_the_convos_updated_at(convo, aws_calls):
    """Added (primary or alternate), updated, made primary, deleted: the convo's `updatedAt` moves, in
    the write the change makes anyway (no call of its own)."""

    def moved(change) -> dict:
        """The AWS calls of `change`, once it moved the convo's updatedAt."""
        before = objects.get(convo).get("updatedAt", "")
        time.sleep(0.002)  # timestamps have millisecond precision
        aws_calls.reset()
        change()
        calls = dict(aws_calls.calls)
        assert objects.get(convo)["updatedAt"] > before
        return calls

    primary = steps.add(new_step(convo, "2026-11-22T10:00:00.000Z", author="u1").record())
    alternate: dict = {}
    added = moved(
        lambda: alternate.update(
            steps.add(new_step(convo, "2026-11-22T10:00:01.000Z", alternate=True).record())
        )
    )
    assert added == {"dynamodb:TransactWriteItems": 1}
    # The step and the convo in one transaction; the latestStep is not an alternate's to follow.
    edited = moved(lambda: steps.update(alternate, {"content": {"text": "changed"}}, touch_convo=True))
    assert edited == {"dynamodb:TransactWriteItems": 1}
    lone = steps.add(new_step(convo, "2026-11-22T10:00:02.000Z", author="u1").record())
    # The deletion with the convo's updatedAt (one transaction), the newest primary, the latestStep.
    deleted = moved(lambda: steps.delete(lone))
    assert deleted == {"dynamodb:TransactWriteItems": 1, "dynamodb:Query": 1, "dynamodb:UpdateItem": 1}
    assert objects.get(convo)["latestStep"]["id"] == primary["id"]


def test_an_update_in_one_transaction_returns_the_step_as_written(convo):
    step = steps.add(new_step(convo, "2026-11-22T10:00:00.000Z", author="u1", text="Hello").record())
    updated = steps.update(step, {"content": {"text": "Hi"}}, touch_convo=True)
    assert updated == steps.current(step) and updated["content"] == {"text": "Hi"}
    assert objects.get(convo)["latestStep"] == updated
    steps.delete(step)
    with pytest.raises(Conflict):
        steps.update(step, {"content": {"text": "gone"}}, touch_convo=True)


def test_no_step_goes_into_a_missing_convo(aws):
    ghost = Ref("convo", str(uuid4()))
    for alternate in (False, True):
        with pytest.raises(Conflict):
            steps.add(new_step(ghost, "2026-11-22T10:00:00.000Z", author="u1", alternate=alternate).record())
    assert partition(ghost) == []


def test_the_same_step_is_stored_once(convo):
    step = new_step(convo, "2026-11-22T10:00:00.000Z")
    steps.add(step.record())
    with pytest.raises(Conflict):
        steps.add(step.record())


def test_timestamps_are_normalized_so_they_sort(convo):
    late = steps.add(new_step(convo, "2026-11-22T12:00:00+02:00").record())  # 10:00Z
    early = steps.add(new_step(convo, "2026-11-22T09:59:59.5Z").record())
    assert late["createdAt"] == "2026-11-22T10:00:00.000Z"
    assert early["createdAt"] == "2026-11-22T09:59:59.500Z"
    assert [s["id"] for s in steps.of_convo(convo.id).items] == [early["id"], late["id"]]
    with pytest.raises(ValueError):
        steps.add(new_step(convo, "yesterday").record())


def test_of_convo_oldest_first_after_a_time_and_paged(convo):
    times = [f"2026-11-22T10:00:{s:02d}.000Z" for s in range(7)]
    added = [steps.add(new_step(convo, t).record()) for t in reversed(times)]
    ids = [s["id"] for s in reversed(added)]
    assert [s["id"] for s in steps.of_convo(convo.id).items] == ids
    # Strictly after: the step created at exactly `after` is left out.
    after = datetime(2026, 11, 22, 10, 0, 3, tzinfo=UTC)
    assert [s["id"] for s in steps.of_convo(convo.id, after=after).items] == ids[4:]
    seen, start = [], None
    while True:
        page = steps.of_convo(convo.id, limit=3, start_key=start)
        seen += [s["id"] for s in page.items]
        start = page.last_key
        if not start:
            break
    assert seen == ids


def test_a_start_key_only_works_for_its_own_convo(convo):
    for second in range(3):
        steps.add(new_step(convo, f"2026-11-22T10:00:0{second}.000Z").record())
    start = steps.of_convo(convo.id, limit=1).last_key
    other = make_object("convo", ref_of(make_user()))
    with pytest.raises(BadRequest):
        steps.of_convo(other.id, start_key=start)


def test_a_start_key_outside_the_query_is_a_bad_request(convo):
    """DynamoDB refuses a start key outside the key condition (moto does not emulate it)."""
    steps.add(new_step(convo, "2026-11-22T10:00:00.000Z").record())
    steps.add(new_step(convo, "2026-11-22T10:00:01.000Z").record())
    start = steps.of_convo(convo.id, limit=1).last_key
    refused = ClientError(
        {
            "Error": {
                "Code": "ValidationException",
                "Message": "The provided starting key is outside query boundaries",
            }
        },
        "Query",
    )
    with mock.patch.object(table()._client, "query", side_effect=refused), pytest.raises(BadRequest):
        steps.of_convo(convo.id, start_key=start)


def test_get_unknown_step(aws):
    assert steps.get(str(uuid4())) is None


def test_delete_all_of_convo_leaves_the_rest_of_the_partition(convo):
    for second in range(30):
        steps.add(new_step(convo, f"2026-11-22T10:00:{second:02d}.000Z", author=f"u{second % 3}").record())
    assert steps.delete_all_of_convo(convo.id) == 33
    left = {i["SK"].split("#")[0] for i in partition(convo)}
    assert left == {"", "GRANT"}  # the convo item (#META) and its owner grant
    assert steps.of_convo(convo.id).items == [] and steps.contributors(convo.id) == []
    assert steps.delete_all_of_convo(convo.id) == 0


def test_update_keeps_the_latest_step_in_sync(convo):
    first = steps.add(new_step(convo, "2026-11-22T10:00:00.000Z").record())
    second = steps.add(new_step(convo, "2026-11-22T10:00:01.000Z").record())
    steps.update(first, {"content": {"text": "edited first"}})
    assert objects.get(convo)["latestStep"]["id"] == second["id"]  # an older step leaves it alone
    updated = steps.update(second, {"content": {"text": "edited second"}, "status": "completed"})
    assert updated["content"] == {"text": "edited second"} and updated["updatedAt"] >= second["updatedAt"]
    assert objects.get(convo)["latestStep"]["content"] == {"text": "edited second"}


def test_delete_falls_back_to_the_newest_remaining_primary_step(convo):
    first = steps.add(new_step(convo, "2026-11-22T10:00:00.000Z").record())
    steps.add(new_step(convo, "2026-11-22T10:00:01.000Z", alternate=True).record())
    last = steps.add(new_step(convo, "2026-11-22T10:00:02.000Z").record())
    steps.delete(last)
    assert objects.get(convo)["latestStep"]["id"] == first["id"]
    steps.delete(first)
    assert "latestStep" not in objects.get(convo)
    assert steps.get(first["id"]) is None


def test_update_of_a_deleted_step_conflicts(convo):
    gone = steps.add(new_step(convo, "2026-11-22T10:00:00.000Z").record())
    steps.delete(gone)
    with pytest.raises(Conflict):
        steps.update(gone, {"content": {"text": "late"}})
