"""I11 (hostile input), attacked over every REST operation: deep nesting, oversized bodies, numbers and
dates out of range, control and bidirectional characters in names, odd ids, media types and query
strings. Every answer is a 4xx `{code, message}`, never a 5xx."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from kallo.json_input import MAX_DEPTH, MAX_JSON_BYTES
from local import template
from tests.support.api import Result, invoke
from tests.support.world import make_data_source, make_object, make_service_account, make_user, ref_of

ROOT = Path(__file__).resolve().parents[2]
ROUTES = [r for r in template.rest_routes(template.load()) if r.authorized]
OPENAPI = json.loads((ROOT / "docs" / "openapi.json").read_text())
UNKNOWN = "00000000-0000-4000-8000-000000000000"
JSON_BODY = {"content-type": "application/json"}


def _handler(route: template.Route) -> str:
    return route.handler.rsplit(".", 1)[0]


def _takes_json(route: template.Route) -> bool:
    operation = OPENAPI["paths"][route.path][route.method.lower()]
    return "application/json" in (operation.get("requestBody") or {}).get("content", {})


JSON_ROUTES = [r for r in ROUTES if _takes_json(r)]


def refused(result: Result, status: int | tuple[int, ...], code: str | None = None) -> bool:
    """A 4xx in the API's error shape, with that status (and code)."""
    statuses = status if isinstance(status, tuple) else (status,)
    body = result.json if result.body.startswith("{") else None
    assert result.status in statuses, (result.status, result.body[:300])
    assert isinstance(body, dict) and {"code", "message"} <= set(body), result.body[:300]
    return code is None or body["code"] == code


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_the_json_routes_are_found():
    assert len(JSON_ROUTES) >= 15 and any(r.path == "/teams" and r.method == "POST" for r in JSON_ROUTES)


def test_deep_nesting_is_a_400_on_every_json_route(aws):
    """A hundred thousand `[` was a RecursionError, a 502; a balanced 65 levels inside an object too."""
    caller = make_user()
    for route in JSON_ROUTES:
        path = {p: UNKNOWN for p in re.findall(r"\{(\w+)\}", route.path)}
        for body in ("[" * 100_000, '{"name": ' + nested(MAX_DEPTH) + "}", '{"a":' * 70_000):
            result = invoke(_handler(route), caller, path=path, raw_body=body, headers=JSON_BODY)
            assert refused(result, 400, "malformed_json"), (route.method, route.path, body[:20])


def test_nesting_within_the_bound_is_parsed_and_validated(aws):
    within = invoke("teams.create_team", make_user(), raw_body='{"name": ' + nested(MAX_DEPTH - 1) + "}")
    assert refused(within, 422, "validation_error")


def test_brackets_inside_strings_are_text_not_nesting(aws):
    alice = make_user()
    name = "[" * 100 + "{ ]"
    result = invoke("prompts.create_prompt", alice, query={}, raw_body=json.dumps({"text": name}))
    assert result.status == 201 and result.json["text"] == name


def test_an_oversized_json_body_is_a_413(aws):
    big = json.dumps({"name": "x" * MAX_JSON_BYTES})
    assert refused(invoke("teams.create_team", make_user(), raw_body=big), 413, "payload_too_large")


def test_numbers_json_cannot_store_are_a_400(aws):
    """NaN, Infinity and 1e400 (infinity to Python) can be neither validated nor stored in DynamoDB."""
    alice = make_user()
    topic = {"name": "t", "description": "", "config": {"defaults": {"temperature": "X"}}}
    for number in ("NaN", "Infinity", "-Infinity", "1e400"):
        body = json.dumps(topic).replace('"X"', number)
        assert refused(invoke("topics.create_topic", alice, raw_body=body), 400, "malformed_json"), number


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_dates_at_the_edge_of_the_calendar_are_a_422(aws, moment):
    """They have no UTC time: an OverflowError, a 502, before the shared DateTime type refused them."""
    alice = make_user()
    convo = make_object("convo", ref_of(alice))
    steps = invoke("convos.query_convo_steps", alice, path={"convoId": convo.id}, query={"after": moment})
    assert refused(steps, 422, "validation_error") and "after" in steps.json["message"]
    service_account, _ = make_service_account()
    user = make_user(admin=service_account)
    token = {
        "userId": user.user_id,
        "scopeObjects": [{"type": "user", "id": user.user_id}],
        "expiresAt": moment,
    }
    minted = invoke("auth.create_access_token", service_account, body=token)
    assert refused(minted, 422, "validation_error") and "expiresAt" in minted.json["message"]


def test_dates_at_the_edge_in_utc_are_fine(aws):
    alice = make_user()
    convo = make_object("convo", ref_of(alice))
    for moment in ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z"):
        result = invoke(
            "convos.query_convo_steps", alice, path={"convoId": convo.id}, query={"after": moment}
        )
        assert result.status == 200 and result.json == [], moment


@pytest.fixture
def owned(aws) -> dict[str, Any]:
    alice = make_user()
    return {
        "alice": alice,
        "team": make_object("team", ref_of(alice)),
        "topic": make_object("topic", ref_of(alice), description="", config={"defaults": {}}),
        "prompt": make_object("prompt", ref_of(alice), text="p"),
        "convo": make_object("convo", ref_of(alice)),
        "data_source": make_data_source(ref_of(alice), name="a.txt", mimeType="text/plain")[0],
    }


def _name_writes(owned: dict[str, Any], text: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(handler, path, body) of every operation that takes a name (one line), with `text` in it."""
    return [
        ("teams.create_team", {}, {"name": text}),
        ("teams.update_team", {"teamId": owned["team"].id}, {"name": text}),
        ("topics.create_topic", {}, {"name": text, "description": ""}),
        ("topics.update_topic", {"topicId": owned["topic"].id}, {"name": text}),
        ("convos.create_convo", {}, {"name": text}),
        ("convos.patch_convo", {"convoId": owned["convo"].id}, {"name": text}),
        ("users.update_user", {"userId": owned["alice"].user_id}, {"displayName": text}),
        ("data_sources.update_data_source", {"dataSourceId": owned["data_source"].id}, {"name": text}),
        ("data_sources.upload_file", {}, {"name": text, "mimeType": "text/plain", "size": 10}),
    ]


def _text_writes(owned: dict[str, Any], text: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(handler, path, body) of every REST operation that takes a multi-line text, with `text` in it
    (a step's text comes over the WebSocket: tests/unit/test_websocket_glue.py)."""
    return [
        ("topics.create_topic", {}, {"name": "t", "description": text}),
        ("topics.update_topic", {"topicId": owned["topic"].id}, {"description": text}),
        ("prompts.create_prompt", {}, {"text": text}),
        ("prompts.update_prompt", {"promptId": owned["prompt"].id}, {"text": text}),
    ]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("a\x00b", "U+0000"),  # NUL
        ("invoice\u202efdp.exe", "U+202E"),  # right-to-left override: shows as invoiceexe.pdf
        ("x\u202ay", "U+202A"),  # left-to-right embedding
        ("x\u2066y", "U+2066"),  # left-to-right isolate
        ("x\u2069y", "U+2069"),  # pop directional isolate
        ("x\x1by", "U+001B"),  # escape (terminal control sequences)
        ("x\x7fy", "U+007F"),  # delete
        ("x\x85y", "U+0085"),  # a C1 control (next line)
    ],
)
def test_control_and_bidirectional_characters_are_refused_in_every_name_and_text(owned, text, found):
    for handler, path, body in _name_writes(owned, text) + _text_writes(owned, text):
        result = invoke(handler, owned["alice"], path=path, body=body, headers=JSON_BODY)
        assert refused(result, 422, "validation_error"), (handler, body)
        assert found in result.json["message"], result.json["message"]


# Ordinary right-to-left text: a right-to-left mark keeps "(1)" by its Hebrew word; an Arabic letter
# mark sets off a number; a left-to-right mark keeps a Latin name in order.
MARKED = {
    "U+200F": "\u05e9\u05dc\u05d5\u05dd (1)\u200f\n\u05e2\u05d5\u05dc\u05dd",
    "U+061C": "\u0627\u0644\u0639\u062f\u062f \u061c-5\u061c",
    "U+200E": "\u05e8\u05d0\u05d5 Kallo\u200e.",
}


@pytest.mark.parametrize("found", sorted(MARKED))
def test_bidirectional_marks_are_kept_in_texts_and_refused_in_names(owned, found):
    text = MARKED[found]
    for handler, path, body in _text_writes(owned, text):
        result = invoke(handler, owned["alice"], path=path, query={}, body=body, headers=JSON_BODY)
        assert result.status in (200, 201), (handler, result.body)
        kept = result.json.get("description") or result.json.get("text")
        assert kept == text, handler
    for handler, path, body in _name_writes(owned, text.replace("\n", " ")):
        result = invoke(handler, owned["alice"], path=path, query={}, body=body, headers=JSON_BODY)
        assert refused(result, 422, "validation_error"), (handler, body)
        assert found in result.json["message"], result.json["message"]


def test_a_name_is_one_line_and_a_text_keeps_its_lines(owned):
    alice = owned["alice"]
    for line_break in ("a\nb", "a\rb", "a\u2028b"):
        assert refused(invoke("teams.create_team", alice, body={"name": line_break}), 422)
    text = "Answer in French.\n\tBe brief.\r\n"
    prompt = invoke("prompts.create_prompt", alice, query={}, body={"text": text})
    assert prompt.status == 201 and prompt.json["text"] == text
    topic = invoke(
        "topics.create_topic", alice, query={}, body={"name": "Trip", "description": "Line 1\nLine 2"}
    )
    assert topic.status == 201 and topic.json["description"] == "Line 1\nLine 2"
    assert invoke("teams.create_team", alice, body={"name": "Équipe 東京 ☕"}).status == 201


def test_a_lone_surrogate_is_refused(owned):
    raw = '{"name": "x\\ud800y"}'
    assert refused(invoke("teams.create_team", owned["alice"], raw_body=raw), 422, "validation_error")


def test_a_body_of_another_media_type_is_a_415(aws):
    alice = make_user()
    for content_type in (
        "multipart/form-data",
        "multipart/form-data; boundary=x",
        "text/plain",
        "application/x-www-form-urlencoded",
    ):
        result = invoke("teams.create_team", alice, raw_body="name=x", headers={"content-type": content_type})
        assert refused(result, 415, "unsupported_media_type"), content_type
    made = invoke(
        "teams.create_team",
        alice,
        raw_body='{"name": "x"}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert made.status == 201


def _hostile_requests(route: template.Route) -> list[dict[str, Any]]:
    names = re.findall(r"\{(\w+)\}", route.path)
    path = {p: UNKNOWN for p in names}
    requests: list[dict[str, Any]] = [
        {"path": {p: odd for p in names}} for odd in ("\x00", "\u202e", "ü", "..", "x" * 5000, "123") if names
    ]
    for query in (
        {"limit": str(10**30)},
        {"limit": "-1"},
        {"limit": "1e5"},
        {"nextToken": "x" * 100_000},
        {"after": "0001-01-01T00:00:00+14:00"},
        {"userId": "\x00", "teamId": "ü", "objectId": "1", "objectType": "x" * 10_000},
        {"x" * 10_000: "y"},
    ):
        requests.append({"path": path, "query": query})
    if route.method in ("POST", "PUT", "PATCH"):
        for raw in (
            "[]",
            '""',
            "null",
            "{}",
            "{",
            "[" * 100_000,
            '{"name": "\\ud800"}',
            "x" * (MAX_JSON_BYTES + 1),
        ):
            requests.append({"path": path, "raw_body": raw})
    return requests


def test_hostile_requests_never_get_a_5xx(aws):
    caller = make_user()
    for route in ROUTES:
        for request in _hostile_requests(route):
            result = invoke(_handler(route), caller, **request)
            where = (route.method, route.path, str(request)[:200])
            # An ignored query parameter may well succeed; what fails is a 4xx in the API's shape.
            assert result.status < 500, (*where, result.status, result.body[:300])
            assert result.status < 400 or refused(result, result.status), where
