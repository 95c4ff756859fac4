"""The steps service (kallo.services.steps) with a fake broadcast: new steps, groups, group additions,
deletions, regens, updates and the word search, with their permission rules and reply jobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import pytest
from pydantic import ValidationError

from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.errors import BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, Unprocessable
from kallo.models.convos import ConvoCreate
from kallo.models.topics import TopicCreate
from kallo.models.ws import Annotation, NewStep, NewStepGroup, StepContent, StepGroupAddition, StepRegen
from kallo.services import convos, topics
from kallo.services import search as search_service
from kallo.services import steps as service
from kallo.store import grants, objects, search, steps
from kallo.store.keys import Ref
from tests.support.world import grant, make_object, make_user, ref_of
from tests.support.ws import llm_step, reply_jobs


@dataclass
class Heard:
    """A fake broadcast: what each convo was told, in order."""

    messages: list[tuple[str, str, dict[str, Any], str | None]] = field(default_factory=list)

    def __call__(self, convo_id: str, message_type: str, payload: Any, request_id: str | None = None) -> None:
        self.messages.append((convo_id, message_type, payload, request_id))

    def of(self, message_type: str) -> list[dict[str, Any]]:
        return [p for _, t, p, _ in self.messages if t == message_type]

    @property
    def types(self) -> list[str]:
        return [t for _, t, _, _ in self.messages]


@pytest.fixture
def heard() -> Heard:
    return Heard()


def actor(principal: Principal, heard: Heard, request_id: str | None = "r1") -> service.Actor:
    # A fresh Access per call, as each request gets one.
    return service.Actor(Access(principal), request_id, heard)


# On the template's allow-list (AllowedModels), which the `aws` fixture's environment carries.
ALLOWED = "bedrock:amazon.nova-lite-v1:0"


def new(text: str = "Plan three days in Lisbon", **fields: Any) -> NewStep:
    return NewStep.model_validate({"content": {"text": text}, **fields})


@dataclass
class World:
    owner: Principal
    participant: Principal
    viewer: Principal
    outsider: Principal
    convo: str


@pytest.fixture
def world(aws) -> World:
    owner, participant, viewer, outsider = make_user(), make_user(), make_user(), make_user()
    convo = convos.create_convo(Access(owner), ConvoCreate())["id"]
    grant(Ref("convo", convo), participant, "participant")
    grant(Ref("convo", convo), viewer, "viewer")
    return World(owner, participant, viewer, outsider, convo)


# -- new steps ----------------------------------------------------------------------------------------


def test_a_new_step_is_stored_indexed_and_broadcast(world, heard):
    stored = service.add_step(actor(world.owner, heard), world.convo, new(config={"model": ALLOWED}))
    assert stored["convoId"] == world.convo and stored["authorType"] == "user"
    assert stored["authorId"] == world.owner.user_id and stored["status"] == "completed"
    assert stored["isAlternate"] is False and "groupId" not in stored
    assert stored["config"] == {"model": ALLOWED} and stored["createdAt"] == stored["updatedAt"]
    assert heard.messages == [(world.convo, "convoNewStep", stored, "r1")]
    assert steps.get(stored["id"]) == stored
    assert objects.get(Ref("convo", world.convo))["latestStep"] == stored
    assert [p["stepId"] for p in search.postings("lisbon", limit=5).items] == [stored["id"]]
    assert reply_jobs() == []  # no reply asked for


def test_a_step_asking_for_a_reply_queues_a_job_in_the_convos_message_group(world, heard):
    stored = service.add_step(
        actor(world.participant, heard), world.convo, new(config={"reply": True, "temperature": 0.3})
    )
    (job,) = reply_jobs()
    assert job["jobId"] == stored["id"] == job["replyToStepId"] == job["deduplicationId"]
    assert job["convoId"] == world.convo == job["messageGroupId"]
    assert job["config"] == {"reply": True, "temperature": 0.3}
    assert job["requestedBy"] == world.participant.user_id and job["llmStepId"] not in (None, stored["id"])
    assert job.get("createdAt") is None


def _topic_convo(owner: Principal, defaults: dict[str, Any]) -> str:
    topic = topics.create_topic(
        Access(owner),
        TopicCreate.model_validate({"name": "Trips", "description": "", "config": {"defaults": defaults}}),
    )
    return convos.create_convo(Access(owner), ConvoCreate(), topic_id=topic["id"])["id"]


def test_a_topic_default_reply_answers_steps_that_leave_reply_out(world, heard):
    """`config.defaults.reply: true` of the convo's topic: a step without `reply` gets an answer, an
    explicit `reply: false` wins; steps of a group and a group addition follow the same rule."""
    convo = _topic_convo(world.owner, {"reply": True, "temperature": 0.2})
    me = actor(world.owner, heard)
    asked = service.add_step(me, convo, new())
    told = service.add_step(me, convo, new(config={"reply": False}))
    group = service.add_step_group(
        me,
        convo,
        NewStepGroup.model_validate(
            {
                "steps": [
                    {"content": {"text": "a"}, "config": {"model": ALLOWED}},
                    {"content": {"text": "b"}, "config": {"reply": False}},
                ]
            }
        ),
    )
    added = service.add_to_group(
        me,
        convo,
        StepGroupAddition.model_validate({"primaryStepId": told["id"], "step": {"content": {"text": "c"}}}),
    )
    jobs = reply_jobs()
    assert [j["replyToStepId"] for j in jobs] == [asked["id"], group[0]["id"], added["id"]]
    assert told["id"] not in {j["replyToStepId"] for j in jobs}
    # The job carries the step's own config; the worker lays it over the topic's defaults.
    assert [j["config"] for j in jobs] == [{}, {"model": ALLOWED}, {}]


def test_without_a_topic_default_a_step_must_ask_for_its_reply(world, heard):
    for defaults in ({}, {"reply": False}):
        convo = _topic_convo(world.owner, defaults)
        service.add_step(actor(world.owner, heard), convo, new())
    service.add_step(actor(world.owner, heard), world.convo, new())  # a convo no topic owns
    assert reply_jobs() == []


def test_server_owned_fields_are_ignored_and_a_foreign_convo_id_refused(world, heard):
    payload = new(
        authorType="llm",
        authorId=str(uuid4()),
        status="running",
        isAlternate=True,
        createdAt="2020-01-01T00:00:00Z",
        convoId=world.convo,
    )
    stored = service.add_step(actor(world.owner, heard), world.convo, payload)
    assert stored["authorType"] == "user" and stored["authorId"] == world.owner.user_id
    assert stored["status"] == "completed" and stored["isAlternate"] is False
    assert stored["createdAt"] > "2026"
    with pytest.raises(Unprocessable):
        service.add_step(actor(world.owner, heard), world.convo, new(convoId=str(uuid4())))


def test_a_viewer_cannot_write_and_an_outsider_cannot_see(world, heard):
    with pytest.raises(Forbidden) as refused:
        service.add_step(actor(world.viewer, heard), world.convo, new())
    assert refused.value.code == "permission_denied"
    with pytest.raises(NotFound):
        service.add_step(actor(world.outsider, heard), world.convo, new())
    with pytest.raises(NotFound):
        service.add_step(actor(world.owner, heard), str(uuid4()), new())
    assert heard.messages == [] and steps.of_convo(world.convo).items == []


def test_a_writer_without_a_grant_of_their_own_becomes_a_participant(aws, heard):
    owner, member = make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, member, "member")
    topic = make_object("topic", team)
    convo = convos.create_convo(Access(owner), ConvoCreate(), topic_id=topic.id)["id"]
    assert convos.query_convos(Access(member))[0] == []
    service.add_step(actor(member, heard), convo, new())
    service.add_step(actor(member, heard), convo, new("again"))
    assert grants.get(Ref("convo", convo), ref_of(member))["role"] == "participant"
    assert [c["id"] for c in convos.query_convos(Access(member))[0]] == [convo]
    # The creator's own grant (admin) is left alone.
    service.add_step(actor(owner, heard), convo, new())
    assert grants.get(Ref("convo", convo), ref_of(owner))["role"] == "admin"


def test_named_data_sources_must_be_visible_to_the_writer(world, heard):
    mine = make_object("data_source", ref_of(world.owner))
    theirs = make_object("data_source", ref_of(world.outsider))
    service.add_step(actor(world.owner, heard), world.convo, new(config={"dataSourceIds": [mine.id]}))
    for payload in (
        new(config={"dataSourceIds": [mine.id, theirs.id]}),
        new(files=[{"dataSourceId": theirs.id, "name": "a.pdf", "mimeType": "application/pdf"}]),
    ):
        with pytest.raises(NotFound):
            service.add_step(actor(world.owner, heard), world.convo, payload)
    assert len(steps.of_convo(world.convo).items) == 1


def test_an_empty_step_is_refused_and_an_update_cannot_empty_one(world, heard):
    for empty in ({"content": {}}, {"content": {"text": "  \n"}}, {"content": {"text": ""}, "files": []}):
        for message, payload in (
            (NewStep, empty),
            (NewStepGroup, {"steps": [{"content": {"text": "x"}}, empty]}),
            (StepGroupAddition, {"primaryStepId": str(uuid4()), "step": empty}),
        ):
            with pytest.raises(ValidationError, match="a step needs text or files"):
                message.model_validate(payload)
    # A file alone says something: its step needs no text.
    source = make_object("data_source", ref_of(world.owner))
    attached = {"dataSourceId": source.id, "name": "plan.pdf", "mimeType": "application/pdf"}
    with_file = service.add_step(actor(world.owner, heard), world.convo, new("", files=[attached]))
    assert with_file["content"] == {"text": ""} and with_file["files"] == [attached]
    written = service.add_step(actor(world.owner, heard), world.convo, new())
    with pytest.raises(Unprocessable, match="a step needs text or files"):
        service.update_step(actor(world.owner, heard), written["id"], content=StepContent(text=" "))
    assert steps.get(written["id"])["content"] == written["content"]
    # ...but the step with a file may lose its text.
    emptied = service.update_step(actor(world.owner, heard), with_file["id"], content=StepContent(text=""))
    assert emptied["content"] == {"text": ""}


@pytest.mark.parametrize("chosen", [str(uuid4()), None])
def test_a_client_cannot_choose_a_step_id(chosen):
    # I4 (ids): every message that makes a step refuses an id, even a null one.
    step = {"id": chosen, "content": {"text": "hi"}}
    for message, payload in (
        (NewStep, step),
        (NewStepGroup, {"steps": [{"content": {"text": "x"}}, step]}),
        (StepGroupAddition, {"primaryStepId": str(uuid4()), "step": step}),
    ):
        with pytest.raises(ValidationError) as refused:
            message.model_validate(payload)
        assert [e["type"] for e in refused.value.errors()] == ["id_not_allowed"]


def test_a_citation_of_another_tenants_data_source_is_not_found(world, heard):
    """I6: a user's annotations may cite only data sources the writer can view, on a new step and on an
    update; nothing is stored or heard."""
    theirs = make_object("data_source", ref_of(world.outsider)).id
    cited = {"dataSourceId": theirs, "text": "their secret"}
    with pytest.raises(NotFound):
        service.add_step(actor(world.owner, heard), world.convo, new(annotations=[cited]))
    mine = service.add_step(actor(world.owner, heard), world.convo, new())
    heard.messages.clear()
    with pytest.raises(NotFound):
        service.update_step(
            actor(world.owner, heard), mine["id"], annotations=[Annotation.model_validate(cited)]
        )
    assert [s["id"] for s in steps.of_convo(world.convo).items] == [mine["id"]]
    assert steps.get(mine["id"])["annotations"] == [] and heard.messages == []


def test_a_step_too_large_for_a_frame_is_refused_before_it_is_stored(world, heard):
    """A step is broadcast whole: 100 annotations of 4 KB (400 KB) would be stored and then reach no
    one. It is refused with payload_too_large, and nothing is stored, heard or queued."""
    source = make_object("data_source", ref_of(world.owner)).id
    huge = [{"dataSourceId": source, "text": "x" * 4096}] * 100
    with pytest.raises(PayloadTooLarge):
        service.add_step(
            actor(world.owner, heard), world.convo, new(annotations=huge, config={"reply": True})
        )
    quoted = '"' * 60_000  # 60 KB of text, 120 KB once escaped in JSON
    with pytest.raises(PayloadTooLarge):
        service.add_step(actor(world.owner, heard), world.convo, new(quoted))
    stored = service.add_step(actor(world.owner, heard), world.convo, new())
    heard.messages.clear()
    with pytest.raises(PayloadTooLarge):
        service.update_step(
            actor(world.owner, heard),
            stored["id"],
            annotations=[Annotation.model_validate(a) for a in huge],
        )
    assert [s["id"] for s in steps.of_convo(world.convo).items] == [stored["id"]]
    assert steps.get(stored["id"])["annotations"] == [] and heard.messages == [] and reply_jobs() == []


def test_a_message_over_the_frame_limit_is_not_broadcast_and_the_sender_hears(world, heard):
    with pytest.raises(PayloadTooLarge):
        actor(world.owner, heard).publish(world.convo, "convoStepUpdate", {"delta": "x" * (130 * 1024)})
    assert heard.messages == []


@pytest.mark.parametrize(
    ("config", "code"),
    [
        ({"model": "bedrock:anthropic.claude-3-opus-20240229-v1:0"}, "unknown_model"),
        ({"model": "nowhere:model"}, "unknown_model"),
        ({"maxTokens": 32768}, "max_tokens_too_large"),
        ({"model": ALLOWED, "maxTokens": 8192}, "max_tokens_too_large"),
    ],
)
def test_a_config_off_the_allow_list_or_over_the_cap_is_refused(world, heard, config, code):
    """I10: on a new step, a group, a group addition and a regen alike; nothing is stored or queued."""
    question = service.add_step(actor(world.owner, heard), world.convo, new())
    answer = llm_step(world.convo, question["id"], config={"model": ALLOWED})
    attempts = [
        lambda: service.add_step(
            actor(world.owner, heard), world.convo, new(config={**config, "reply": True})
        ),
        lambda: service.add_step_group(
            actor(world.owner, heard),
            world.convo,
            NewStepGroup.model_validate({"steps": [{"content": {"text": "a"}, "config": config}]}),
        ),
        lambda: service.add_to_group(
            actor(world.owner, heard),
            world.convo,
            StepGroupAddition.model_validate(
                {"primaryStepId": question["id"], "step": {"content": {"text": "b"}, "config": config}}
            ),
        ),
        lambda: service.regen_step(
            actor(world.owner, heard),
            world.convo,
            StepRegen.model_validate({"id": answer["id"], "config": config}),
        ),
    ]
    for attempt in attempts:
        with pytest.raises(Unprocessable) as refused:
            attempt()
        assert refused.value.code == code
    assert len(steps.of_convo(world.convo).items) == 2 and reply_jobs() == []


# -- groups -------------------------------------------------------------------------------------------


def test_a_step_group_shares_one_group_id_the_first_is_primary(world, heard):
    group = NewStepGroup.model_validate(
        {
            "steps": [
                {"content": {"text": "short answer"}, "config": {"reply": True}},
                {"content": {"text": "long answer"}},
                {"content": {"text": "funny answer"}, "config": {"reply": True}},
            ]
        }
    )
    made = service.add_step_group(actor(world.owner, heard), world.convo, group)
    group_ids = {s["groupId"] for s in made}
    assert len(group_ids) == 1 and None not in group_ids
    assert [s["isAlternate"] for s in made] == [False, True, True]
    assert [s["createdAt"] for s in made] == sorted({s["createdAt"] for s in made})
    assert heard.of("convoNewStep") == made
    assert [s["id"] for s in steps.group(world.convo, made[0]["groupId"])] == [s["id"] for s in made]
    assert objects.get(Ref("convo", world.convo))["latestStep"]["id"] == made[0]["id"]
    assert [j["replyToStepId"] for j in reply_jobs()] == [made[0]["id"], made[2]["id"]]
    assert len({s["id"] for s in made}) == 3


def test_a_group_addition_gives_a_lone_primary_a_group_first(world, heard):
    primary = service.add_step(actor(world.owner, heard), world.convo, new())
    heard.messages.clear()
    addition = StepGroupAddition.model_validate(
        {"primaryStepId": primary["id"], "step": {"content": {"text": "or Porto"}, "config": {"reply": True}}}
    )
    added = service.add_to_group(actor(world.participant, heard), world.convo, addition)
    assert heard.types == ["convoStepUpdate", "convoNewStep"]
    (update,) = heard.of("convoStepUpdate")
    assert update == {"id": primary["id"], "groupId": added["groupId"]}
    assert added["isAlternate"] is True and added["authorId"] == world.participant.user_id
    members = steps.group(world.convo, added["groupId"])
    assert [(m["id"], m["isAlternate"]) for m in members] == [(primary["id"], False), (added["id"], True)]
    assert steps.get(primary["id"])["groupId"] == added["groupId"]
    assert [j["replyToStepId"] for j in reply_jobs()] == [added["id"]]
    # The group exists now: a second addition joins it without an update.
    heard.messages.clear()
    again = StepGroupAddition.model_validate(
        {"primaryStepId": primary["id"], "step": {"content": {"text": "x"}}}
    )
    third = service.add_to_group(actor(world.owner, heard), world.convo, again)
    assert heard.types == ["convoNewStep"] and third["groupId"] == added["groupId"]
    assert objects.get(Ref("convo", world.convo))["latestStep"]["id"] == primary["id"]


def test_a_group_addition_needs_a_visible_primary_of_the_convo(world, heard):
    elsewhere = convos.create_convo(Access(world.owner), ConvoCreate())["id"]
    foreign = service.add_step(actor(world.owner, heard), elsewhere, new())
    for primary_id in (str(uuid4()), foreign["id"]):
        addition = StepGroupAddition.model_validate(
            {"primaryStepId": primary_id, "step": {"content": {"text": "x"}}}
        )
        with pytest.raises(NotFound):
            service.add_to_group(actor(world.owner, heard), world.convo, addition)
    addition = StepGroupAddition.model_validate(
        {"primaryStepId": foreign["id"], "step": {"content": {"text": "x"}}}
    )
    with pytest.raises(Forbidden):
        service.add_to_group(actor(world.viewer, heard), world.convo, addition)


# -- deletion -----------------------------------------------------------------------------------------


def test_delete_own_steps_or_with_can_delete_steps(world, heard):
    mine = service.add_step(actor(world.participant, heard), world.convo, new("participant words"))
    owners = service.add_step(actor(world.owner, heard), world.convo, new("owner words"))
    answer = llm_step(world.convo, mine["id"])
    heard.messages.clear()
    with pytest.raises(Forbidden):  # someone else's step
        service.delete_step(actor(world.participant, heard), owners["id"], convo_id=world.convo)
    with pytest.raises(Forbidden):  # a viewer deletes nothing
        service.delete_step(actor(world.viewer, heard), mine["id"], convo_id=world.convo)
    service.delete_step(actor(world.participant, heard), answer["id"], convo_id=world.convo)  # an answer
    service.delete_step(actor(world.participant, heard), mine["id"], convo_id=world.convo)
    service.delete_step(actor(world.owner, heard), owners["id"])  # over REST: no connection convo
    assert heard.of("convoStepDeletion") == [{"id": answer["id"]}, {"id": mine["id"]}, {"id": owners["id"]}]
    assert steps.of_convo(world.convo).items == []
    assert search.postings("words", limit=10).items == []
    assert "latestStep" not in objects.get(Ref("convo", world.convo))


def test_delete_someone_elses_step_as_owner(world, heard):
    theirs = service.add_step(actor(world.participant, heard), world.convo, new())
    service.delete_step(actor(world.owner, heard), theirs["id"], convo_id=world.convo)
    assert steps.get(theirs["id"]) is None


def test_unknown_or_foreign_steps_are_not_found(world, heard):
    elsewhere = convos.create_convo(Access(world.outsider), ConvoCreate())["id"]
    foreign = service.add_step(actor(world.outsider, heard), elsewhere, new())
    for step_id, convo_id in (
        (str(uuid4()), world.convo),
        (foreign["id"], world.convo),
        (foreign["id"], None),
    ):
        with pytest.raises(NotFound):
            service.delete_step(actor(world.owner, heard), step_id, convo_id=convo_id)
        with pytest.raises(NotFound):
            service.update_step(
                actor(world.owner, heard), step_id, content=StepContent(text="x"), convo_id=convo_id
            )
    assert steps.get(foreign["id"]) is not None


def test_deleting_a_groups_primary_promotes_its_oldest_alternate(world, heard):
    group = NewStepGroup.model_validate(
        {"steps": [{"content": {"text": t}} for t in ("one", "two", "three")]}
    )
    first, second, third = service.add_step_group(actor(world.owner, heard), world.convo, group)
    heard.messages.clear()
    service.delete_step(actor(world.owner, heard), first["id"], convo_id=world.convo)
    assert heard.messages == [
        (world.convo, "convoStepDeletion", {"id": first["id"]}, "r1"),
        (world.convo, "convoStepUpdate", {"id": second["id"], "isAlternate": False}, "r1"),
    ]
    members = steps.group(world.convo, first["groupId"])
    assert [(m["id"], m["isAlternate"]) for m in members] == [(second["id"], False), (third["id"], True)]
    assert objects.get(Ref("convo", world.convo))["latestStep"]["id"] == second["id"]
    # Deleting an alternate promotes nothing.
    heard.messages.clear()
    service.delete_step(actor(world.owner, heard), third["id"], convo_id=world.convo)
    assert heard.types == ["convoStepDeletion"]
    assert [m["id"] for m in steps.group(world.convo, first["groupId"])] == [second["id"]]


# -- regen --------------------------------------------------------------------------------------------


def test_regen_deletes_the_answer_and_queues_it_again_in_its_place(world, heard):
    question = service.add_step(actor(world.owner, heard), world.convo, new())
    answer = llm_step(world.convo, question["id"], config={"model": "embedded:smollm2", "temperature": 0.7})
    heard.messages.clear()
    regen = StepRegen.model_validate({"id": answer["id"], "config": {"temperature": 0.1}})
    job = service.regen_step(actor(world.participant, heard), world.convo, regen)
    merged = {"model": "embedded:smollm2", "temperature": 0.1}
    assert heard.messages == [(world.convo, "convoStepRegen", {"id": answer["id"], "config": merged}, "r1")]
    assert steps.get(answer["id"]) is None
    (queued,) = reply_jobs()
    assert queued["jobId"] == job.job_id and job.job_id not in (answer["id"], question["id"])
    assert queued["replyToStepId"] == question["id"] and queued["createdAt"] == answer["createdAt"]
    assert queued["config"] == merged and queued["llmStepId"] != answer["id"]
    assert queued["messageGroupId"] == world.convo and queued["requestedBy"] == world.participant.user_id


def test_only_a_finished_llm_step_can_be_regenerated(world, heard):
    question = service.add_step(actor(world.owner, heard), world.convo, new())
    running = llm_step(world.convo, question["id"], status="running")
    failed = llm_step(world.convo, question["id"], status="failed")
    for step_id in (running["id"], question["id"]):
        with pytest.raises(Conflict) as refused:
            service.regen_step(actor(world.owner, heard), world.convo, StepRegen(id=step_id))
        assert refused.value.code == "not_regenerable"
    with pytest.raises(Forbidden):
        service.regen_step(actor(world.viewer, heard), world.convo, StepRegen(id=failed["id"]))
    service.regen_step(actor(world.owner, heard), world.convo, StepRegen(id=failed["id"]))
    assert [j["config"] for j in reply_jobs()] == [{"model": "embedded:smollm2", "temperature": 0.7}]


# -- updates ------------------------------------------------------------------------------------------


def test_content_by_its_author_or_with_can_delete_steps(world, heard):
    theirs = service.add_step(actor(world.participant, heard), world.convo, new("first draft"))
    heard.messages.clear()
    updated = service.update_step(
        actor(world.participant, heard),
        theirs["id"],
        content=StepContent(text="second draft"),
        convo_id=world.convo,
    )
    assert updated["content"] == {"text": "second draft"} and updated["updatedAt"] >= theirs["updatedAt"]
    assert heard.messages == [
        (world.convo, "convoStepUpdate", {"id": theirs["id"], "content": {"text": "second draft"}}, "r1")
    ]
    assert [p["stepId"] for p in search.postings("second", limit=5).items] == [theirs["id"]]
    assert search.postings("first", limit=5).items == []
    assert objects.get(Ref("convo", world.convo))["latestStep"]["content"] == {"text": "second draft"}
    owners = service.add_step(actor(world.owner, heard), world.convo, new())
    with pytest.raises(Forbidden):
        service.update_step(
            actor(world.participant, heard), owners["id"], content=StepContent(text="mine now")
        )
    moderated = service.update_step(
        actor(world.owner, heard), theirs["id"], content=StepContent(text="[removed]")
    )
    assert moderated["content"] == {"text": "[removed]"}


def test_annotations_and_the_content_of_llm_steps(world, heard):
    question = service.add_step(actor(world.owner, heard), world.convo, new())
    answer = llm_step(world.convo, question["id"])
    with pytest.raises(BadRequest) as refused:
        service.update_step(actor(world.owner, heard), answer["id"], content=StepContent(text="better"))
    assert refused.value.code == "not_editable"
    source = make_object("data_source", ref_of(world.participant)).id
    cited = [Annotation.model_validate({"dataSourceId": source, "text": "castle", "start": 3, "end": 9})]
    updated = service.update_step(actor(world.participant, heard), answer["id"], annotations=cited)
    expected = [{"type": "citation", "dataSourceId": source, "text": "castle", "start": 3, "end": 9}]
    assert updated["annotations"] == expected and steps.get(answer["id"])["annotations"] == expected
    assert heard.of("convoStepUpdate")[-1] == {"id": answer["id"], "annotations": expected}


def test_is_alternate_true_is_refused_and_false_makes_the_primary(world, heard):
    group = NewStepGroup.model_validate(
        {"steps": [{"content": {"text": t}} for t in ("one", "two", "three")]}
    )
    first, second, third = service.add_step_group(actor(world.owner, heard), world.convo, group)
    with pytest.raises(BadRequest) as refused:
        service.update_step(actor(world.owner, heard), first["id"], is_alternate=True, convo_id=world.convo)
    assert refused.value.code == "cannot_set_alternate"
    heard.messages.clear()
    result = service.update_step(
        actor(world.owner, heard), third["id"], is_alternate=False, convo_id=world.convo
    )
    assert result["id"] == third["id"] and result["isAlternate"] is False
    assert sorted(heard.of("convoStepUpdate"), key=lambda p: p["id"]) == sorted(
        [{"id": first["id"], "isAlternate": True}, {"id": third["id"], "isAlternate": False}],
        key=lambda p: p["id"],
    )
    members = {m["id"]: m["isAlternate"] for m in steps.group(world.convo, first["groupId"])}
    assert members == {first["id"]: True, second["id"]: True, third["id"]: False}
    assert objects.get(Ref("convo", world.convo))["latestStep"]["id"] == third["id"]
    # Already the primary: nothing changes, nothing is said.
    heard.messages.clear()
    service.update_step(actor(world.owner, heard), third["id"], is_alternate=False)
    assert heard.messages == []
    # Someone else's steps: choosing the primary among them takes can_delete_steps.
    with pytest.raises(Forbidden):
        service.update_step(actor(world.participant, heard), first["id"], is_alternate=False)


# -- Query Steps --------------------------------------------------------------------------------------


def test_search_finds_every_word_newest_first_only_where_the_caller_may_view(world, heard, aws_calls):
    older = service.add_step(actor(world.owner, heard), world.convo, new("Lisbon trams at dawn"))
    newer = service.add_step(actor(world.participant, heard), world.convo, new("Trams of LISBON, again"))
    service.add_step(actor(world.owner, heard), world.convo, new("Lisbon by night"))
    hidden_convo = convos.create_convo(Access(world.outsider), ConvoCreate())["id"]
    service.add_step(actor(world.outsider, heard), hidden_convo, new("secret Lisbon trams"))
    aws_calls.reset()
    found, token = search_service.query_steps(Access(world.viewer), "lisbon trams", limit=10)
    assert [s["id"] for s in found] == [newer["id"], older["id"]] and token is None
    # The postings of the longest word, one check per distinct convo, the viewer's grants, the steps.
    assert dict(aws_calls.calls) == {"dynamodb:Query": 3, "dynamodb:BatchGetItem": 2}
    found, _ = search_service.query_steps(Access(world.outsider), "trams", limit=10)
    assert [s["convoId"] for s in found] == [hidden_convo]
    assert search_service.query_steps(Access(make_user()), "trams", limit=10)[0] == []


def test_search_pages_and_ignores_postings_the_text_no_longer_holds(world, heard):
    made = [service.add_step(actor(world.owner, heard), world.convo, new(f"harbour {i}")) for i in range(5)]
    # A text changed behind the index's back: the stale posting finds the step, its text rejects it.
    steps.update(made[4], {"content": {"text": "no longer"}})
    page, token = search_service.query_steps(Access(world.owner), "Harbour", limit=3)
    assert [s["id"] for s in page] == [made[3]["id"], made[2]["id"]] and token
    rest, token = search_service.query_steps(Access(world.owner), "Harbour", limit=3, next_token=token)
    assert [s["id"] for s in rest] == [made[1]["id"], made[0]["id"]] and token is None


def test_a_search_without_words_is_a_bad_request(world):
    for term in ("a", "!!", "  ", "x" * 41):
        with pytest.raises(BadRequest) as refused:
            search_service.query_steps(Access(world.owner), term, limit=10)
        assert refused.value.code == "search_term_has_no_words"
