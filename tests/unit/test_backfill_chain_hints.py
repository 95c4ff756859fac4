"""The chain-hint migration (`python -m tools.backfill_chain_hints`) against a moto account, and what it
buys: Query Convo Steps on a convo made before hints costs 3 calls from a cold process afterwards."""

from __future__ import annotations

import json
import os

import pytest

from kallo.authz import access
from kallo.authz.access import Access
from kallo.models.convos import ConvoCreate
from kallo.services import convos
from kallo.store import keys
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.api import invoke
from tests.support.world import add_user_step, grant, make_object, make_user, ref_of
from tools import backfill_chain_hints


def hint(convo: Ref, topic: Ref) -> list[str] | None:
    return table().get(keys.grant_key(convo, topic)).get("chainHint")


def steps_status(principal, convo: Ref) -> int:
    return invoke("convos.query_convo_steps", principal, path={"convoId": convo.id}).status


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = backfill_chain_hints.main(["--table", os.environ["KALLO_TABLE_NAME"], *argv])
    out = capsys.readouterr().out
    return code, json.loads(out) if out else {}


def test_old_and_stale_hints_are_written_and_a_cold_check_costs_three(aws, aws_calls, capsys):
    owner, member = make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, member, "member")
    topic = make_object("topic", team)
    old = make_object("convo", topic, topicId=topic.id)  # an owner grant written before hints
    add_user_step(old, owner, "hello")
    hinted = Ref("convo", convos.create_convo(Access(owner), ConvoCreate(), topic_id=topic.id)["id"])
    users = make_object("topic", ref_of(owner))  # a user's topic: no structural grant to hint
    mine = make_object("convo", users, topicId=users.id)
    assert hint(old, topic) is None and hint(hinted, topic) == [f"team#{team.id}"]

    assert run(capsys, "--dry-run") == (0, {"convos": 3, "written": 1, "current": 2, "gone": 0})
    assert hint(old, topic) is None  # a dry run writes nothing
    assert run(capsys) == (0, {"convos": 3, "written": 1, "current": 2, "gone": 0})
    assert hint(old, topic) == [f"team#{team.id}"] and hint(mine, users) is None
    assert run(capsys) == (0, {"convos": 3, "written": 0, "current": 3, "gone": 0})

    access.forget_edges()  # a process that has checked nothing
    aws_calls.reset()
    assert steps_status(member, old) == 200
    # The convo's structural grants (the hint), the chain's grants in one BatchGetItem, the steps.
    assert aws_calls.calls == {"dynamodb:Query": 2, "dynamodb:BatchGetItem": 1}


def test_a_moved_topic_gets_its_new_team_and_the_old_team_stays_out(aws, capsys):
    """ATTACK (I5): the migration writes the topic's edges as they are, so the hint of a topic moved
    to another team names the new team; the old team's member is refused before and after, from a
    cold process, and the new team's admitted."""
    owner, old_member, new_member = make_user(), make_user(), make_user()
    old_team, new_team = make_object("team", ref_of(owner)), make_object("team", ref_of(owner))
    grant(old_team, old_member, "member")
    grant(new_team, new_member, "member")
    topic = make_object("topic", old_team)
    convo = Ref("convo", convos.create_convo(Access(owner), ConvoCreate(), topic_id=topic.id)["id"])
    table().delete(keys.grant_key(topic, old_team))
    grant(topic, new_team, "owner")
    access.forget_edges()
    assert steps_status(old_member, convo) == 404
    assert run(capsys)[1]["written"] == 1
    assert hint(convo, topic) == [f"team#{new_team.id}"]
    access.forget_edges()
    assert steps_status(old_member, convo) == 404
    assert steps_status(new_member, convo) == 200


def test_a_grant_that_is_no_longer_the_owner_grant_is_left_alone(aws):
    """The hint is written only while the grant is still the convo's owner grant (a move racing the
    migration leaves nothing behind)."""
    from kallo.store import grants

    owner = make_user()
    team = make_object("team", ref_of(owner))
    topic = make_object("topic", team)
    convo = make_object("convo", topic, topicId=topic.id)
    table().delete(keys.grant_key(convo, topic))
    assert grants.set_chain_hint(convo, topic, [f"team#{team.id}"]) is False
    assert table().get(keys.grant_key(convo, topic)) is None
