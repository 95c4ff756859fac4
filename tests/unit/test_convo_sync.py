"""convoSync's service (kallo.services.convo_sync) against moto: what the state of a convo is, whose
step a `since` may name, and who may ask."""

from __future__ import annotations

import pytest

from kallo.authz.access import Access
from kallo.errors import NotFound
from kallo.models.convos import ConvoCreate
from kallo.models.ws import SyncSince
from kallo.services import convo_sync, convos
from kallo.store import steps
from kallo.store.keys import Ref
from tests.support.world import grant, make_user
from tests.support.ws import llm_step


def answer(convo_id: str, status: str, text: str, seq: int) -> dict:
    return steps.update(llm_step(convo_id, "q", status=status), {"content": {"text": text}, "seq": seq})


@pytest.fixture
def convo(aws):
    owner = make_user()
    return owner, convos.create_convo(Access(owner), ConvoCreate(name="c"))["id"]


def test_two_running_answers_come_oldest_first_each_with_its_status(convo):
    owner, convo_id = convo
    first, second = answer(convo_id, "running", "one", 1), answer(convo_id, "running", "two", 5)
    answer(convo_id, "completed", "done", 3)
    messages = convo_sync.sync(Access(owner), convo_id)
    assert messages == [
        ("convoStatus", {"convoId": convo_id, "status": "running", "stepId": first["id"]}),
        (
            "convoStepUpdate",
            {
                "id": first["id"],
                "convoId": convo_id,
                "content": {"text": "one"},
                "seq": 1,
                "status": "running",
            },
        ),
        ("convoStatus", {"convoId": convo_id, "status": "running", "stepId": second["id"]}),
        (
            "convoStepUpdate",
            {
                "id": second["id"],
                "convoId": convo_id,
                "content": {"text": "two"},
                "seq": 5,
                "status": "running",
            },
        ),
    ]


def test_a_running_answer_without_text_yet_is_seq_zero(convo):
    owner, convo_id = convo
    step = llm_step(convo_id, "q", status="running")
    steps.update(step, {"content": {"text": ""}, "seq": 0})
    (_, (_, snapshot)) = convo_sync.sync(Access(owner), convo_id)
    assert snapshot["seq"] == 0 and snapshot["content"] == {"text": ""}


def test_the_final_update_comes_only_to_a_client_that_lacks_it(convo):
    owner, convo_id = convo
    ended = answer(convo_id, "stopped", "half a story", 7)
    for seq, expected in ((0, True), (6, True), (7, False), (9, False)):
        messages = convo_sync.sync(Access(owner), convo_id, SyncSince(stepId=ended["id"], seq=seq))
        finals = [p for t, p in messages if t == "convoStepUpdate"]
        assert finals == (
            [{"id": ended["id"], "content": {"text": "half a story"}, "status": "stopped", "seq": 7}]
            if expected
            else []
        )


def test_a_step_of_another_convo_is_ignored_like_a_missing_one(convo):
    owner, convo_id = convo
    stranger = make_user()
    elsewhere = convos.create_convo(Access(stranger), ConvoCreate(name="theirs"))["id"]
    theirs = answer(elsewhere, "completed", "their secret", 4)
    mine = convo_sync.sync(Access(owner), convo_id, SyncSince(stepId=theirs["id"], seq=0))
    assert mine == convo_sync.sync(
        Access(owner), convo_id, SyncSince(stepId="00000000-0000-4000-8000-000000000000", seq=0)
    )
    assert mine == [("convoStatus", {"convoId": convo_id, "status": "idle"})]


def test_only_a_caller_who_may_view_the_convo_may_ask(convo):
    _, convo_id = convo
    answer(convo_id, "running", "secret so far", 2)
    viewer, outsider = make_user(), make_user()
    grant(Ref("convo", convo_id), viewer, "viewer")
    assert convo_sync.sync(Access(viewer), convo_id)[0][1]["status"] == "running"
    with pytest.raises(NotFound):
        convo_sync.sync(Access(outsider), convo_id)
