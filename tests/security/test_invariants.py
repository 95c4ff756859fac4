"""Attacks on each invariant of SECURITY.md (I1-I11), and each numbered finding of the tenant isolation
issue tried again the way it was reported, from the attacker's side, over the real stack.

Tests are named after the invariant they attack (`test_i<N>_...`) and, where one reproduces a finding,
its number (`..._finding<N>_...`). Finding 14 (a small PDF that takes minutes of worker time) is not
reproduced here: it needs a crafted document that is specific to the PDF library.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import json
import time
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.security.conftest import (
    SHARED_WORD,
    UPSTREAM_DETAIL,
    Api,
    Connect,
    Tenant,
    WsClient,
    bearer,
    mint,
    until,
    write_step,
)
from tests.support.local_stack import RunningStack
from tests.support.oidc import OidcIssuer

pytestmark = [pytest.mark.e2e, pytest.mark.security]

# Seconds after which a revocation must have ended delivery (the stack's credential cache is 1 s).
REVOCATION_SECONDS = 3
FRAME_BYTES = 128 * 1024  # API Gateway's WebSocket message cap, both ways
REPLY_CONFIG = {"reply": True, "maxTokens": 8, "temperature": 0}
# What an error body must never carry (I7): stack traces, AWS internals, internal addresses.
INTERNALS = ("Traceback", 'File "', "botocore", "arn:aws:", "amazonaws.com", "127.0.0.1", "localhost")


def tag() -> str:
    return uuid.uuid4().hex[:8]


def assert_refused(response: httpx.Response, where: str = "") -> None:
    """403 or 404 with `{code, message}` (I4: 404 for what the caller cannot see, 403 for what it can see
    but may not do)."""
    assert response.status_code in (403, 404), f"{where}: {response.status_code} {response.text}"
    body = response.json()
    assert body.get("code") and body.get("message"), f"{where}: {response.text}"


def assert_client_error(response: httpx.Response, where: str = "") -> None:
    """A 4xx with `{code, message}` and nothing internal in it (I7, I11)."""
    assert 400 <= response.status_code < 500, f"{where}: {response.status_code} {response.text[:500]}"
    body = response.json()
    assert body.get("code") and body.get("message"), f"{where}: {response.text[:500]}"
    for internal in INTERNALS:
        assert internal not in response.text, (
            f"{where}: the error reveals {internal!r}: {response.text[:500]}"
        )


def team_user_ids(api: Api, team_id: str) -> set[str]:
    return {member["userId"] for member in api.ok("GET", f"/teams/{team_id}/users")}


def invited_emails(api: Api, object_type: str, object_id: str) -> set[str]:
    found = api.ok("GET", "/invitations", params={"objectType": object_type, "objectId": object_id})
    return {invitation["inviteEmail"] for invitation in found}


def invite(api: Api, object_type: str, object_id: str, email: str, role: str = "member") -> None:
    api.ok(
        "POST",
        "/auth/grantees",
        201,
        params={"objectType": object_type, "objectId": object_id, "inviteEmail": email},
        json={"type": "user", "role": role},
    )


def oidc(stack: RunningStack, issuer: OidcIssuer, sub: str, **claims: Any) -> Api:
    return Api(stack.client, bearer(issuer.mint(sub, **claims)))


# --- I1 Authority ---------------------------------------------------------------------------------


def test_i1_finding1_an_early_invitation_gives_no_authority(tenant_a: Tenant, tenant_b: Tenant) -> None:
    email = f"victim-{tag()}@corp-b.example"
    # A's service account invites the address to a team it owns, before anyone has the address.
    team = tenant_a.sa.ok("POST", "/teams", 201, json={"name": "A's bait"})
    invite(tenant_a.sa, "team", team["id"], email)
    # B then creates its user with that address, who makes a convo and uploads a file.
    victim_id = tenant_b.sa.ok("GET", "/users", 201, params={"email": email})["id"]
    victim = Api(
        tenant_b.stack.client,
        bearer(mint(tenant_b.sa, victim_id, [{"type": "user", "id": victim_id}])["jwt"]),
    )
    convo = victim.ok("POST", "/convos", 201, json={"name": "Victim's convo"})
    files = {"file": ("payroll.md", b"Payroll of corp B\n", "text/markdown")}
    source = victim.ok("POST", "/data-sources/uploads", 201, files=files)

    for api, who in ((tenant_a.sa, "A's key"), (tenant_a.user, "A's team owner")):
        assert_refused(
            api.call("GET", "/convos", params={"userId": victim_id}), f"{who} lists the victim's convos"
        )
        assert_refused(api.call("GET", "/users", params={"userId": victim_id}), f"{who} reads the victim")
        assert_refused(api.call("GET", f"/data-sources/{source['id']}/download-url"), f"{who} downloads")
        assert_refused(api.call("PATCH", f"/convos/{convo['id']}", json={"name": "pwned"}), f"{who} renames")
    in_an_hour = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    body = {"userId": victim_id, "scopeObjects": [{"type": "user", "id": victim_id}], "expiresAt": in_an_hour}
    assert_refused(tenant_a.sa.call("POST", "/auth/access-tokens", json=body), "A mints a token for B's user")
    assert victim.ok("GET", f"/convos/{convo['id']}")["name"] == "Victim's convo"


# --- I2 Identity ----------------------------------------------------------------------------------


def test_i2_finding2_claiming_an_email_does_not_take_another_tenants_invitation(
    stack: RunningStack, tenant_a: Tenant, tenant_b: Tenant, issuer_one: OidcIssuer
) -> None:
    email = f"newhire-{tag()}@corp-b.example"
    invite(tenant_b.user, "team", tenant_b.team_id, email)
    claimed = tenant_a.sa.call("GET", "/users", params={"email": email})
    assert claimed.status_code < 500, claimed.text
    claimer = claimed.json().get("id") if claimed.status_code < 300 else None

    assert email in invited_emails(tenant_b.user, "team", tenant_b.team_id), "B's invitation is gone"
    assert claimer not in team_user_ids(tenant_b.user, tenant_b.team_id), "A's user joined B's team"
    # The real person signs up with the issuer's verified address, and is not refused.
    sub = f"newhire-{tag()}"
    person = oidc(stack, issuer_one, sub, email=email, email_verified=True)
    signed_up = person.call("GET", "/users", params={"firebaseId": sub})
    assert signed_up.status_code == 201, signed_up.text
    assert signed_up.json()["id"] != claimer


@pytest.mark.parametrize("claim", ["false", "true"])
def test_i2_email_verified_as_a_string_is_not_trusted(
    stack: RunningStack, tenant_b: Tenant, issuer_one: OidcIssuer, claim: str
) -> None:
    """Only the JSON value `true` verifies an address: the strings "false" and "true" do not."""
    email = f"string-{claim}-{tag()}@corp-b.example"
    invite(tenant_b.user, "team", tenant_b.team_id, email)
    sub = f"string-{claim}-{tag()}"
    registered = oidc(stack, issuer_one, sub, email=email, email_verified=claim).call(
        "GET", "/users", params={"firebaseId": sub}
    )
    assert registered.status_code < 500, registered.text
    newcomer = registered.json().get("id") if registered.status_code < 300 else None
    assert newcomer not in team_user_ids(tenant_b.user, tenant_b.team_id), "an unverified address joined"
    assert email in invited_emails(tenant_b.user, "team", tenant_b.team_id), "the invitation was taken"


def test_i2_the_same_subject_at_two_issuers_is_two_identities(
    stack: RunningStack, issuer_one: OidcIssuer, issuer_two: OidcIssuer
) -> None:
    sub = f"shared-sub-{tag()}"
    first = oidc(stack, issuer_one, sub, email=f"{sub}@one.example")
    owner = first.ok("GET", "/users", 201, params={"firebaseId": sub})
    team = first.ok("POST", "/teams", 201, json={"name": "Issuer one's team"})

    other = oidc(stack, issuer_two, sub, email=f"{sub}@two.example")
    second = other.call("GET", "/users", params={"firebaseId": sub})
    assert second.status_code < 500, second.text
    if second.status_code < 300:
        assert second.json()["id"] != owner["id"], "issuer two's subject got issuer one's user"
    assert_refused(other.call("GET", "/users", params={"userId": owner["id"]}), "reads the other user")
    assert_refused(other.call("PATCH", f"/users/{owner['id']}", json={"displayName": "x"}), "renames it")
    assert_refused(other.call("PATCH", f"/teams/{team['id']}", json={"name": "x"}), "renames its team")


def test_i2_finding7_a_service_account_cannot_claim_a_firebase_id(
    stack: RunningStack, tenant_b: Tenant, issuer_one: OidcIssuer
) -> None:
    sub = f"future-{tag()}"
    claim = tenant_b.sa.call("GET", "/users", params={"firebaseId": sub})
    assert 400 <= claim.status_code < 500, f"B pre-claimed a firebaseId: {claim.status_code} {claim.text}"
    person = oidc(stack, issuer_one, sub, email=f"{sub}@people.example")
    signed_up = person.ok("GET", "/users", 201, params={"firebaseId": sub})
    assert_refused(
        tenant_b.sa.call("GET", "/users", params={"userId": signed_up["id"]}), "B reads the person"
    )


# --- I3 Scope -------------------------------------------------------------------------------------


@pytest.mark.parametrize("scope", ["convo", "topic"])
def test_i3_finding3_a_narrow_token_cannot_touch_its_own_user(
    tenant_a: Tenant, tenant_b: Tenant, scope: str
) -> None:
    token = tenant_a.convo_token if scope == "convo" else tenant_a.topic_token
    narrow = Api(tenant_a.stack.client, bearer(token["jwt"]))
    # The token works within its scope...
    narrow.ok("GET", f"/convos/{tenant_a.convo_id}")
    # ...and not on its user.
    user = {"objectType": "user", "objectId": tenant_a.user_id}
    admin = {"id": tenant_b.user_id, "type": "user", "role": "admin"}
    assert_refused(
        narrow.call("POST", "/auth/grantees", params=user, json=admin), "adds an admin to its user"
    )
    assert_refused(
        narrow.call("PUT", "/auth/grantees", params=user, json=[admin]), "replaces its user's grantees"
    )
    assert_refused(narrow.call("GET", "/auth/grantees", params=user), "reads its user's grantees")
    assert_refused(
        narrow.call("PATCH", f"/users/{tenant_a.user_id}", json={"displayName": "x"}), "renames its user"
    )
    assert_refused(narrow.call("GET", f"/users/{tenant_a.user_id}/related"), "reads related users")
    assert_refused(narrow.call("GET", "/users/stats"), "reads its user's stats")
    grantees = tenant_a.user.ok("GET", "/auth/grantees", params=user)
    assert tenant_b.user_id not in json.dumps(grantees)


# --- I4 Ids ---------------------------------------------------------------------------------------

CREATES = {
    "topic": ("/topics", {"name": "T", "description": "d"}),
    "convo": ("/convos", {"name": "C"}),
    "team": ("/teams", {"name": "T"}),
    "prompt": ("/prompts", {"text": "P"}),
}


@pytest.mark.parametrize("object_type", sorted(CREATES))
def test_i4_finding4_the_server_makes_every_id(tenant_a: Tenant, tenant_b: Tenant, object_type: str) -> None:
    path, body = CREATES[object_type]
    taken = getattr(tenant_a, f"{object_type}_id")
    fresh = str(uuid.uuid4())
    on_taken = tenant_b.user.call("POST", path, json={**body, "id": taken})
    on_fresh = tenant_b.user.call("POST", path, json={**body, "id": fresh})
    # Another tenant's id answers as a fresh one does: no 409 oracle.
    assert on_taken.status_code == on_fresh.status_code, (on_taken.text, on_fresh.text)
    assert on_taken.status_code < 500 and on_taken.status_code != 409, on_taken.text
    for answer, asked in ((on_taken, taken), (on_fresh, fresh)):
        if answer.status_code < 300:
            assert answer.json()["id"] != asked, f"the client chose a {object_type} id"


def test_i4_finding4_a_deleted_topic_id_is_never_reclaimed(tenant_a: Tenant, tenant_b: Tenant) -> None:
    b = tenant_b.user
    topic = b.ok("POST", "/topics", 201, json={"name": "Doomed", "description": "d"})
    convo = b.ok(
        "POST", "/convos", 201, params={"topicId": topic["id"]}, json={"name": "in the doomed topic"}
    )
    b.ok("DELETE", f"/topics/{topic['id']}", 204)
    # A races the purge with the deleted id.
    claimed = tenant_a.user.call(
        "POST", "/topics", json={"id": topic["id"], "name": "Mine", "description": "d"}
    )
    assert claimed.status_code < 500, claimed.text
    if claimed.status_code < 300:
        assert claimed.json()["id"] != topic["id"]
    assert_refused(
        tenant_a.user.call("GET", "/convos", params={"topicId": topic["id"]}), "lists B's old convos"
    )
    assert_refused(tenant_a.user.call("GET", f"/convos/{convo['id']}"), "reads B's old convo")


# --- I5 Ownership moves ---------------------------------------------------------------------------


def test_i5_finding9_moving_a_topic_into_a_team_needs_rights_on_the_team(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    viewer_id, viewer_token = tenant_a.new_user("team-viewer")
    tenant_a.user.ok(
        "POST",
        "/auth/grantees",
        201,
        params={"objectType": "team", "objectId": tenant_a.team_id},
        json={"id": viewer_id, "type": "user", "role": "viewer"},
    )
    for attacker_api, who in (
        (Api(tenant_a.stack.client, bearer(viewer_token["jwt"])), "a viewer of the team"),
        (tenant_b.user, "another tenant"),
    ):
        topic = attacker_api.ok("POST", "/topics", 201, json={"name": f"moved by {who}", "description": "d"})
        on = {"objectType": "topic", "objectId": topic["id"]}
        before = attacker_api.ok("GET", "/auth/grantees", params=on)
        moved = attacker_api.call(
            "PUT",
            "/auth/grantees",
            params=on,
            json=[{"id": tenant_a.team_id, "type": "team", "role": "owner"}],
        )
        assert_refused(moved, f"{who} moves its topic into A's team")
        assert attacker_api.ok("GET", "/auth/grantees", params=on) == before
        team_topics = tenant_a.user.ok("GET", "/topics")
        assert topic["id"] not in json.dumps(team_topics)


def test_i5_finding10_a_viewer_cannot_reshare_a_prompt(tenant_a: Tenant) -> None:
    viewer_id, viewer_token = tenant_a.new_user("prompt-viewer")
    viewer = Api(tenant_a.stack.client, bearer(viewer_token["jwt"]))
    tenant_a.user.ok(
        "POST",
        "/auth/grantees",
        201,
        params={"objectType": "prompt", "objectId": tenant_a.prompt_id},
        json={"id": viewer_id, "type": "user", "role": "viewer"},
    )
    own_topic = viewer.ok("POST", "/topics", 201, json={"name": "Viewer's topic", "description": "d"})
    assert_refused(viewer.call("PUT", f"/topics/{own_topic['id']}/prompts/{tenant_a.prompt_id}"), "re-shares")
    on = {"objectType": "prompt", "objectId": tenant_a.prompt_id}
    assert own_topic["id"] not in json.dumps(tenant_a.user.ok("GET", "/auth/grantees", params=on))


# --- I6 Grounding ---------------------------------------------------------------------------------


def reply_to(client: WsClient, seconds: float = 180) -> list[dict[str, Any]]:
    """Every message until the convo is idle again after an answer (or `seconds`)."""
    deadline = time.monotonic() + seconds
    heard: list[dict[str, Any]] = []
    running = False
    while time.monotonic() < deadline:
        try:
            message = client.receive(timeout=max(deadline - time.monotonic(), 0.001))
        except TimeoutError:
            break
        heard.append(message)
        if message["type"] == "error":
            break
        if message["type"] == "convoStatus":
            status = message["payload"]["status"]
            running = running or status == "running"
            if running and status == "idle":
                break
    return heard


def test_i6_finding5_topic_defaults_never_ground_on_another_tenants_document(
    tenant_a: Tenant, tenant_b: Tenant, ws_connect: Connect
) -> None:
    b = tenant_b.user
    defaults = {"dataSourceIds": [tenant_a.data_source_id], **REPLY_CONFIG}
    created = b.call(
        "POST", "/topics", json={"name": "Grounded?", "description": "d", "config": {"defaults": defaults}}
    )
    if created.status_code >= 300:
        assert_client_error(created, "a topic whose defaults name A's data source")
        return
    convo = b.ok("POST", "/convos", 201, params={"topicId": created.json()["id"]}, json={"name": "ask"})
    client = ws_connect(convo["id"], headers=b.headers)
    question = f"What is the vault code of tenant a? {tenant_a.secret[:6]}"
    client.send("convoNewStep", {"content": {"text": question}, "config": REPLY_CONFIG}, request_id="ask")
    first = reply_to(client)
    # A regen answers again from the stored step config, which must not be trusted either.
    answers = [
        m["payload"]["stepId"] for m in first if m["type"] == "convoStatus" and m["payload"].get("stepId")
    ]
    assert answers, f"no answer to regenerate: {first}"
    client.send("convoStepRegen", {"id": answers[0]}, request_id="regen")
    heard = json.dumps([*first, *reply_to(client)])
    stored = json.dumps(b.ok("GET", f"/convos/{convo['id']}/steps"))
    for text, where in ((heard, "the answer"), (stored, "the stored steps")):
        assert tenant_a.secret not in text, f"{where} quotes A's document"
        assert f'"dataSourceId": "{tenant_a.data_source_id}"' not in text.replace('":"', '": "'), (
            f"{where} cites A's document"
        )


# --- I7 Cursors and errors ------------------------------------------------------------------------


def decoded_forms(token: str) -> list[str]:
    """The token, and what it decodes to if it is base64 of some kind."""
    forms = [token]
    for decode in (base64.urlsafe_b64decode, base64.b64decode):
        with contextlib.suppress(binascii.Error, ValueError):
            forms.append(decode(token + "=" * (-len(token) % 4)).decode("utf-8", "replace"))
    return forms


def test_i7_finding6_search_cursors_reveal_no_key_and_are_bound_to_their_caller(
    stack: RunningStack, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    b = tenant_b.user
    for n in range(2):  # B has three matching steps, so a page of one has a next one
        write_step(stack, tenant_b.convo_id, b.headers, f"{SHARED_WORD} more from B {n}")
    search = {"searchTerm": SHARED_WORD, "limit": "1"}
    cursors: list[str] = []
    page = b.call("GET", "/steps", params=search)
    for _ in range(10):
        assert page.status_code == 200, page.text
        assert tenant_a.step_id not in page.text and tenant_a.secret not in page.text
        cursor = page.headers.get("x-next-token")
        if not cursor:
            break
        cursors.append(cursor)
        page = b.call("GET", "/steps", params={**search, "nextToken": cursor})
    assert cursors, "three matching steps and a page of one gave no cursor"
    for cursor in cursors:
        for form in decoded_forms(cursor):
            for secret in (
                *tenant_a.ids().values(),
                tenant_b.convo_id,
                tenant_b.step_id,
                '"PK"',
                '"SK"',
                "STEP#",
                "WORD#",
            ):
                assert secret not in form, f"the cursor {cursor!r} reveals {secret!r}"
    # B's cursor in A's hands, and a tampered one: refused as bad input, never B's steps.
    replayed = tenant_a.user.call("GET", "/steps", params={**search, "nextToken": cursors[0]})
    assert replayed.status_code < 500, replayed.text
    if replayed.status_code == 200:
        assert tenant_b.step_id not in replayed.text and tenant_b.convo_id not in replayed.text
    else:
        assert_client_error(replayed, "a cursor replayed by another caller")
    tampered = cursors[0][:-4] + ("AAAA" if not cursors[0].endswith("AAAA") else "BBBB")
    assert_client_error(
        b.call("GET", "/steps", params={**search, "nextToken": tampered}), "a tampered cursor"
    )


def test_i7_finding17_step_errors_reveal_no_provider_url_or_upstream_body(
    stack: RunningStack, tenant_b: Tenant, ws_connect: Connect
) -> None:
    client = ws_connect(tenant_b.convo_id, headers=tenant_b.user.headers)
    config = {**REPLY_CONFIG, "model": "openai:gpt-4o-mini"}
    client.send("convoNewStep", {"content": {"text": "answer through a broken provider"}, "config": config})
    heard = json.dumps(reply_to(client, seconds=60))
    stored = json.dumps(tenant_b.user.ok("GET", f"/convos/{tenant_b.convo_id}/steps"))
    for text, where in ((heard, "the messages"), (stored, "the stored steps")):
        for internal in (UPSTREAM_DETAIL, "10.0.0.7", "127.0.0.1", "http://", "Traceback"):
            assert internal not in text, f"{where} reveal {internal!r}"


def test_i7_finding17_connect_does_not_say_why_a_jwt_failed(
    tenant_a: Tenant, issuer_one: OidcIssuer, ws_connect: Connect
) -> None:
    now = int(time.time())
    tokens = {
        "expired": issuer_one.mint("someone", iat=now - 7200, exp=now - 3600),
        "wrong audience": issuer_one.mint("someone", aud="another-app"),
        "garbage": "not.a.jwt",
    }
    answers = {}
    for name, token in tokens.items():
        with pytest.raises(InvalidStatus) as refusal:
            ws_connect(tenant_a.convo_id, headers=bearer(token))
        response = refusal.value.response
        answers[name] = (response.status_code, bytes(response.body or b""))
    assert len(set(answers.values())) == 1, f"refusals differ by the reason: {answers}"
    assert next(iter(answers.values()))[0] == 401


def test_i7_finding17_query_string_credentials_stay_out_of_the_logs(
    stack: RunningStack, tenant_a: Tenant, ws_connect: Connect
) -> None:
    token = tenant_a.user_token["jwt"]
    client = ws_connect(tenant_a.convo_id, query={"token": token})
    client.send("convoNewStep", {"content": {"text": "logged?"}}, request_id="log")
    client.expect("convoNewStep")
    client.close()
    signature = token.rsplit(".", 1)[1]
    assert signature not in stack.output(), "a ?token= credential reached the stack's logs"


# --- I8 Live access -------------------------------------------------------------------------------


@pytest.mark.parametrize("revocation", ["grant removed", "token revoked"])
def test_i8_finding8_a_revoked_viewer_hears_nothing(
    tenant_a: Tenant, ws_connect: Connect, revocation: str
) -> None:
    a = tenant_a
    viewer_id, viewer_token = a.new_user("socket-viewer")
    on = {"objectType": "convo", "objectId": a.convo_id}
    a.user.ok(
        "POST", "/auth/grantees", 201, params=on, json={"id": viewer_id, "type": "user", "role": "viewer"}
    )
    viewer = ws_connect(a.convo_id, headers=bearer(viewer_token["jwt"]))
    owner = ws_connect(a.convo_id, headers=a.user.headers)
    owner.send("convoNewStep", {"content": {"text": "before the revocation"}}, request_id="before")
    viewer.expect("convoNewStep")  # the viewer hears the convo while it may view it

    if revocation == "grant removed":
        removal = {**on, "granteeId": viewer_id, "granteeType": "user", "granteeRole": "viewer"}
        a.user.ok("DELETE", "/auth/grantees", 204, params=removal)
    else:
        a.sa.ok("DELETE", f"/auth/access-tokens/{viewer_token['id']}", 204)
    time.sleep(REVOCATION_SECONDS)
    # Whatever arrived before the deadline is allowed; nothing may arrive after it.
    with contextlib.suppress(TimeoutError, ConnectionClosed):  # a server that closed the socket is fine
        while True:
            viewer.receive(timeout=0.1)
    for n in range(2):
        owner.send("convoNewStep", {"content": {"text": f"after the revocation {n}"}}, request_id=f"after{n}")
        owner.expect("convoNewStep")
    viewer.nothing_within(REVOCATION_SECONDS)


def test_i8_a_member_removed_from_the_team_connects_no_more(
    tenant_a: Tenant, tenant_b: Tenant, ws_connect: Connect
) -> None:
    """A team member connects to the team's topic's convo (its grants the conditions of the
    connection's write); once removed from the team, the stack, which remembers the convo's chain and
    its hint, refuses them at the handshake as it refuses the other tenant's user, who never was."""
    a = tenant_a
    member_id, member_token = a.new_user("team-member")
    a.user.ok("PUT", f"/teams/{a.team_id}/users/{member_id}", 200, json={})
    ws_connect(a.convo_id, headers=bearer(member_token["jwt"])).close()
    a.user.ok("DELETE", f"/teams/{a.team_id}/users/{member_id}", 204)
    for who in (bearer(member_token["jwt"]), tenant_b.user.headers, bearer(member_token["jwt"])):
        with pytest.raises(InvalidStatus) as refusal:
            ws_connect(a.convo_id, headers=who)
        assert refusal.value.response.status_code == 404


# --- I9 Outbound mail -----------------------------------------------------------------------------


def test_i9_finding12_exports_are_no_mail_relay(stack: RunningStack, tenant_b: Tenant) -> None:
    relay = [f"relay-{n}-{tag()}@evil.example" for n in range(10)]
    for _ in range(3):
        answer = tenant_b.user.call(
            "POST",
            "/exports",
            json={
                "format": "html-email",
                "sources": {"convoIds": [tenant_b.convo_id]},
                "destinations": [{"type": "email", "address": address} for address in relay],
            },
        )
        assert answer.status_code < 500, answer.text
    time.sleep(5)  # the export worker's time to send, if it were going to
    sent = stack.client.get("/_local/mail").json()
    relayed = [m for m in sent if set(m["destinations"]) & set(relay)]
    assert not relayed, f"{len(relayed)} emails went to addresses no user verified"


# --- I10 Cost -------------------------------------------------------------------------------------

EXPENSIVE = {"model": "bedrock:anthropic.claude-3-opus-20240229-v1:0"}
HUGE = {"maxTokens": 32768}


@pytest.mark.parametrize("defaults", [EXPENSIVE, HUGE], ids=["model", "maxTokens"])
def test_i10_finding11_models_and_max_tokens_are_bounded(tenant_b: Tenant, defaults: dict[str, Any]) -> None:
    b = tenant_b.user
    config = {"config": {"defaults": defaults}}
    assert_client_error(
        b.call("POST", "/topics", json={"name": "Costly", "description": "d", **config}), "create"
    )
    assert_client_error(b.call("PATCH", f"/topics/{tenant_b.topic_id}", json=config), "update")


def test_i10_finding11_a_step_cannot_choose_a_model_off_the_list(
    tenant_b: Tenant, ws_connect: Connect
) -> None:
    client = ws_connect(tenant_b.convo_id, headers=tenant_b.user.headers)
    config = {**REPLY_CONFIG, **EXPENSIVE}
    client.send(
        "convoNewStep", {"content": {"text": "answer with opus"}, "config": config}, request_id="costly"
    )
    answer = client.expect("error", timeout=10)
    assert (
        answer["payload"]["code"] and answer["payload"].get("requestId", answer.get("requestId")) == "costly"
    )


# --- I11 Hostile input ----------------------------------------------------------------------------


def deep(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize(
    "method, path",
    [("POST", "/teams"), ("POST", "/topics"), ("POST", "/auth/permissions"), ("PUT", "/auth/grantees")],
)
@pytest.mark.parametrize("body", ["[" * 50000 + "]" * 50000, deep(50000)], ids=["arrays", "objects"])
def test_i11_finding15_deep_nesting_is_a_client_error(
    tenant_b: Tenant, method: str, path: str, body: str
) -> None:
    params = {"objectType": "topic", "objectId": tenant_b.topic_id} if "grantees" in path else {}
    answer = tenant_b.user.call(
        method, path, params=params, content=body, headers={"content-type": "application/json"}
    )
    assert_client_error(answer, f"{method} {path} with deep nesting")


@pytest.mark.parametrize(
    "after",
    ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0000-00-00T00:00:00Z", "9" * 400],
    ids=["year-1-at-+14", "year-9999-at--14", "zeros", "400-digits"],
)
def test_i11_finding15_extreme_dates_are_no_server_error(tenant_b: Tenant, after: str) -> None:
    answer = tenant_b.user.call("GET", f"/convos/{tenant_b.convo_id}/steps", params={"after": after})
    if answer.status_code != 200:
        assert_client_error(answer, f"after={after}")


@pytest.mark.parametrize(
    "name",
    ["nul\u0000byte", "\u202egnp.exe", "zero\u200bwidth\u2066isolate", "x" * 100_000],
    ids=["nul", "right-to-left-override", "bidi-isolate", "100k-characters"],
)
def test_i11_finding17_control_characters_and_huge_names_are_refused_or_removed(
    tenant_b: Tenant, name: str
) -> None:
    answer = tenant_b.user.call("POST", "/teams", json={"name": name})
    if answer.status_code >= 300:
        assert_client_error(answer, "a hostile team name")
        return
    stored = answer.json()["name"]
    for character in ("\u0000", "\u202e", "\u2066"):
        assert character not in stored, f"{character!r} was stored in a name"
    assert len(stored) < 100_000


def test_i11_finding13_a_zip_behind_a_pdf_prefix_is_never_served(tenant_b: Tenant) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("payload.exe", b"MZ" + b"\x00" * 1024)
    disguised = b"%PDF-1.7\n" + archive.getvalue()
    b = tenant_b.user
    uploaded = b.call(
        "POST", "/data-sources/uploads", files={"file": ("report.pdf", disguised, "application/pdf")}
    )
    if uploaded.status_code >= 300:
        assert_client_error(uploaded, "a zip behind %PDF-")
        return
    source_id = uploaded.json()["id"]

    def settled() -> str | None:
        status = b.ok("GET", f"/data-sources/{source_id}")["status"]
        return status if status in ("ready", "failed") else None

    assert until("the disguised upload to be checked", settled) == "failed", "a zip was accepted as a PDF"
    download = b.call("GET", f"/data-sources/{source_id}/download-url")
    assert_client_error(download, "the download of a file that failed its checks")


def test_i11_finding16_an_oversized_step_is_refused_to_its_sender(
    tenant_b: Tenant, ws_connect: Connect
) -> None:
    """A client message just under the 128 KB frame cap, with 100 annotations: what the server adds to the
    step (ids, times, each annotation's type) must not make its broadcast fail in silence."""
    b = tenant_b
    sender = ws_connect(b.convo_id, headers=b.user.headers)
    listener = ws_connect(b.convo_id, headers=b.user.headers)
    annotations = [{"dataSourceId": b.data_source_id, "text": "q" * 700} for _ in range(100)]

    def frame(text: str) -> str:
        message = {"type": "convoNewStep", "payload": {"content": {"text": text}, "annotations": annotations}}
        return json.dumps({**message, "requestId": "big"}, separators=(",", ":"))

    sender.send_raw(frame("x" * (FRAME_BYTES - 64 - len(frame("").encode()))))
    try:
        answer = sender.receive(timeout=15)
    except TimeoutError:
        pytest.fail("the sender of an oversized step heard nothing: neither an error nor its broadcast")
    if answer["type"] == "error":
        assert answer["payload"]["code"], answer
        return
    # Accepted: then every subscriber got it, in one frame.
    assert answer["type"] == "convoNewStep", answer
    assert listener.expect("convoNewStep", timeout=15)["payload"]["id"] == answer["payload"]["id"]
