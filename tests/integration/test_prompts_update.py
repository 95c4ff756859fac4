"""Update Prompt: PATCH /prompts/{promptId} {text}."""

from uuid import uuid4

from kallo.authz.access import Access
from kallo.models.prompts import PromptCreate
from kallo.services import prompts
from kallo.store.keys import Ref
from tests.support.api import invoke
from tests.support.world import grant, make_object, make_user, ref_of


def test_update_prompt_text(aws, aws_calls):
    alice = make_user()
    prompt = prompts.create_prompt(Access(alice), PromptCreate(text="Be brief."))
    aws_calls.reset()
    result = invoke(
        "prompts.update_prompt", alice, path={"promptId": prompt["id"]}, body={"text": "Be thorough."}
    )
    assert result.status == 200, result.body
    assert result.json["text"] == "Be thorough." and result.json["createdAt"] == prompt["createdAt"]
    # The check (Query + BatchGetItem), one UpdateItem.
    assert aws_calls.total == 3 and aws_calls["dynamodb:UpdateItem"] == 1


def test_who_may_update_a_prompt(aws):
    owner, admin, member, viewer, outsider = (make_user() for _ in range(5))
    team = make_object("team", ref_of(owner))
    grant(team, admin, "admin")
    grant(team, member, "member")
    prompt_id = prompts.create_prompt(Access(owner), PromptCreate(text="x"), team_id=team.id)["id"]
    grant(Ref("prompt", prompt_id), viewer, "viewer")
    path, body = {"promptId": prompt_id}, {"text": "y"}
    assert invoke("prompts.update_prompt", admin, path=path, body=body).status == 200
    for user in (member, viewer):
        result = invoke("prompts.update_prompt", user, path=path, body=body)
        assert result.status == 403 and result.json["code"] == "permission_denied"
    assert invoke("prompts.update_prompt", outsider, path=path, body=body).status == 404
    assert invoke("prompts.update_prompt", owner, path={"promptId": str(uuid4())}, body=body).status == 404


def test_update_prompt_bad_input(aws):
    alice = make_user()
    path = {"promptId": prompts.create_prompt(Access(alice), PromptCreate(text="x"))["id"]}
    for raw in (
        "{bad",
        "{}",
        '{"text": null}',
        '{"text": ""}',
        '{"text": ["a"]}',
        '{"text": "a", "id": "b"}',
        '{"text": "' + "x" * 40000 + '"}',
    ):
        result = invoke("prompts.update_prompt", alice, path=path, raw_body=raw)
        assert 400 <= result.status < 500, (raw[:60], result.status)
        assert {"code", "message"} <= set(result.json), result.body
    assert invoke("prompts.update_prompt", alice, path={"promptId": "p"}, body={"text": "x"}).status == 422
