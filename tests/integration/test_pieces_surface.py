"""The Pieces conversations surface (`compat.pieces`, one ASGI function on Mangum) invoked with API Gateway
events of its greedy route: create, create from an asset, listings, delete; AWS-call budgets; another
tenant's asset or conversation is 404 (I4); bad input is a 4xx with a code, never a 5xx (I11)."""

from __future__ import annotations

from typing import Any

import pytest

from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.clock import now_iso
from kallo.models.convos import ConvoCreate
from kallo.services import convos
from kallo.store import grants, keys, objects
from kallo.store.keys import Ref
from kallo.store.table import table
from kallo.surfaces import pieces
from tests.support import ws
from tests.support.api import call_surface
from tests.support.world import grant, make_data_source, make_object, make_service_account, make_user, ref_of

RESOURCE = "/pieces/{proxy+}"
SUMMARY = "The guide covers Lisbon's trams. Line 28 crosses the old town."
sockets = ws.sockets


def call(method: str, path: str, key: str | None, **kwargs: Any):
    headers = {"x-api-key": key} if key else {}
    return call_surface("compat.pieces", method, path, resource=RESOURCE, headers=headers, **kwargs)


@pytest.fixture
def tenants(aws, sockets) -> dict[str, Any]:
    svc_a, key_a = make_service_account("a")
    svc_b, key_b = make_service_account("b")
    return {"a": svc_a, "key_a": key_a, "b": svc_b, "key_b": key_b}


def ready_data_source(owner: Principal, *, summary: bool = True, name: str = "Tram guide.md") -> Ref:
    ref, _ = make_data_source(ref_of(owner), status="ready", name=name, mimeType="text/markdown")
    if summary:
        annotation = {"type": "citation", "dataSourceId": ref.id, "text": "Line 28 crosses the old town."}
        table().put(
            {
                **keys.summary_key(ref.id),
                "status": "ready",
                "content": {"text": SUMMARY},
                "annotations": [annotation],
                "requestedAt": now_iso(),
                "updatedAt": now_iso(),
            }
        )
    return ref


SEED = {
    "type": "COPILOT",
    "name": "Planning",
    "messages": [
        {"role": "USER", "fragment": {"string": {"raw": "Which tram?"}}},
        {"role": "ASSISTANT", "fragment": {"string": {"raw": "Line 28."}}},
    ],
}


def test_create_makes_an_ordinary_convo_with_its_messages(tenants, aws_calls):
    t = tenants
    aws_calls.reset()
    made = call("POST", "/pieces/conversations/create", t["key_a"], body=SEED)
    assert made.status == 200, made.body
    conversation = made.json
    assert conversation["name"] == "Planning" and conversation["type"] == "COPILOT"
    texts = [
        (m["reference"]["role"], m["reference"]["fragment"]["string"]["raw"])
        for m in conversation["messages"]["iterable"]
    ]
    assert texts == [("USER", "Which tram?"), ("ASSISTANT", "Line 28.")]
    # The key (GetItem) and its rate (UpdateItem); the convo (TransactWriteItems) and its creator's
    # streams (Query); the messages: the check (Query + BatchGetItem), one transaction with their
    # words, a broadcast Query each.
    assert dict(aws_calls.calls) == {
        "dynamodb:GetItem": 1,
        "dynamodb:UpdateItem": 1,
        "dynamodb:TransactWriteItems": 2,
        "dynamodb:Query": 4,
        "dynamodb:BatchGetItem": 1,
    }
    # One data model: the same convo through Kallo's own services.
    convo = convos.get_convo(Access(t["a"]), conversation["id"])
    assert convo["name"] == "Planning" and convo["createdBy"] == t["a"].user_id
    assert convo["latestStep"]["content"]["text"] == "Line 28." and convo["latestStep"]["authorType"] == "llm"


def test_create_in_a_topic_named_by_the_application_descriptor(tenants):
    t = tenants
    topic = make_object("topic", ref_of(t["a"]))
    seed = {"type": "COPILOT", "application": {"descriptor": f"kallo-topic:{topic.id}"}}
    made = call("POST", "/pieces/conversations/create", t["key_a"], body=seed)
    assert made.status == 200, made.body
    assert objects.get(Ref("convo", made.json["id"]))["topicId"] == topic.id
    # Another tenant's topic is a topic that does not exist.
    hidden = call("POST", "/pieces/conversations/create", t["key_b"], body=seed)
    assert hidden.status == 404 and hidden.json["code"] == "not_found"


def test_create_links_the_seeds_assets_and_refuses_another_tenants(tenants):
    t = tenants
    mine, theirs = ready_data_source(t["a"]), ready_data_source(t["b"])
    seed = {"type": "COPILOT", "assets": {"iterable": [{"id": mine.id}]}}
    made = call("POST", "/pieces/conversations/create", t["key_a"], body=seed)
    assert made.status == 200, made.body
    assert [a["id"] for a in made.json["assets"]["iterable"]] == [mine.id]
    assert grants.get(mine, Ref("convo", made.json["id"]))["role"] == "dependent"
    before = convos.identifiers(Access(t["a"]))
    probe = call(
        "POST",
        "/pieces/conversations/create",
        t["key_a"],
        body={"type": "COPILOT", "assets": {"iterable": [{"id": theirs.id}]}},
    )
    assert probe.status == 404 and probe.json["code"] == "not_found"
    assert convos.identifiers(Access(t["a"])) == before  # nothing half-made


def test_create_from_asset_opens_with_the_summary(tenants, aws_calls):
    t = tenants
    source = ready_data_source(t["a"])
    aws_calls.reset()
    made = call("POST", f"/pieces/conversations/create/from_asset/{source.id}", t["key_a"])
    assert made.status == 200, made.body
    reference = made.json["conversation"]["reference"]
    assert made.json["conversation"]["id"] == reference["id"]
    assert reference["name"] == "Tram guide.md"
    assert [a["id"] for a in reference["assets"]["iterable"]] == [source.id]
    [first] = reference["messages"]["iterable"]
    assert first["reference"]["role"] == "ASSISTANT"
    assert first["reference"]["fragment"]["string"]["raw"] == SUMMARY
    # The opening step is the LLM's, with the summary's citations, and the convo is grounded on it.
    convo_id = reference["id"]
    assert grants.get(source, Ref("convo", convo_id))["role"] == "dependent"
    latest = objects.get(Ref("convo", convo_id))["latestStep"]
    assert latest["authorType"] == "llm" and latest["annotations"][0]["dataSourceId"] == source.id
    # The key and its rate; the data source's check; its summary (Query); its item; the convo and its
    # creator's streams; the link (the convo's chain, both callers' grants, the write); the opening (its
    # transaction with its words, its broadcast).
    assert dict(aws_calls.calls) == {
        "dynamodb:GetItem": 4,
        "dynamodb:UpdateItem": 1,
        "dynamodb:Query": 5,
        "dynamodb:BatchGetItem": 2,
        "dynamodb:TransactWriteItems": 3,
    }


def test_create_from_asset_while_the_summary_is_written_is_409_and_makes_nothing(tenants, monkeypatch):
    t = tenants
    monkeypatch.setattr(pieces, "SUMMARY_WAIT_SECONDS", 0.0)
    source = ready_data_source(t["a"], summary=False)
    pending = call("POST", f"/pieces/conversations/create/from_asset/{source.id}", t["key_a"])
    assert pending.status == 409 and pending.json["code"] == "summary_pending"
    assert int(pending.headers["retry-after"]) > 0
    assert convos.identifiers(Access(t["a"])) == []
    assert table().get(keys.summary_key(source.id))["status"] == "pending"  # it was asked for


def test_create_from_asset_attacks(tenants):
    t = tenants
    theirs = ready_data_source(t["b"])
    for asset in (theirs.id, "0d9e3c5c-4a37-4d3e-9d1e-1f0f6b3f2a10", "not-a-uuid"):
        probe = call("POST", f"/pieces/conversations/create/from_asset/{asset}", t["key_a"])
        assert probe.status == 404 and probe.json["code"] == "not_found", asset
    # Shared with a viewer: it may read it, not pass it on into a new conversation (I5).
    viewer = make_user(admin=t["a"])
    mine = ready_data_source(t["a"])
    grant(mine, viewer, "viewer")
    token = Access(viewer)
    refused = call_surface(
        "compat.pieces",
        "POST",
        f"/pieces/conversations/create/from_asset/{mine.id}",
        resource=RESOURCE,
        headers={"Authorization": "Bearer " + _token_for(t, viewer)},
    )
    assert refused.status == 403, refused.body
    assert convos.identifiers(token) == []


def _token_for(t: dict[str, Any], user: Principal) -> str:
    from datetime import timedelta

    from kallo.clock import iso, now
    from kallo.models.auth import AccessTokenCreate
    from kallo.services import access_tokens

    data = AccessTokenCreate.model_validate(
        {
            "userId": user.user_id,
            "scopeObjects": [{"type": "user", "id": user.user_id}],
            "expiresAt": iso(now() + timedelta(hours=1)),
        }
    )
    return access_tokens.create_access_token(Access(t["a"]), data)["jwt"]


def test_listings_hold_the_callers_convos_only(tenants, aws_calls):
    t = tenants
    mine = [convos.create_convo(Access(t["a"]), ConvoCreate(name=f"c{n}"))["id"] for n in range(3)]
    theirs = convos.create_convo(Access(t["b"]), ConvoCreate(name="other tenant"))["id"]
    aws_calls.reset()
    ids = call("GET", "/pieces/conversations/identifiers", t["key_a"])
    assert ids.status == 200 and [c["id"] for c in ids.json["iterable"]] == mine[::-1]
    assert theirs not in ids.body
    # The key and its rate; the caller's convo grants (Query) and the convos (BatchGetItem).
    assert aws_calls.total == 4 and aws_calls["dynamodb:Query"] == 1
    aws_calls.reset()
    listed = call("GET", "/pieces/conversations", t["key_a"], query={"transferables": "false"})
    assert listed.status == 200 and [c["id"] for c in listed.json["iterable"]] == mine[::-1]
    assert theirs not in listed.body
    # The same (the key now cached), and two Queries per convo (its steps, its linked data sources).
    assert dict(aws_calls.calls) == {
        "dynamodb:UpdateItem": 1,
        "dynamodb:Query": 1 + 2 * 3,
        "dynamodb:BatchGetItem": 1,
    }


def test_get_a_conversation(tenants, aws_calls):
    t = tenants
    made = call("POST", "/pieces/conversations/create", t["key_a"], body=SEED).json
    aws_calls.reset()
    got = call("GET", f"/pieces/conversation/{made['id']}", t["key_a"])
    assert got.status == 200 and got.json == made
    # The rate; the convo's check (Query + BatchGetItem, which reads the convo too); its steps and links.
    assert dict(aws_calls.calls) == {
        "dynamodb:UpdateItem": 1,
        "dynamodb:Query": 3,
        "dynamodb:BatchGetItem": 1,
    }
    for key, convo_id in ((t["key_b"], made["id"]), (t["key_a"], "0d9e3c5c-4a37-4d3e-9d1e-1f0f6b3f2a10")):
        probe = call("GET", f"/pieces/conversation/{convo_id}", key)
        assert probe.status == 404 and probe.json["code"] == "not_found"


def test_delete(tenants):
    t = tenants
    convo_id = convos.create_convo(Access(t["a"]), ConvoCreate())["id"]
    probe = call("POST", f"/pieces/conversations/{convo_id}/delete", t["key_b"])
    assert probe.status == 404 and probe.json["code"] == "not_found"
    assert objects.get(Ref("convo", convo_id)) is not None
    gone = call("POST", f"/pieces/conversations/{convo_id}/delete", t["key_a"])
    assert gone.status == 204 and gone.body == ""
    assert objects.get(Ref("convo", convo_id)) is None
    again = call("POST", f"/pieces/conversations/{convo_id}/delete", t["key_a"])
    assert again.status == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "raw", "status", "code"),
    [
        ("POST", "/pieces/conversations/create", {}, None, 422, "validation_error"),
        ("POST", "/pieces/conversations/create", None, "{not json", 400, "malformed_json"),
        ("POST", "/pieces/conversations/create", None, "[" * 100 + "]" * 100, 400, "malformed_json"),
        (
            "POST",
            "/pieces/conversations/create",
            {"type": "COPILOT", "name": "a\u202eb"},
            None,
            422,
            "validation_error",
        ),
        (
            "POST",
            "/pieces/conversations/create",
            {"type": "COPILOT", "messages": "no"},
            None,
            422,
            "validation_error",
        ),
        ("GET", "/pieces/conversations/create", None, None, 405, "method_not_allowed"),
        ("GET", "/pieces/conversations?transferables=maybe", None, None, 422, "validation_error"),
        ("POST", "/pieces/conversations/%00/delete", None, None, 404, "not_found"),
        ("GET", "/pieces/assets", None, None, 404, "not_found"),
    ],
)
def test_bad_input_is_a_4xx_with_a_code(tenants, method, path, body, raw, status, code):
    path, _, query = path.partition("?")
    answer = call(
        method,
        path,
        tenants["key_a"],
        body=body,
        raw_body=raw,
        query=dict([query.split("=")]) if query else None,
    )
    assert answer.status == status, answer.body
    assert answer.json["code"] == code


def test_without_credentials_is_401(tenants):
    for method, path in (("GET", "/pieces/conversations"), ("POST", "/pieces/conversations/create")):
        answer = call(method, path, None, body={"type": "COPILOT"})
        assert answer.status == 401 and answer.json["code"] == "unauthorized"
    assert call("GET", "/pieces/conversations", "kallo_not_a_real_key_000").status == 401


def test_a_data_source_name_that_cannot_name_a_convo_leaves_it_nameless(tenants):
    t = tenants
    source = ready_data_source(t["a"], name="notes\u202e.md")
    made = call("POST", f"/pieces/conversations/create/from_asset/{source.id}", t["key_a"])
    assert made.status == 200, made.body
    assert "name" not in made.json["conversation"]["reference"]


def test_messages_without_text_are_left_out(tenants):
    seed = {
        "type": "COPILOT",
        "messages": [
            {"role": "USER", "fragment": {}},
            {"role": "USER", "fragment": {"string": {"raw": ""}}},
            {"role": "SYSTEM", "fragment": {"string": {"raw": "kept"}}},
        ],
    }
    made = call("POST", "/pieces/conversations/create", tenants["key_a"], body=seed)
    assert made.status == 200, made.body
    messages = made.json["messages"]["iterable"]
    assert [(m["reference"]["role"], m["reference"]["fragment"]["string"]["raw"]) for m in messages] == [
        ("ASSISTANT", "kept")
    ]
