"""I10 (cost), attacked from the outside: request rates per principal (the REST authorizer's verdict
turned into 429 by the function; WebSocket messages), token budgets per user and per team on the
messages that ask for answers, and the provider's usage charged once per answer."""

from __future__ import annotations

import copy
import importlib
import json
from typing import Any
from uuid import uuid4

import pytest
from workers import llm_step as worker

from kallo import quotas
from kallo.authz.access import Access
from kallo.clock import now
from kallo.llm import Usage
from kallo.models.convos import ConvoCreate
from kallo.services import convos
from kallo.settings import get_settings
from kallo.store import quotas as counters
from kallo.store import steps
from kallo.store.keys import Ref
from kallo.store.quotas import Counter
from local.runtime import LambdaContext
from tests.support import ws
from tests.support.api import EVENTS, Result, sample_event
from tests.support.scripted_llm import Script, ScriptedLLM, installed
from tests.support.world import grant, make_object, make_service_account, make_user, ref_of

sockets = ws.sockets
authorizer = importlib.import_module("auth.authorizer")
STEP_JOB = json.loads((EVENTS / "workers" / "llm_step.json").read_text())["Records"][0]


@pytest.fixture
def limits(monkeypatch) -> Any:
    """Set quota settings for the test (the environment is restored afterwards)."""

    def set_limits(**values: int) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"KALLO_{name.upper()}", str(value))
        get_settings.cache_clear()

    return set_limits


def through_gateway(handler: str, api_key: str) -> Result:
    """A request as API Gateway runs it: the authorizer on the request's headers, then the function with
    the authorizer's context (whose values API Gateway turns into strings)."""
    headers = {"x-api-key": api_key}
    auth_event = sample_event("auth.authorizer")
    auth_event["headers"], auth_event["multiValueHeaders"] = headers, {k: [v] for k, v in headers.items()}
    answer = authorizer.lambda_handler(
        auth_event, LambdaContext.starting("AuthorizerFunction", memory=1024, seconds=10)
    )
    event = sample_event(handler)
    event["queryStringParameters"] = event["multiValueQueryStringParameters"] = None  # for the caller
    event["requestContext"]["authorizer"] = {
        "principalId": answer["principalId"],
        **{k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in answer["context"].items()},
    }
    module = importlib.import_module(handler)
    response = module.lambda_handler(event, LambdaContext.starting("Function", memory=512, seconds=10))
    headers_out = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    headers_out.update({k.lower(): v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()})
    return Result(response["statusCode"], headers_out, response.get("body") or "")


# -- request rates ------------------------------------------------------------------------------------


def test_the_eleventh_request_in_a_minute_is_429_for_that_principal_only(aws, limits):
    limits(requests_per_minute=10)
    _, key_a = make_service_account("tenant-a")
    _, key_b = make_service_account("tenant-b")
    for _ in range(10):
        assert through_gateway("teams.query_teams", key_a).status == 200
    throttled = through_gateway("teams.query_teams", key_a)
    assert throttled.status == 429 and throttled.json["code"] == "throttled"
    assert 1 <= int(throttled.headers["retry-after"]) <= 60
    # Tenant A using up its share leaves tenant B's untouched: the limit is per principal.
    assert through_gateway("teams.query_teams", key_b).status == 200


def test_a_throttled_request_does_no_work(aws, limits, aws_calls):
    limits(requests_per_minute=1)
    _, key = make_service_account()
    assert through_gateway("teams.create_team", key).status == 201
    aws_calls.reset()
    refused = through_gateway("teams.create_team", key)
    assert refused.status == 429
    # The authorizer's count (the key is cached): the function wrote nothing.
    assert dict(aws_calls.calls) == {"dynamodb:UpdateItem": 1}


def test_the_window_ends_and_the_principal_may_go_on(aws, limits, monkeypatch):
    limits(requests_per_minute=1)
    _, key = make_service_account()
    moment = now()
    monkeypatch.setattr(quotas, "now", lambda: moment)
    assert through_gateway("teams.query_teams", key).status == 200
    assert through_gateway("teams.query_teams", key).status == 429
    later = moment.replace(second=0, microsecond=0).timestamp() + 60
    monkeypatch.setattr(quotas, "now", lambda: type(moment).fromtimestamp(later, moment.tzinfo))
    assert through_gateway("teams.query_teams", key).status == 200


def test_websocket_messages_count_against_their_users_rate(sockets, limits):
    limits(requests_per_minute=10)
    room = ws.room()
    for n in range(10):
        ws.send(room.owner_connection, "convoNewStep", {"content": {"text": f"step {n}"}})
    assert sockets.errors(room.owner_connection) == []
    ws.send(room.owner_connection, "convoNewStep", {"content": {"text": "one too many"}}, "r11")
    [error] = sockets.errors(room.owner_connection)
    assert error["code"] == "throttled" and error["requestId"] == "r11"
    assert 1 <= error["retryAfter"] <= 60
    assert len(steps.of_convo(room.convo_id).items) == 10
    # The participant is another principal, with its own share.
    ws.send(room.participant_connection, "convoNewStep", {"content": {"text": "mine"}})
    assert sockets.errors(room.participant_connection) == []


# -- token budgets ------------------------------------------------------------------------------------


def used(subject: Ref) -> int:
    start = int(now().timestamp()) // quotas.DAY * quotas.DAY
    counter = Counter(subject, quotas.TOKENS, start)
    return counters.used([counter])[counter]


def ask(connection: str, request_id: str = "ask") -> None:
    payload = {"content": {"text": "What now?"}, "config": {"reply": True}}
    assert ws.send(connection, "convoNewStep", payload, request_id) == {"statusCode": 200}


def test_a_user_over_its_token_budget_cannot_ask_for_answers(sockets, limits):
    limits(user_tokens_per_day=1000)
    room = ws.room()
    quotas.charge_tokens(room.owner.user_id or "", None, 1000)
    ask(room.owner_connection)
    [error] = sockets.errors(room.owner_connection)
    assert error["code"] == "quota_exceeded" and 0 < error["retryAfter"] <= 86400
    assert ws.reply_jobs() == [] and steps.of_convo(room.convo_id).items == []
    # A step that asks for no answer costs no tokens, and another user's budget is its own.
    ws.send(room.owner_connection, "convoNewStep", {"content": {"text": "a note"}})
    ask(room.participant_connection)
    assert len(sockets.errors(room.owner_connection)) == 1
    assert sockets.errors(room.participant_connection) == [] and len(ws.reply_jobs()) == 1


def test_a_regen_is_refused_over_the_budget(sockets, limits):
    limits(user_tokens_per_day=10)
    room = ws.room()
    question = ws.llm_step(room.convo_id, str(uuid4()))
    quotas.charge_tokens(room.owner.user_id or "", None, 10)
    ws.send(room.owner_connection, "convoStepRegen", {"id": question["id"]})
    [error] = sockets.errors(room.owner_connection)
    assert error["code"] == "quota_exceeded"
    assert steps.get(question["id"]) is not None and ws.reply_jobs() == []


def team_room() -> tuple[Any, Ref, str, str]:
    """A team whose topic owns a convo, with two members connected to it."""
    owner, member = make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, member, "member")
    topic = make_object("topic", team)
    convo = make_object("convo", topic)
    return member, team, ws.connect(owner, convo.id), ws.connect(member, convo.id)


def test_the_team_budget_applies_to_every_member(sockets, limits):
    limits(team_tokens_per_day=500)
    member, team, owner_connection, member_connection = team_room()
    quotas.charge_tokens(str(uuid4()), team.id, 500)  # another member used the team's day
    for connection in (owner_connection, member_connection):
        ask(connection)
        [error] = sockets.errors(connection)
        assert error["code"] == "quota_exceeded" and "team" in error["message"]
    assert ws.reply_jobs() == []
    # The member's own convos are not the team's: its own budget alone applies there.
    own = convos.create_convo(Access(member), ConvoCreate())["id"]
    ask(ws.connect(member, own))
    assert len(ws.reply_jobs()) == 1


def run_job(job: dict[str, Any]) -> None:
    body = {k: v for k, v in job.items() if k not in ("messageGroupId", "deduplicationId")}
    message = copy.deepcopy(STEP_JOB)
    message.update(messageId=str(uuid4()), body=json.dumps(body))
    message["attributes"]["MessageGroupId"] = job["convoId"]
    context = LambdaContext.starting("StepWorkerFunction", memory=1024, seconds=300)
    assert worker.lambda_handler({"Records": [message]}, context) == {"batchItemFailures": []}


def test_the_providers_usage_is_stored_sent_and_charged_once(sockets):
    member, team, _, member_connection = team_room()
    usage = Usage(input_tokens=120, output_tokens=30)
    with installed(ScriptedLLM(Script(["Fine."], usage=usage), Script(["A name"]))) as model:
        payload = {"content": {"text": "Hi"}, "config": {"reply": True, "model": model}}
        ws.send(member_connection, "convoNewStep", payload)
        [job] = ws.reply_jobs()
        assert job["teamId"] == team.id and job["requestedBy"] == member.user_id
        run_job(job)
        expected = {"inputTokens": 120, "outputTokens": 30, "model": model}
        [final] = [p for p in sockets.payloads(member_connection, "convoStepUpdate") if "delta" not in p]
        assert final["status"] == "completed" and final["usage"] == expected
        assert steps.get(job["llmStepId"])["usage"] == expected
        assert used(Ref("user", member.user_id or "")) == used(team) == 150
        run_job(job)  # delivered again: the answer exists, nothing more is charged
    assert used(Ref("user", member.user_id or "")) == used(team) == 150
