"""AWS calls per operation: runs one representative request through every REST function against a
fresh moto account and prints the AWS API calls it made (the budgets the tests assert).

    python -m bench.aws_calls
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "functions"), str(ROOT / "layers" / "kallo")]
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")

from kallo.auth.principal import Principal  # noqa: E402
from kallo.store.keys import Ref  # noqa: E402
from tests.support import world  # noqa: E402
from tests.support.api import invoke  # noqa: E402
from tests.support.aws import CallCounter, fresh_account  # noqa: E402


@dataclass
class Scene:
    """What a scenario sets up: the service account, a member of its team, and their objects."""

    service: Principal
    alice: Principal
    bob: Principal
    reader: Principal
    team: Ref
    topic: Ref
    convo: Ref
    prompt: Ref
    data_source: Ref


def build_scene() -> Scene:
    service, _ = world.make_service_account()
    alice = world.make_user(email="alice@example.com", admin=service)
    bob = world.make_user(email="bob@example.com", admin=service)
    # Exports go only to verified addresses (I9): a person registered with their own provider.
    reader = world.make_user(email="reader@example.com")
    team = world.make_object("team", world.ref_of(alice))
    world.grant(team, bob, "member")
    world.grant(team, reader, "member")
    topic = world.make_object("topic", team, description="", config={"defaults": {}}, dataSourceIds=[])
    convo = world.make_object("convo", topic, topicId=topic.id)
    prompt = world.make_object("prompt", world.ref_of(alice), text="Be brief.")
    data_source = _ready_data_source(team, alice, linked_to=convo)
    return Scene(service, alice, bob, reader, team, topic, convo, prompt, data_source)


def _ready_data_source(owner: Ref, uploader: Principal, *, linked_to: Ref) -> Ref:
    """A processed upload owned by `owner`, its bytes in S3, linked to a convo."""
    from kallo.store import blobs, objects

    text = b"The pier closes at dusk."
    ref, location = world.make_data_source(
        owner, createdBy=uploader.user_id, mimeType="text/plain", size=len(text), status="ready"
    )
    objects.update(ref, {"versionId": blobs.put(location, text, content_type="text/plain")})
    world.grant(ref, linked_to, "dependent")
    return ref


def _running_answer(scene: Scene) -> str:
    """An answer the LLM step worker is writing in the scene's convo (its id)."""
    from kallo.clock import now_iso
    from kallo.models.steps import Step
    from kallo.store import steps

    at = now_iso()
    step = Step(
        id=str(uuid4()),
        convoId=scene.convo.id,
        authorType="llm",
        status="running",
        createdAt=at,
        updatedAt=at,
    )
    return steps.add(step.record())["id"]


def _answer(scene: Scene, *, rated_by: Principal | None = None, model: str = "embedded:smollm2") -> str:
    """An answer in the scene's convo (the id), to a question of Bob's; rated by `rated_by` if given."""
    from kallo.authz.access import Access
    from kallo.services import feedback
    from tests.support.ws import llm_step

    question = world.add_user_step(scene.convo, scene.bob, "Where is the pier?")
    step_id = llm_step(scene.convo.id, question["id"], config={"model": model})["id"]
    if rated_by is not None:
        feedback.set_feedback(Access(rated_by), step_id, "like")
    return step_id


def _suggesting_answer(scene: Scene) -> str:
    """An answer of a scripted model that suggests three questions (no model of the stack is called)."""
    from kallo.llm import registry
    from tests.support.scripted_llm import Script, ScriptedLLM

    registry.register("scripted", ScriptedLLM(Script(["When does it open?\nIs it far?\nCan I fish?"])))
    return _answer(scene, model="scripted:bench")


Request = tuple[str, Principal, dict[str, Any]]


def _app_key(scene: Scene) -> str:
    """An app key of the scene's topic; its id."""
    from kallo.authz.access import Access
    from kallo.models.app_keys import AppKeyCreate
    from kallo.services import app_keys

    return app_keys.create_app_key(Access(scene.alice), scene.topic.id, AppKeyCreate(name="website"))["id"]


SCENARIOS: dict[str, Callable[[Scene], Request]] = {
    "Create Access Token": lambda s: (
        "auth.create_access_token",
        s.service,
        {
            "body": {
                "userId": s.alice.user_id,
                "scopeObjects": [{"type": "team", "id": s.team.id}],
                "expiresAt": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
            }
        },
    ),
    "Query Grantees": lambda s: (
        "auth.query_grantees",
        s.alice,
        {"query": {"objectType": "team", "objectId": s.team.id}},
    ),
    "Add Grantee": lambda s: (
        "auth.add_grantee",
        s.alice,
        {
            "query": {"objectType": "topic", "objectId": s.topic.id},
            "body": {"id": s.bob.user_id, "type": "user", "role": "viewer"},
        },
    ),
    "Query Permissions": lambda s: (
        "auth.query_permissions",
        s.bob,
        {"body": {"objectType": "convo", "objectId": s.convo.id, "permissions": ["can_view", "can_edit"]}},
    ),
    "Get/Create a User": lambda s: (
        "users.get_or_create_user",
        s.service,
        {"query": {"userId": s.alice.user_id}},
    ),
    "Update a User": lambda s: (
        "users.update_user",
        s.alice,
        {"path": {"userId": s.alice.user_id}, "body": {"displayName": "Alice"}},
    ),
    "Get Related Users": lambda s: (
        "users.get_related_users",
        s.alice,
        {"path": {"userId": s.alice.user_id}},
    ),
    "Get Dashboard User Stats": lambda s: ("users.get_user_stats", s.alice, {"query": {}}),
    "Get Invitations": lambda s: (
        "users.get_invitations",
        s.alice,
        {"query": {"objectType": "team", "objectId": s.team.id}},
    ),
    "Query Teams": lambda s: ("teams.query_teams", s.bob, {"query": {}}),
    "Create a Team": lambda s: ("teams.create_team", s.alice, {"body": {"name": "Another team"}}),
    "Update a Team": lambda s: (
        "teams.update_team",
        s.alice,
        {"path": {"teamId": s.team.id}, "body": {"name": "T"}},
    ),
    "Get a Team's Users": lambda s: ("teams.get_team_users", s.bob, {"path": {"teamId": s.team.id}}),
    "Add a Team User": lambda s: (
        "teams.add_team_user",
        s.alice,
        {"path": {"teamId": s.team.id, "userId": s.bob.user_id}},
    ),
    "Health Check": lambda s: ("health.health_check", None, {"path": {"apiName": "core-api"}}),
    "Query Convos": lambda s: (
        "convos.query_convos",
        s.bob,
        {"query": {"topicId": s.topic.id, "includeLatestStep": "1"}},
    ),
    "Create a Convo": lambda s: (
        "convos.create_convo",
        s.bob,
        {"query": {"topicId": s.topic.id}, "body": {}},
    ),
    "Get a Convo": lambda s: ("convos.get_convo", s.bob, {"path": {"convoId": s.convo.id}}),
    "Patch a Convo": lambda s: (
        "convos.patch_convo",
        s.alice,
        {"path": {"convoId": s.convo.id}, "body": {"name": "Renamed"}},
    ),
    "Get Topic Config": lambda s: ("convos.get_topic_config", s.bob, {"path": {"convoId": s.convo.id}}),
    "Query Convo Steps": lambda s: ("convos.query_convo_steps", s.bob, {"path": {"convoId": s.convo.id}}),
    "Stop Step": lambda s: ("steps.stop_step", s.bob, {"path": {"stepId": _running_answer(s)}}),
    "Query Convo Users": lambda s: (
        "convos.query_convo_users",
        s.bob,
        {"path": {"convoId": s.convo.id}, "query": {"all": "1"}},
    ),
    "Query Topics": lambda s: ("topics.query_topics", s.bob, {"query": {}}),
    "Create New Topic": lambda s: (
        "topics.create_topic",
        s.alice,
        {"query": {"teamId": s.team.id}, "body": {"name": "Trees", "description": "About trees"}},
    ),
    "Update Topic": lambda s: (
        "topics.update_topic",
        s.alice,
        {"path": {"topicId": s.topic.id}, "body": {"description": "Updated"}},
    ),
    "Set Topic Prompt": lambda s: (
        "topics.set_topic_prompt",
        s.alice,
        {"path": {"topicId": s.topic.id, "promptId": s.prompt.id}},
    ),
    "Remove Topic Prompt": lambda s: (
        "topics.remove_topic_prompt",
        s.alice,
        {"path": {"topicId": s.topic.id}},
    ),
    "Query Prompts": lambda s: ("prompts.query_prompts", s.alice, {"query": {}}),
    "Create Prompt": lambda s: (
        "prompts.create_prompt",
        s.alice,
        {"query": {}, "body": {"text": "Answer in French."}},
    ),
    "Update Prompt": lambda s: (
        "prompts.update_prompt",
        s.alice,
        {"path": {"promptId": s.prompt.id}, "body": {"text": "Answer in German."}},
    ),
    "Delete Prompt": lambda s: ("prompts.delete_prompt", s.alice, {"path": {"promptId": s.prompt.id}}),
    "Delete a Convo": lambda s: ("convos.delete_convo", s.alice, {"path": {"convoId": s.convo.id}}),
    "Delete Topic": lambda s: ("topics.delete_topic", s.alice, {"path": {"topicId": s.topic.id}}),
    "Upload New File": lambda s: ("data_sources.upload_file", s.alice, {"query": {"teamId": s.team.id}}),
    "Query Data Sources": lambda s: (
        "data_sources.query_data_sources",
        s.bob,
        {"query": {"convoId": s.convo.id}},
    ),
    "Get a Data Source": lambda s: (
        "data_sources.get_data_source",
        s.bob,
        {"path": {"dataSourceId": s.data_source.id}},
    ),
    "Update a Data Source": lambda s: (
        "data_sources.update_data_source",
        s.alice,
        {"path": {"dataSourceId": s.data_source.id}, "body": {"name": "pier.txt"}},
    ),
    "Generate Signed URL for Download": lambda s: (
        "data_sources.get_download_url",
        s.bob,
        {"path": {"dataSourceId": s.data_source.id}},
    ),
    "Generate Summary": lambda s: (
        "data_sources.generate_summary",
        s.bob,
        {"path": {"dataSourceId": s.data_source.id}},
    ),
    "Add Topic Data Source": lambda s: (
        "data_sources.add_topic_data_source",
        s.alice,
        {"path": {"topicId": s.topic.id, "dataSourceId": s.data_source.id}},
    ),
    "Remove Convo Data Source": lambda s: (
        "convos.remove_convo_data_source",
        s.alice,
        {"path": {"convoId": s.convo.id, "dataSourceId": s.data_source.id}},
    ),
    "Export Data": lambda s: (
        "convos.export_data",
        s.reader,
        {
            "body": {
                "format": "html-email",
                "sources": {"convoIds": [s.convo.id]},
                "destinations": [{"type": "email", "address": "reader@example.com"}],
            }
        },
    ),
    "Delete a Data Source": lambda s: (
        "data_sources.delete_data_source",
        s.alice,
        {"path": {"dataSourceId": s.data_source.id}},
    ),
    "Set Step Feedback": lambda s: ("steps.set_step_feedback", s.bob, {"path": {"stepId": _answer(s)}}),
    "Remove Step Feedback": lambda s: (
        "steps.remove_step_feedback",
        s.bob,
        {"path": {"stepId": _answer(s, rated_by=s.bob)}},
    ),
    "Get Step Suggestions": lambda s: (
        "steps.get_step_suggestions",
        s.bob,
        {"path": {"stepId": _suggesting_answer(s)}},
    ),
    "Create App Key": lambda s: (
        "topics.create_app_key",
        s.alice,
        {"path": {"topicId": s.topic.id}, "body": {"name": "website"}},
    ),
    "Query App Keys": lambda s: ("topics.query_app_keys", s.alice, {"path": {"topicId": s.topic.id}}),
    "Revoke App Key": lambda s: (
        "topics.revoke_app_key",
        s.alice,
        {"path": {"topicId": s.topic.id, "appKeyId": _app_key(s)}},
    ),
    "Remove a Team User": lambda s: (
        "teams.remove_team_user",
        s.bob,
        {"path": {"teamId": s.team.id, "userId": s.bob.user_id}},
    ),
}


# The compatibility surfaces, through their Lambda handlers as API Gateway invokes them (a service account
# of its own calls them with its key; the key's lookup is counted, as on a cold container).
SURFACE_SCENARIOS: dict[str, Callable[[Scene, str], tuple[str, str, str, dict[str, Any]]]] = {
    "Pieces: create a conversation": lambda s, key: (
        "compat.pieces",
        "POST",
        "/pieces/conversations/create",
        {"body": {"type": "COPILOT", "name": "Bench"}},
    ),
    "Pieces: conversation identifiers": lambda s, key: (
        "compat.pieces",
        "GET",
        "/pieces/conversations/identifiers",
        {},
    ),
    "Pieces: conversations": lambda s, key: ("compat.pieces", "GET", "/pieces/conversations", {}),
}
SURFACE_RESOURCES = {"compat.pieces": "/pieces/{proxy+}"}


def measure_surface(name: str) -> tuple[int, int, str]:
    from tests.support.api import call_surface

    with fresh_account():
        scene = build_scene()
        _, key = world.make_service_account("bench")
        handler, method, path, request = SURFACE_SCENARIOS[name](scene, key)
        counter = CallCounter()
        with counter.installed():
            result = call_surface(
                handler,
                method,
                path,
                resource=SURFACE_RESOURCES[handler],
                headers={"x-api-key": key},
                **request,
            )
        detail = ", ".join(f"{op.split(':')[1]} x{n}" for op, n in sorted(counter.calls.items()))
        return result.status, counter.total, detail


# The WebSocket side (API Gateway's own calls are not counted). A scene's team member (bob) and its owner
# (alice, who created the convo through the service and so holds a grant on it) hold access tokens; a
# convo message runs with two other connections on the convo. `RECHECK` verdicts are kept as in a
# conversation (3 s) unless a scenario lets them expire.
WS_SCENARIOS = (
    "$connect: holder of a grant on the convo, credential kept",
    "$connect: team member without a grant of their own",
    "convoNewStep, no reply: a connection's first message",
    "convoNewStep, no reply: next message within 3 s",
    "convoNewStep, no reply: next message after 3 s",
    "convoNewStep with a reply: next message within 3 s",
    "LLM step worker: a short answer",
)


def _token(scene: Scene, user: Principal) -> str:
    from kallo.authz.access import Access
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
    return access_tokens.create_access_token(Access(scene.service), data)["jwt"]


def measure_ws(name: str) -> tuple[int, int, str]:
    from kallo import realtime
    from kallo.authz.access import Access
    from kallo.jobs import ReplyJob
    from kallo.llm import registry
    from kallo.models.convos import ConvoCreate
    from kallo.realtime import audience
    from kallo.services import convos, replies
    from tests.support import ws
    from tests.support.scripted_llm import Script, ScriptedLLM

    with fresh_account():
        scene = build_scene()
        realtime.reset()
        ws.Sockets().install()
        # A slow machine must not add a check (nor a chain's read between a check and its broadcast).
        audience.RECHECK_SECONDS = audience.CHAIN_SECONDS = 600.0
        convo_id = convos.create_convo(Access(scene.alice), ConvoCreate(), topic_id=scene.topic.id)["id"]
        counter = CallCounter()

        if name.startswith("$connect"):
            token = _token(scene, scene.alice if "holder" in name else scene.bob)
            headers = {"Host": "localhost", "Authorization": f"Bearer {token}"}
            # The credential is read once and kept (a minute).
            ws.invoke("connect", "warm=", headers=headers, query={"convoId": str(uuid4())})
            with counter.installed():
                status = ws.invoke("connect", "c1=", headers=headers, query={"convoId": convo_id})[
                    "statusCode"
                ]
        else:
            mine = ws.connect(scene.alice, convo_id)
            ws.connect(scene.bob, convo_id)
            ws.connect(scene.bob, convo_id)
            say = {"content": {"text": "Where is the pier?"}}
            if "first" not in name:
                ws.send(mine, "convoNewStep", say)
            if "after 3 s" in name:
                audience.forget()
            if name.startswith("LLM"):
                registry.register("scripted", ScriptedLLM(Script(["The pier", " closes at dusk."])))
                ws.send(mine, "convoNewStep", {**say, "config": {"reply": True, "model": "scripted:bench"}})
                (job,) = ws.reply_jobs()
                with counter.installed():
                    replies.answer(ReplyJob.model_validate(job))
                status = 200
            else:
                message = {**say, "config": {"reply": True}} if "with a reply" in name else say
                with counter.installed():
                    status = ws.send(mine, "convoNewStep", message)["statusCode"]
        detail = ", ".join(f"{op.split(':')[1]} x{n}" for op, n in sorted(counter.calls.items()))
        return status, counter.total, detail


def measure(name: str) -> tuple[int, int, str]:
    with fresh_account():
        scene = build_scene()
        handler, principal, request = SCENARIOS[name](scene)
        counter = CallCounter()
        with counter.installed():
            result = invoke(handler, principal, **request)
        detail = ", ".join(f"{op.split(':')[1]} x{n}" for op, n in sorted(counter.calls.items()))
        return result.status, counter.total, detail


def main() -> None:
    only = sys.argv[1:]
    if only == ["--ws"]:
        for name in WS_SCENARIOS:
            status, total, detail = measure_ws(name)
            print(f"{name}  {status}  {total}  {detail}")
        return
    width = max(map(len, SCENARIOS))
    print(f"{'operation'.ljust(width)}  status  calls  detail")
    for name in SCENARIOS:
        status, total, detail = measure(name)
        print(f"{name.ljust(width)}  {status:6d}  {total:5d}  {detail}")
    for name in SURFACE_SCENARIOS:
        status, total, detail = measure_surface(name)
        print(f"{name.ljust(width)}  {status:6d}  {total:5d}  {detail}")
    width = max(map(len, WS_SCENARIOS))
    print(f"\n{'WebSocket'.ljust(width)}  status  calls  detail")
    for name in WS_SCENARIOS:
        status, total, detail = measure_ws(name)
        print(f"{name.ljust(width)}  {status:6d}  {total:5d}  {detail}")


if __name__ == "__main__":
    main()
