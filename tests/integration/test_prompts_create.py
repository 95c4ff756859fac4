"""Create Prompt: POST /prompts[?teamId= | userId=]."""

from uuid import uuid4

from kallo.store import grants
from kallo.store.keys import Ref
from tests.support.api import invoke
from tests.support.world import grant, make_object, make_service_account, make_user, ref_of

TEXT = "The only subject matter permitted to be discussed is health conditions"


def test_create_prompt_owned_by_the_caller(aws, aws_calls):
    alice = make_user()
    aws_calls.reset()
    body = {"text": TEXT, "createdBy": str(uuid4()), "createdAt": "2019-08-24T14:15:22Z"}
    result = invoke("prompts.create_prompt", alice, query={}, body=body)
    assert result.status == 201, result.body
    prompt = result.json
    assert prompt["text"] == TEXT and prompt["createdBy"] == alice.user_id and "teamId" not in prompt
    assert set(prompt) == {"id", "text", "createdBy", "createdAt", "updatedAt"}
    assert aws_calls.total == 1 and aws_calls["dynamodb:TransactWriteItems"] == 1
    assert grants.get(Ref("prompt", prompt["id"]), ref_of(alice))["role"] == "owner"


def test_create_prompt_for_a_team_or_a_user(aws):
    owner, member, outsider = make_user(), make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, member, "member")
    result = invoke("prompts.create_prompt", owner, query={"teamId": team.id}, body={"text": TEXT})
    assert result.status == 201 and result.json["teamId"] == team.id
    assert grants.get(Ref("prompt", result.json["id"]), team)["role"] == "owner"
    assert (
        invoke("prompts.create_prompt", member, query={"teamId": team.id}, body={"text": TEXT}).status == 403
    )
    assert (
        invoke("prompts.create_prompt", outsider, query={"teamId": team.id}, body={"text": TEXT}).status
        == 404
    )

    service, _ = make_service_account()
    pat = make_user(admin=service)
    for_pat = invoke("prompts.create_prompt", service, query={"userId": pat.user_id}, body={"text": TEXT})
    assert for_pat.status == 201 and for_pat.json["createdBy"] == pat.user_id
    probe = invoke("prompts.create_prompt", service, query={"userId": outsider.user_id}, body={"text": TEXT})
    assert probe.status == 404


def test_create_prompt_bad_input(aws):
    alice = make_user()
    team = make_object("team", ref_of(alice))
    for raw in (
        "{bad",
        "[]",
        "{}",
        '{"text": ""}',
        '{"text": "   "}',
        '{"text": 42}',
        '{"text": null}',
        '{"text": "' + "x" * 32769 + '"}',
        '{"text": "hi", "id": "x"}',
        '{"text": "hi", "topicId": "' + str(uuid4()) + '"}',
    ):
        result = invoke("prompts.create_prompt", alice, query={}, raw_body=raw)
        assert 400 <= result.status < 500, (raw[:60], result.status)
        assert {"code", "message"} <= set(result.json), result.body
    # The largest prompt fits.
    assert invoke("prompts.create_prompt", alice, query={}, body={"text": "y" * 32768}).status == 201
    both = invoke(
        "prompts.create_prompt", alice, query={"teamId": team.id, "userId": alice.user_id}, body={"text": "x"}
    )
    assert both.status == 400 and both.json["code"] == "ambiguous_owner"
    assert invoke("prompts.create_prompt", alice, query={"teamId": "t"}, body={"text": "x"}).status == 422
