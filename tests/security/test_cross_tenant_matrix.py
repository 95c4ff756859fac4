"""The cross-tenant matrix (I1, I3, I4, I5, I6): tenant B calls every id-taking operation with tenant
A's ids, with its service account's key and with its user's token.

The REST cases are derived from docs/openapi.json: every path parameter, and every query parameter
whose name is an id (`...Id`, `...Ids`) or an email, is one case; a new operation or parameter fails
`test_every_id_taking_operation_has_an_attack` until it gets an attack in `ATTACKS`. Operations that
take ids only in their body have attacks of their own (`BODY_ATTACKS`).

Each attack must:
- answer exactly as the same request naming fresh, nonexistent ids does (status and error code): an
  object of another tenant is indistinguishable from a missing one (I4);
- be refused (403 or 404), except for lists and look-ups that filter (`FILTERS`);
- reveal none of A's ids, secret words or emails that the request did not itself carry;
- change nothing: A's objects, re-read with A's credentials, are the same before and after.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus

from tests.security.conftest import Api, Connect, Tenant, WsClient, bearer, make_tenant, until
from tests.support.local_stack import ROOT, RunningStack
from tests.support.oidc import OidcIssuer

pytestmark = [pytest.mark.e2e, pytest.mark.security]

OPENAPI = json.loads((ROOT / "docs" / "openapi.json").read_text())
ID_PARAMETER = re.compile(r"(Id|Ids|^email)$")
NOT_AN_ID = {"apiName"}
METHODS = ("get", "post", "put", "patch", "delete")


def schema_enum(parameter: dict[str, Any]) -> list[str]:
    schema = parameter["schema"]
    if "$ref" in schema:
        schema = OPENAPI["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return list(schema.get("enum", []))


def id_taking_cases() -> dict[str, dict[str, Any]]:
    """`"<METHOD> <path> [<parameter>]"` → the OpenAPI operation, for every id-like parameter."""
    cases = {}
    for path, operations in OPENAPI["paths"].items():
        for method, operation in operations.items():
            if method not in METHODS:
                continue
            for parameter in operation.get("parameters", []):
                name = parameter["name"]
                if name in NOT_AN_ID:
                    continue
                if parameter["in"] == "path" or ID_PARAMETER.search(name):
                    cases[f"{method.upper()} {path} [{name}]"] = operation
    return cases


CASES = id_taking_cases()


@dataclass
class Attack:
    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    json: Any = None
    files: dict[str, Any] | None = None
    label: str = ""

    def send(self, api: Api) -> Any:
        options: dict[str, Any] = {"params": self.params}
        if self.json is not None:
            options["json"] = self.json
        if self.files is not None:
            options["files"] = self.files
        return api.call(self.method, self.path, **options)

    def text(self) -> str:
        return json.dumps([self.path, self.params, self.json])

    def replaced(self, mapping: dict[str, str]) -> Attack:
        """The same attack with every one of A's ids replaced (a request naming missing objects)."""
        text = self.text()
        for old, new in mapping.items():
            text = text.replace(old, new)
        path, params, body = json.loads(text)
        return Attack(self.method, path, params, body, self.files, self.label)


@dataclass
class World:
    a: Tenant
    b: Tenant
    victim_sub: str  # an OpenID Connect identity registered by itself, belonging to no tenant
    victim_user_id: str
    a_app_key: dict[str, Any] = field(default_factory=dict)  # an app key of A's topic, as made
    a_export_id: str = ""  # an export A's user made of A's convo

    def secrets(self) -> set[str]:
        return {
            *self.a.secrets(),
            self.victim_sub,
            self.victim_user_id,
            *self.a_app_key.values(),
            self.a_export_id,
        }

    def a_ids(self) -> dict[str, str]:
        return {
            "convo": self.a.convo_id,
            "data_source": self.a.data_source_id,
            "prompt": self.a.prompt_id,
            "team": self.a.team_id,
            "topic": self.a.topic_id,
            "user": self.a.user_id,
        }


Build = Callable[[World], list[Attack]]
IN_AN_HOUR = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
UPLOAD = {"file": ("b.md", b"tenant B's notes\n", "text/markdown")}
STEP = {"content": {"text": "from B"}}


def on_each_type(method: str, path: str, operation_key: str, **rest: Any) -> Build:
    """One attack per object type the operation's `objectType` takes, on A's object of that type."""
    types = schema_enum(next(p for p in CASES[operation_key]["parameters"] if p["name"] == "objectType"))

    def build(w: World) -> list[Attack]:
        attacks = []
        for object_type in types:
            body = rest.get("json")
            params = {"objectType": object_type, "objectId": w.a_ids()[object_type], **rest.get("params", {})}
            attacks.append(
                Attack(method, path, params, body(w) if callable(body) else body, label=object_type)
            )
        return attacks

    return build


def one(method: str, path: Callable[[World], str], **rest: Callable[[World], Any]) -> Build:
    def build(w: World) -> list[Attack]:
        return [
            Attack(
                method,
                path(w),
                rest["params"](w) if "params" in rest else {},
                rest["json"](w) if "json" in rest else None,
                rest["files"](w) if "files" in rest else None,
            )
        ]

    return build


def _grantee_b(w: World) -> dict[str, str]:
    return {"id": w.b.user_id, "type": "user", "role": "admin"}


ATTACKS: dict[str, Build] = {
    "DELETE /auth/access-tokens/{accessTokenId} [accessTokenId]": one(
        "DELETE", lambda w: f"/auth/access-tokens/{w.a.convo_token['id']}"
    ),
    "GET /auth/grantees [objectId]": on_each_type("GET", "/auth/grantees", "GET /auth/grantees [objectId]"),
    "POST /auth/grantees [objectId]": on_each_type(
        "POST", "/auth/grantees", "POST /auth/grantees [objectId]", json=_grantee_b
    ),
    "PUT /auth/grantees [objectId]": on_each_type(
        "PUT",
        "/auth/grantees",
        "PUT /auth/grantees [objectId]",
        json=lambda w: [{"id": w.b.user_id, "type": "user", "role": "owner"}],
    ),
    "DELETE /auth/grantees [objectId]": on_each_type(
        "DELETE",
        "/auth/grantees",
        "DELETE /auth/grantees [objectId]",
        params={"granteeId": str(uuid.uuid4()), "granteeType": "user", "granteeRole": "viewer"},
    ),
    "DELETE /auth/grantees [granteeId]": one(
        "DELETE",
        lambda w: "/auth/grantees",
        params=lambda w: {
            "objectType": "topic",
            "objectId": w.b.topic_id,
            "granteeId": w.a.user_id,
            "granteeType": "user",
            "granteeRole": "viewer",
        },
    ),
    "GET /convos [topicId]": one("GET", lambda w: "/convos", params=lambda w: {"topicId": w.a.topic_id}),
    "GET /convos [userId]": one("GET", lambda w: "/convos", params=lambda w: {"userId": w.a.user_id}),
    "POST /convos [topicId]": one(
        "POST", lambda w: "/convos", params=lambda w: {"topicId": w.a.topic_id}, json=lambda w: {}
    ),
    "POST /convos [teamId]": one(
        "POST", lambda w: "/convos", params=lambda w: {"teamId": w.a.team_id}, json=lambda w: {}
    ),
    "POST /convos [userId]": one(
        "POST", lambda w: "/convos", params=lambda w: {"userId": w.a.user_id}, json=lambda w: {}
    ),
    "GET /convos/{convoId} [convoId]": one("GET", lambda w: f"/convos/{w.a.convo_id}"),
    "GET /exports/{exportId} [exportId]": one("GET", lambda w: f"/exports/{w.a_export_id}"),
    "PATCH /convos/{convoId} [convoId]": one(
        "PATCH", lambda w: f"/convos/{w.a.convo_id}", json=lambda w: {"name": "renamed by B"}
    ),
    "DELETE /convos/{convoId} [convoId]": one("DELETE", lambda w: f"/convos/{w.a.convo_id}"),
    "PUT /convos/{convoId}/data-sources/{dataSourceId} [convoId]": one(
        "PUT", lambda w: f"/convos/{w.a.convo_id}/data-sources/{w.b.data_source_id}"
    ),
    "PUT /convos/{convoId}/data-sources/{dataSourceId} [dataSourceId]": one(
        "PUT", lambda w: f"/convos/{w.b.convo_id}/data-sources/{w.a.data_source_id}"
    ),
    "DELETE /convos/{convoId}/data-sources/{dataSourceId} [convoId]": one(
        "DELETE", lambda w: f"/convos/{w.a.convo_id}/data-sources/{w.a.data_source_id}"
    ),
    "DELETE /convos/{convoId}/data-sources/{dataSourceId} [dataSourceId]": one(
        "DELETE", lambda w: f"/convos/{w.b.convo_id}/data-sources/{w.a.data_source_id}"
    ),
    "GET /convos/{convoId}/steps [convoId]": one("GET", lambda w: f"/convos/{w.a.convo_id}/steps"),
    "GET /convos/{convoId}/topic-config [convoId]": one(
        "GET", lambda w: f"/convos/{w.a.convo_id}/topic-config"
    ),
    "GET /convos/{convoId}/users [convoId]": one(
        "GET", lambda w: f"/convos/{w.a.convo_id}/users", params=lambda w: {"all": "1"}
    ),
    "GET /data-sources [dataSourceIds]": one(
        "GET", lambda w: "/data-sources", params=lambda w: {"dataSourceIds": w.a.data_source_id}
    ),
    "GET /data-sources [convoId]": one(
        "GET", lambda w: "/data-sources", params=lambda w: {"convoId": w.a.convo_id}
    ),
    "GET /data-sources [topicId]": one(
        "GET", lambda w: "/data-sources", params=lambda w: {"topicId": w.a.topic_id}
    ),
    "GET /data-sources [userId]": one(
        "GET", lambda w: "/data-sources", params=lambda w: {"userId": w.a.user_id}
    ),
    "POST /data-sources/uploads [userId]": one(
        "POST",
        lambda w: "/data-sources/uploads",
        params=lambda w: {"userId": w.a.user_id},
        files=lambda w: UPLOAD,
    ),
    "POST /data-sources/uploads [teamId]": one(
        "POST",
        lambda w: "/data-sources/uploads",
        params=lambda w: {"teamId": w.a.team_id},
        files=lambda w: UPLOAD,
    ),
    "GET /data-sources/{dataSourceId} [dataSourceId]": one(
        "GET", lambda w: f"/data-sources/{w.a.data_source_id}"
    ),
    "PATCH /data-sources/{dataSourceId} [dataSourceId]": one(
        "PATCH", lambda w: f"/data-sources/{w.a.data_source_id}", json=lambda w: {"name": "renamed by B"}
    ),
    "DELETE /data-sources/{dataSourceId} [dataSourceId]": one(
        "DELETE", lambda w: f"/data-sources/{w.a.data_source_id}"
    ),
    "GET /data-sources/{dataSourceId}/download-url [dataSourceId]": one(
        "GET", lambda w: f"/data-sources/{w.a.data_source_id}/download-url"
    ),
    "POST /data-sources/{dataSourceId}/summary [dataSourceId]": one(
        "POST", lambda w: f"/data-sources/{w.a.data_source_id}/summary"
    ),
    "GET /invitations [objectId]": on_each_type("GET", "/invitations", "GET /invitations [objectId]"),
    "DELETE /invitations [objectId]": on_each_type(
        "DELETE",
        "/invitations",
        "DELETE /invitations [objectId]",
        params={"inviteEmail": "nobody@corp-b.example"},
    ),
    # B accepting an invitation to A's object (A's world has one, to an address B does not hold).
    "POST /invitations/accept [objectId]": on_each_type(
        "POST", "/invitations/accept", "POST /invitations/accept [objectId]"
    ),
    "GET /prompts [topicId]": one("GET", lambda w: "/prompts", params=lambda w: {"topicId": w.a.topic_id}),
    "GET /prompts [userId]": one("GET", lambda w: "/prompts", params=lambda w: {"userId": w.a.user_id}),
    "POST /prompts [teamId]": one(
        "POST", lambda w: "/prompts", params=lambda w: {"teamId": w.a.team_id}, json=lambda w: {"text": "B"}
    ),
    "POST /prompts [userId]": one(
        "POST", lambda w: "/prompts", params=lambda w: {"userId": w.a.user_id}, json=lambda w: {"text": "B"}
    ),
    "PATCH /prompts/{promptId} [promptId]": one(
        "PATCH", lambda w: f"/prompts/{w.a.prompt_id}", json=lambda w: {"text": "rewritten by B"}
    ),
    "DELETE /prompts/{promptId} [promptId]": one("DELETE", lambda w: f"/prompts/{w.a.prompt_id}"),
    "PATCH /steps/{stepId} [stepId]": one(
        "PATCH", lambda w: f"/steps/{w.a.step_id}", json=lambda w: {"isAlternate": False}
    ),
    "DELETE /steps/{stepId} [stepId]": one("DELETE", lambda w: f"/steps/{w.a.step_id}"),
    "POST /steps/{stepId}/stop [stepId]": one("POST", lambda w: f"/steps/{w.a.step_id}/stop"),
    "PUT /steps/{stepId}/feedback [stepId]": one(
        "PUT", lambda w: f"/steps/{w.a.step_id}/feedback", json=lambda w: {"rating": "dislike"}
    ),
    "DELETE /steps/{stepId}/feedback [stepId]": one("DELETE", lambda w: f"/steps/{w.a.step_id}/feedback"),
    "GET /steps/{stepId}/suggestions [stepId]": one("GET", lambda w: f"/steps/{w.a.step_id}/suggestions"),
    "GET /teams [userId]": one("GET", lambda w: "/teams", params=lambda w: {"userId": w.a.user_id}),
    "PATCH /teams/{teamId} [teamId]": one(
        "PATCH", lambda w: f"/teams/{w.a.team_id}", json=lambda w: {"name": "renamed by B"}
    ),
    "DELETE /teams/{teamId} [teamId]": one("DELETE", lambda w: f"/teams/{w.a.team_id}"),
    "GET /teams/{teamId}/users [teamId]": one("GET", lambda w: f"/teams/{w.a.team_id}/users"),
    "PUT /teams/{teamId}/users/{userId} [teamId]": one(
        "PUT", lambda w: f"/teams/{w.a.team_id}/users/{w.b.user_id}", json=lambda w: {}
    ),
    "PUT /teams/{teamId}/users/{userId} [userId]": one(
        "PUT", lambda w: f"/teams/{w.b.team_id}/users/{w.a.user_id}", json=lambda w: {}
    ),
    "DELETE /teams/{teamId}/users/{userId} [teamId]": one(
        "DELETE", lambda w: f"/teams/{w.a.team_id}/users/{w.a.user_id}"
    ),
    "DELETE /teams/{teamId}/users/{userId} [userId]": one(
        "DELETE", lambda w: f"/teams/{w.b.team_id}/users/{w.a.user_id}"
    ),
    "GET /topics [topicIds]": one("GET", lambda w: "/topics", params=lambda w: {"topicIds": w.a.topic_id}),
    "POST /topics [userId]": one(
        "POST",
        lambda w: "/topics",
        params=lambda w: {"userId": w.a.user_id},
        json=lambda w: {"name": "B", "description": "B"},
    ),
    "POST /topics [teamId]": one(
        "POST",
        lambda w: "/topics",
        params=lambda w: {"teamId": w.a.team_id},
        json=lambda w: {"name": "B", "description": "B"},
    ),
    "PATCH /topics/{topicId} [topicId]": one(
        "PATCH", lambda w: f"/topics/{w.a.topic_id}", json=lambda w: {"name": "renamed by B"}
    ),
    "DELETE /topics/{topicId} [topicId]": one("DELETE", lambda w: f"/topics/{w.a.topic_id}"),
    "PUT /topics/{topicId}/data-sources/{dataSourceId} [topicId]": one(
        "PUT", lambda w: f"/topics/{w.a.topic_id}/data-sources/{w.b.data_source_id}"
    ),
    "PUT /topics/{topicId}/data-sources/{dataSourceId} [dataSourceId]": one(
        "PUT", lambda w: f"/topics/{w.b.topic_id}/data-sources/{w.a.data_source_id}"
    ),
    "DELETE /topics/{topicId}/data-sources/{dataSourceId} [topicId]": one(
        "DELETE", lambda w: f"/topics/{w.a.topic_id}/data-sources/{w.a.data_source_id}"
    ),
    "DELETE /topics/{topicId}/data-sources/{dataSourceId} [dataSourceId]": one(
        "DELETE", lambda w: f"/topics/{w.b.topic_id}/data-sources/{w.a.data_source_id}"
    ),
    "POST /topics/{topicId}/app-keys [topicId]": one(
        "POST", lambda w: f"/topics/{w.a.topic_id}/app-keys", json=lambda w: {"name": "B's app"}
    ),
    "GET /topics/{topicId}/app-keys [topicId]": one("GET", lambda w: f"/topics/{w.a.topic_id}/app-keys"),
    "DELETE /topics/{topicId}/app-keys/{appKeyId} [topicId]": one(
        "DELETE", lambda w: f"/topics/{w.a.topic_id}/app-keys/{w.a_app_key['id']}"
    ),
    "DELETE /topics/{topicId}/app-keys/{appKeyId} [appKeyId]": one(
        "DELETE", lambda w: f"/topics/{w.b.topic_id}/app-keys/{w.a_app_key['id']}"
    ),
    "DELETE /topics/{topicId}/prompt [topicId]": one("DELETE", lambda w: f"/topics/{w.a.topic_id}/prompt"),
    "PUT /topics/{topicId}/prompts/{promptId} [topicId]": one(
        "PUT", lambda w: f"/topics/{w.a.topic_id}/prompts/{w.b.prompt_id}"
    ),
    "PUT /topics/{topicId}/prompts/{promptId} [promptId]": one(
        "PUT", lambda w: f"/topics/{w.b.topic_id}/prompts/{w.a.prompt_id}"
    ),
    "GET /users [userId]": one("GET", lambda w: "/users", params=lambda w: {"userId": w.a.user_id}),
    "GET /users [firebaseId]": one("GET", lambda w: "/users", params=lambda w: {"firebaseId": w.victim_sub}),
    "GET /users [email]": one("GET", lambda w: "/users", params=lambda w: {"email": w.a.email}),
    "GET /users/stats [userId]": one(
        "GET", lambda w: "/users/stats", params=lambda w: {"userId": w.a.user_id}
    ),
    "PATCH /users/{userId} [userId]": one(
        "PATCH", lambda w: f"/users/{w.a.user_id}", json=lambda w: {"displayName": "renamed by B"}
    ),
    "GET /users/{userId}/related [userId]": one("GET", lambda w: f"/users/{w.a.user_id}/related"),
}

# Operations whose ids travel in the body.
BODY_ATTACKS: dict[str, Build] = {
    "POST /auth/access-tokens [body userId]": one(
        "POST",
        lambda w: "/auth/access-tokens",
        json=lambda w: {
            "userId": w.a.user_id,
            "scopeObjects": [{"type": "user", "id": w.a.user_id}],
            "expiresAt": IN_AN_HOUR,
        },
    ),
    "POST /auth/access-tokens [body scopeObjects]": one(
        "POST",
        lambda w: "/auth/access-tokens",
        json=lambda w: {
            "userId": w.b.user_id,
            "scopeObjects": [{"type": "convo", "id": w.a.convo_id}],
            "expiresAt": IN_AN_HOUR,
        },
    ),
    "POST /auth/permissions [body userId]": one(
        "POST",
        lambda w: "/auth/permissions",
        json=lambda w: {
            "userId": w.a.user_id,
            "objectId": w.a.convo_id,
            "objectType": "convo",
            "permissions": ["can_view", "can_edit"],
        },
    ),
    "POST /exports [body convoIds]": one(
        "POST",
        lambda w: "/exports",
        json=lambda w: {
            "format": "html-email",
            "sources": {"convoIds": [w.a.convo_id]},
            "destinations": [{"type": "email", "address": w.b.email}],
        },
    ),
    "POST /topics [body config.defaults.dataSourceIds]": one(
        "POST",
        lambda w: "/topics",
        json=lambda w: {
            "name": "B",
            "description": "B",
            "config": {"defaults": {"dataSourceIds": [w.a.data_source_id]}},
        },
    ),
    "POST /topics [body dataSourceIds]": one(
        "POST",
        lambda w: "/topics",
        json=lambda w: {"name": "B", "description": "B", "dataSourceIds": [w.a.data_source_id]},
    ),
    "PATCH /topics [body dataSourceIds]": one(
        "PATCH",
        lambda w: f"/topics/{w.b.topic_id}",
        json=lambda w: {"dataSourceIds": [w.a.data_source_id]},
    ),
    # Gloo KaLLM (a compatibility surface, not in the OpenAPI document): continuing A's chat.
    "POST /gloo/ai/v1/message/kallm [body chat_id]": one(
        "POST",
        lambda w: "/gloo/ai/v1/message/kallm",
        json=lambda w: {"query": "What did A ask?", "chat_id": w.a.convo_id},
    ),
}

# The compatibility surfaces' operations that take ids (not in docs/openapi.json: peer APIs).
SURFACE_ATTACKS: dict[str, Build] = {
    "POST /pieces/conversations/{conversation}/delete [conversation]": one(
        "POST", lambda w: f"/pieces/conversations/{w.a.convo_id}/delete"
    ),
    "GET /pieces/conversation/{conversation} [conversation]": one(
        "GET", lambda w: f"/pieces/conversation/{w.a.convo_id}"
    ),
    "POST /pieces/conversations/create/from_asset/{asset} [asset]": one(
        "POST", lambda w: f"/pieces/conversations/create/from_asset/{w.a.data_source_id}"
    ),
    "POST /pieces/conversations/create [body assets]": one(
        "POST",
        lambda w: "/pieces/conversations/create",
        json=lambda w: {"type": "COPILOT", "assets": {"iterable": [{"id": w.a.data_source_id}]}},
    ),
    "POST /pieces/conversations/create [body application.descriptor]": one(
        "POST",
        lambda w: "/pieces/conversations/create",
        json=lambda w: {"type": "COPILOT", "application": {"descriptor": f"kallo-topic:{w.a.topic_id}"}},
    ),
}

# Look-ups that may answer 200 with what the caller can see (nothing of A's), or create the caller's own
# object: for these, only "same as for missing ids", "no leak" and "nothing changed" hold.
FILTERS = {
    "GET /data-sources [dataSourceIds]",
    "GET /topics [topicIds]",
    "GET /users [email]",
}
# Bodies refused as input whatever the ids name (422): a topic's own dataSourceIds is written only by
# linking, never by Create / Update Topic.
REFUSED_INPUT = {"POST /topics [body dataSourceIds]", "PATCH /topics [body dataSourceIds]"}


@pytest.fixture(scope="module")
def world(stack: RunningStack, issuer_one: OidcIssuer) -> World:
    """A fresh pair of tenants for this module (its attacks may succeed today and damage them)."""
    a, b = make_tenant(stack, "a"), make_tenant(stack, "b")
    sub = f"victim-{uuid.uuid4().hex[:8]}"
    token = issuer_one.mint(sub, email=f"{sub}@people.example")
    registered = stack.client.get("/users", params={"firebaseId": sub}, headers=bearer(token))
    assert registered.status_code == 201, registered.text
    app_key = a.user.ok("POST", f"/topics/{a.topic_id}/app-keys", 201, json={"name": "A's app"})
    # An export of A's convo, to a person whose address an issuer verified and whom A invited to it.
    reader_sub = f"reader-{uuid.uuid4().hex[:8]}"
    reader_email = f"{reader_sub}@people.example"
    on_convo = {"objectType": "convo", "objectId": a.convo_id, "inviteEmail": reader_email}
    a.user.ok("POST", "/auth/grantees", 201, params=on_convo, json={"type": "user", "role": "viewer"})
    reader = bearer(issuer_one.mint(reader_sub, email=reader_email))
    assert stack.client.get("/users", params={"firebaseId": reader_sub}, headers=reader).status_code == 201
    export = a.user.ok(
        "POST",
        "/exports",
        202,
        json={
            "format": "html-email",
            "sources": {"convoIds": [a.convo_id]},
            "destinations": [{"type": "email", "address": reader_email}],
        },
    )
    # Sent before any attack: the witness must not take the worker's change for an attack's.
    until("A's export to be sent", lambda: a.user.ok("GET", f"/exports/{export['id']}")["status"] == "sent")
    keys = {k: app_key[k] for k in ("id", "key")}
    return World(a, b, sub, registered.json()["id"], keys, export["id"])


def snapshot(w: World) -> dict[str, Any]:
    """A's world as A sees it (each of A's tokens still works, too)."""
    a, user = w.a, w.a.user
    reads = {
        "convo": user.call("GET", f"/convos/{a.convo_id}"),
        "steps": user.call("GET", f"/convos/{a.convo_id}/steps"),
        "topic": user.call("GET", "/topics", params={"topicIds": a.topic_id}),
        "team users": user.call("GET", f"/teams/{a.team_id}/users"),
        "data source": user.call("GET", f"/data-sources/{a.data_source_id}"),
        "topic sources": user.call("GET", "/data-sources", params={"topicId": a.topic_id}),
        "app keys": user.call("GET", f"/topics/{a.topic_id}/app-keys"),
        "prompts": user.call("GET", "/prompts", params={"topicId": a.topic_id}),
        "invitations": user.call("GET", "/invitations", params={"objectType": "team", "objectId": a.team_id}),
        "user": a.sa.call("GET", "/users", params={"userId": a.user_id}),
        "convo token": a.stack.client.get(f"/convos/{a.convo_id}", headers=bearer(a.convo_token["jwt"])),
        "export": user.call("GET", f"/exports/{w.a_export_id}"),
    }
    for object_type, object_id in w.a_ids().items():
        reads[f"grantees of {object_type}"] = user.call(
            "GET", "/auth/grantees", params={"objectType": object_type, "objectId": object_id}
        )
    return {name: (r.status_code, r.text) for name, r in reads.items()}


def attacker(w: World, credential: str) -> Api:
    return w.b.sa if credential == "key" else w.b.user


def code_of(response: Any) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


def assert_no_leak(where: str, text: str, secrets: set[str]) -> None:
    leaked = sorted(s for s in secrets if s and s in text)
    assert not leaked, f"{where} reveals {leaked}"


ALL_ATTACKS = {**ATTACKS, **BODY_ATTACKS, **SURFACE_ATTACKS}


def test_every_id_taking_operation_has_an_attack() -> None:
    missing = sorted(set(CASES) - set(ATTACKS))
    assert not missing, f"id-taking operations without a cross-tenant attack: {missing}"
    stale = sorted(set(ATTACKS) - set(CASES))
    assert not stale, f"attacks on operations the OpenAPI document no longer has: {stale}"


class Witness:
    """A's world as last seen. Re-reading it costs a dozen requests, so it is re-read after every attack
    the server did not refuse (and at the end of the module, after all of them)."""

    def __init__(self, w: World) -> None:
        self.world = w
        self.seen = snapshot(w)

    def unchanged(self) -> bool:
        now = snapshot(self.world)
        same, self.seen = now == self.seen, now
        return same


@pytest.fixture(scope="module")
def witness(world: World) -> Witness:
    return Witness(world)


@pytest.mark.parametrize("credential", ["key", "token"])
@pytest.mark.parametrize("case", sorted(ALL_ATTACKS))
def test_i4_tenant_b_cannot_reach_tenant_a(
    world: World, witness: Witness, case: str, credential: str
) -> None:
    api = attacker(world, credential)
    missing_ids = {value: str(uuid.uuid4()) for value in world.a_ids().values()}
    missing_ids[world.victim_sub] = f"nobody-{uuid.uuid4().hex[:8]}"
    missing_ids[world.a.convo_token["id"]] = str(uuid.uuid4())
    missing_ids[world.a_app_key["id"]] = str(uuid.uuid4())
    missing_ids[world.a_export_id] = str(uuid.uuid4())
    missing_ids[world.a.email] = f"nobody-{uuid.uuid4().hex[:8]}@corp-a.example"
    for attack in ALL_ATTACKS[case](world):
        where = f"{case} {attack.label} as B's {credential}"
        answer = attack.send(api)
        control = attack.replaced(missing_ids).send(api)
        if answer.status_code < 400 and (attack.method != "GET" or attack.path == "/users"):
            assert witness.unchanged(), f"{where} changed A's objects: {answer.status_code} {answer.text}"
        assert answer.status_code < 500, f"{where}: {answer.status_code} {answer.text}"
        assert (answer.status_code, code_of(answer)) == (control.status_code, code_of(control)), (
            f"{where}: A's object answers {answer.status_code} {answer.text}, "
            f"a missing one {control.status_code} {control.text}"
        )
        if case not in FILTERS:
            refusals = (422,) if case in REFUSED_INPUT else (403, 404)
            assert answer.status_code in refusals, f"{where}: {answer.status_code} {answer.text}"
            body = answer.json()
            assert body.get("code") and body.get("message"), f"{where}: {answer.text}"
        revealed = world.secrets() - {s for s in world.secrets() if s in attack.text()}
        assert_no_leak(where, answer.text + json.dumps(dict(answer.headers)), revealed)


# --- WebSocket ------------------------------------------------------------------------------------

WS_ATTACKS: dict[str, Callable[[World], tuple[str, dict[str, Any]]]] = {
    "convoStepDeletion": lambda w: ("convoStepDeletion", {"id": w.a.step_id}),
    "convoStepUpdate content": lambda w: (
        "convoStepUpdate",
        {"id": w.a.step_id, "content": {"text": "rewritten by B"}},
    ),
    "convoStepUpdate isAlternate": lambda w: ("convoStepUpdate", {"id": w.a.step_id, "isAlternate": False}),
    "convoStepRegen": lambda w: ("convoStepRegen", {"id": w.a.step_id}),
    "convoStopStep": lambda w: ("convoStopStep", {"id": w.a.step_id}),
    "convoStepGroupAddition": lambda w: (
        "convoStepGroupAddition",
        {"primaryStepId": w.a.step_id, "step": STEP},
    ),
    "convoNewStep convoId": lambda w: ("convoNewStep", {**STEP, "convoId": w.a.convo_id}),
    "convoNewStep config.dataSourceIds": lambda w: (
        "convoNewStep",
        {**STEP, "config": {"dataSourceIds": [w.a.data_source_id]}},
    ),
    "convoNewStep files": lambda w: (
        "convoNewStep",
        {
            **STEP,
            "files": [{"dataSourceId": w.a.data_source_id, "name": "a.md", "mimeType": "text/markdown"}],
        },
    ),
    "convoNewStep annotations": lambda w: (
        "convoNewStep",
        {**STEP, "annotations": [{"dataSourceId": w.a.data_source_id, "text": "quoted"}]},
    ),
    "convoNewStepGroup files": lambda w: (
        "convoNewStepGroup",
        {
            "steps": [
                {
                    **STEP,
                    "files": [{"dataSourceId": w.a.data_source_id, "name": "a", "mimeType": "text/plain"}],
                }
            ]
        },
    ),
}


def answer_to(client: WsClient, request_id: str, seconds: float = 10) -> dict[str, Any] | None:
    """The `error` answering `request_id`, or the first broadcast the message caused (None: silence)."""
    try:
        while True:
            message = client.receive(timeout=seconds)
            payload = message.get("payload") or {}
            if (
                message.get("type") == "error"
                and payload.get("requestId", message.get("requestId")) == request_id
            ):
                return message
            if message.get("type") != "error":
                return message
    except TimeoutError:
        return None


@pytest.mark.parametrize("case", sorted(WS_ATTACKS))
def test_i4_websocket_messages_naming_a_s_ids_are_refused(
    world: World, witness: Witness, ws_connect: Connect, case: str
) -> None:
    b = world.b
    client = ws_connect(b.convo_id, headers=b.user.headers)
    message_type, payload = WS_ATTACKS[case](world)
    client.send(message_type, payload, request_id="attack")
    answer = answer_to(client, "attack")
    if answer is None or answer["type"] != "error":
        assert witness.unchanged(), f"{case} changed A's objects"
    assert answer is not None, f"{case}: no answer at all (an error was due)"
    assert answer["type"] == "error", f"{case}: accepted: {answer}"
    assert answer["payload"].get("code") and answer["payload"].get("message"), answer
    assert_no_leak(
        case, json.dumps(answer), world.secrets() - {s for s in world.secrets() if s in json.dumps(payload)}
    )
    # A missing object answers the same.
    missing = json.loads(
        json.dumps(payload)
        .replace(world.a.step_id, str(uuid.uuid4()))
        .replace(world.a.data_source_id, str(uuid.uuid4()))
        .replace(world.a.convo_id, str(uuid.uuid4()))
    )
    client.send(message_type, missing, request_id="control")
    control = answer_to(client, "control")
    assert control is not None and control["payload"].get("code") == answer["payload"]["code"], (
        answer,
        control,
    )


def test_i4_convo_sync_since_a_s_step_answers_as_a_missing_one(world: World, ws_connect: Connect) -> None:
    """convoSync takes a step id that is not an error to name: B naming A's step must get exactly what
    naming no step gets (its own convo's status), and nothing of A's step."""
    client = ws_connect(world.b.convo_id, headers=world.b.user.headers)

    def sync(step_id: str, request_id: str) -> list[dict[str, Any]]:
        client.send("convoSync", {"since": {"stepId": step_id, "seq": 0}}, request_id=request_id)
        answers = []
        while True:
            try:
                message = client.receive(timeout=2)
            except TimeoutError:
                return answers
            if message.get("requestId") == request_id:
                answers.append({k: v for k, v in message.items() if k != "requestId"})

    answer = sync(world.a.step_id, "attack")
    assert answer == sync(str(uuid.uuid4()), "control")
    assert [m["type"] for m in answer] == ["convoStatus"]
    assert answer[0]["payload"]["convoId"] == world.b.convo_id
    assert_no_leak("convoSync since", json.dumps(answer), world.secrets() - {world.a.step_id})


@pytest.mark.parametrize("credential", ["key", "token"])
def test_i4_connecting_to_a_s_convo_is_refused_like_a_missing_one(
    world: World, ws_connect: Connect, credential: str
) -> None:
    headers = attacker(world, credential).headers

    def refused(convo_id: str) -> int:
        with pytest.raises(InvalidStatus) as refusal:
            ws_connect(convo_id, headers=headers)
        return refusal.value.response.status_code

    status = refused(world.a.convo_id)
    assert status in (403, 404)
    assert status == refused(str(uuid.uuid4()))


def test_i4_no_attack_changed_a_s_world(witness: Witness) -> None:
    """Last in the module: A's world is as the previous re-read saw it (each attack the server refused
    was not re-read after)."""
    assert witness.unchanged(), "an attack that was refused still changed A's objects"
