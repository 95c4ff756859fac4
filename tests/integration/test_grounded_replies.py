"""Grounded answers end to end inside one process: a user step sent over the WebSocket route asks about a
fact in a ready data source linked to the convo (or its topic); the LLM step worker reads the passage
into the system prompt, and the answer step and its final convoStepUpdate carry a citation quoting it.
Unlinked or unreadable sources are not used, and another tenant's data source cannot be named."""

from __future__ import annotations

import copy
import json
from typing import Any
from uuid import uuid4

from workers import llm_step as worker

from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.documents import passages
from kallo.documents.bm25 import Index
from kallo.jobs import ReplyJob
from kallo.llm import ChatMessage
from kallo.models.convos import ConvoCreate
from kallo.services import convos, data_source_links, grounding, prompting, replies
from kallo.store import blobs, keys, objects, steps
from kallo.store.keys import Ref
from kallo.store.table import table
from local.runtime import LambdaContext
from tests.support import ws
from tests.support.api import EVENTS, invoke
from tests.support.scripted_llm import Script, ScriptedLLM, installed
from tests.support.world import make_object, make_service_account, make_user, ref_of

sockets = ws.sockets

HERON = (
    "# Project Heron\n\n"
    "Heron is the codename of the new billing system, planned by the platform team.\n\n"
    "The launch code of project Heron is ZX-42. Only the release manager may use it.\n\n"
    "Invoices are sent on the first working day of each month."
)
QUESTION = "What is the launch code of project Heron?"
FACT = "The launch code of project Heron is ZX-42."
SAMPLE = json.loads((EVENTS / "workers" / "llm_step.json").read_text())["Records"][0]


def ready_data_source(owner: Principal, text: str = HERON, name: str = "heron.md") -> str:
    """A processed upload: its item (ready) and, where its location says, its text and index."""
    ref = make_object(
        "data_source",
        ref_of(owner),
        name=name,
        type="upload",
        mimeType="text/markdown",
        status="ready",
        size=len(text.encode()),
        versionId="v1",
        processedAt="2026-11-01T00:00:00.000Z",
    )
    location = blobs.location(ref_of(owner), ref.id)
    table().update(keys.object_key(ref), {"location": location})
    index = Index.build(passages.split(text))
    blobs.put(blobs.key(location, blobs.TEXT), text.encode(), content_type="text/plain; charset=utf-8")
    blobs.put(blobs.key(location, blobs.INDEX), index.to_bytes(), content_type="application/json")
    return ref.id


def ask(connection: str, model: str, **config: Any) -> dict[str, Any]:
    """Send the question as a user step asking for a reply; returns the reply job it queued."""
    payload = {
        "content": {"text": QUESTION},
        "config": {"reply": True, "model": model, **config},
    }
    assert ws.send(connection, "convoNewStep", payload) == {"statusCode": 200}
    [job] = ws.reply_jobs()
    return job


def run_worker(job: dict[str, Any]) -> None:
    """The LLM step worker on a batch of this one job, as SQS would deliver it."""
    body = {k: v for k, v in job.items() if k not in ("messageGroupId", "deduplicationId")}
    message = copy.deepcopy(SAMPLE)
    message.update(messageId=str(uuid4()), body=json.dumps(body))
    message["attributes"]["MessageGroupId"] = job["convoId"]
    context = LambdaContext.starting("StepWorkerFunction", memory=1024, seconds=300)
    assert worker.lambda_handler({"Records": [message]}, context) == {"batchItemFailures": []}


def final_update(sockets: ws.Sockets, connection: str) -> dict[str, Any]:
    """The last convoStepUpdate a connection received: the one that ends the answer."""
    [final] = [p for p in sockets.payloads(connection, "convoStepUpdate") if "delta" not in p]
    return final


def system_prompt(llm: ScriptedLLM) -> str:
    messages, _ = llm.calls[0]
    assert messages[0].role == "system"
    return messages[0].content


# -- grounded -----------------------------------------------------------------------------------------------


def test_a_question_about_a_linked_document_is_answered_from_it_with_a_citation(sockets):
    room = ws.room()
    source = ready_data_source(room.owner)
    data_source_links.add_convo_data_source(Access(room.owner), room.convo_id, source)
    llm = ScriptedLLM(Script(["The launch code is ", "ZX-42 [1]."]))
    with installed(llm) as model:
        job = ask(room.participant_connection, model)
        sockets.clear()
        run_worker(job)
    system = system_prompt(llm)
    assert system.startswith(f"{prompting.DEFAULT_INSTRUCTION}\n\n{prompting.GROUNDING_INSTRUCTION}\n\n[1] ")
    assert FACT in system and '"heron.md"' in system
    assert llm.calls[0][0][-1] == ChatMessage("user", QUESTION)

    citation = {"type": "citation", "dataSourceId": source, "dataSourceName": "heron.md", "text": FACT}
    citation["start"] = HERON.index(FACT)
    citation["end"] = citation["start"] + len(FACT)
    answer = steps.get(job["llmStepId"])
    assert (answer["status"], answer["content"]) == ("completed", {"text": "The launch code is ZX-42 [1]."})
    assert answer["annotations"] == [citation]
    final = final_update(sockets, room.viewer_connection)  # everyone in the convo sees it
    assert final["status"] == "completed" and final["annotations"] == [citation]
    assert HERON[citation["start"] : citation["end"]] == FACT  # offsets into the extracted text


def test_a_data_source_linked_to_the_topic_grounds_its_convos(sockets):
    owner = make_user()
    topic = make_object("topic", ref_of(owner), description="", config={})
    convo = convos.create_convo(Access(owner), ConvoCreate(name="Heron"), topic_id=topic.id)
    source = ready_data_source(owner)
    data_source_links.add_topic_data_source(Access(owner), topic.id, source)
    connection = ws.connect(owner, convo["id"])
    llm = ScriptedLLM(Script(["Heron's launch code is ZX-42."]))  # no marker: matched by its words
    with installed(llm) as model:
        job = ask(connection, model)
        run_worker(job)
    assert FACT in system_prompt(llm)
    [citation] = steps.get(job["llmStepId"])["annotations"]
    assert (citation["dataSourceId"], citation["text"]) == (source, FACT)
    assert final_update(sockets, connection)["annotations"] == [citation]


def test_a_data_source_named_in_the_step_config_grounds_the_answer(sockets):
    room = ws.room()
    source = ready_data_source(room.owner)  # the owner's, not linked to the convo
    llm = ScriptedLLM(Script(["ZX-42."]))
    with installed(llm) as model:
        job = ask(room.owner_connection, model, dataSourceIds=[source])
        run_worker(job)
    assert FACT in system_prompt(llm)
    [citation] = steps.get(job["llmStepId"])["annotations"]
    assert (citation["dataSourceId"], citation["text"]) == (source, FACT)


def test_a_job_narrowed_to_some_sources_is_grounded_on_those_only(sockets):
    """`onlyDataSourceIds` (a surface's narrowing: Gloo's publishers) keeps only the listed ones of the
    sources the answer could use; an empty list grounds nothing, and an id it could not use adds none."""
    room = ws.room()
    heron = ready_data_source(room.owner)
    rooms = ready_data_source(room.owner, "The launch room of project Heron is room 4.", "rooms.md")
    theirs = ready_data_source(make_user(), "The launch code of project Heron is QQ-7.", "theirs.md")
    for source in (heron, rooms):
        data_source_links.add_convo_data_source(Access(room.owner), room.convo_id, source)
    llm = ScriptedLLM(Script(["ZX-42."]))
    with installed(llm) as model:
        job = ask(room.owner_connection, model)
        for only, shown, hidden in (([rooms, theirs], "room 4", FACT), ([], None, "room 4")):
            llm.calls.clear()
            replies.answer(
                ReplyJob.model_validate({**job, "llmStepId": str(uuid4()), "onlyDataSourceIds": only})
            )
            system = system_prompt(llm)
            assert (shown is None or shown in system) and hidden not in system and "QQ-7" not in system
    assert prompting.GROUNDING_INSTRUCTION not in system


# -- not grounded -----------------------------------------------------------------------------------------


def test_another_tenants_data_source_cannot_be_named_in_a_step(sockets):
    room = ws.room()
    theirs = ready_data_source(make_user())
    payload = {"content": {"text": QUESTION}, "config": {"reply": True, "dataSourceIds": [theirs]}}
    ws.send(room.owner_connection, "convoNewStep", payload, "x1")
    [error] = sockets.errors(room.owner_connection)
    assert (error["code"], error["requestId"]) == ("not_found", "x1")
    assert ws.reply_jobs() == [] and steps.of_convo(room.convo_id).items == []


def regen(connection: str, answer_id: str) -> dict[str, Any]:
    """Regenerate an answer over the WebSocket; returns the job it queued."""
    assert ws.send(connection, "convoStepRegen", {"id": answer_id}) == {"statusCode": 200}
    [job] = ws.reply_jobs()
    return job


def assert_not_grounded_on(llm: ScriptedLLM, answer_id: str, source: str) -> None:
    """Nothing of `source` reached the model, the answer cites nothing of it, and its stored config
    (which a regen reuses) does not name it."""
    for messages, _ in llm.calls:  # the answer, and the convo's naming when it has no name yet
        assert all(FACT not in m.content and "heron.md" not in m.content for m in messages)
    answer = steps.get(answer_id)
    assert answer["status"] == "completed"
    assert all(a["dataSourceId"] != source for a in answer["annotations"])
    assert source not in json.dumps(answer["config"])


def test_topic_defaults_naming_another_tenants_data_source_ground_nothing_even_on_regen(sockets):
    """I6, attacked from tenant A: A's topic's defaults name B's data source (stored before any check,
    or written around it). A's answer, and its regen, never read B's passage nor cite B's data source."""
    tenant_a, _ = make_service_account("a")
    tenant_b, _ = make_service_account("b")
    alice, bob = make_user(admin=tenant_a), make_user(admin=tenant_b)
    theirs = ready_data_source(bob)
    topic = make_object(
        "topic", ref_of(alice), description="", config={"defaults": {"dataSourceIds": [theirs]}}
    )
    convo = convos.create_convo(Access(alice), ConvoCreate(name="Heron"), topic_id=topic.id)
    connection = ws.connect(alice, convo["id"])
    llm = ScriptedLLM(Script(["The code is ZX-42 [1]."]))
    with installed(llm) as model:
        job = ask(connection, model)
        run_worker(job)
        assert_not_grounded_on(llm, job["llmStepId"], theirs)
        again = regen(connection, job["llmStepId"])
        run_worker(again)
        assert_not_grounded_on(llm, again["llmStepId"], theirs)
    assert len(llm.calls) >= 2


def test_a_queued_config_naming_another_tenants_data_source_grounds_nothing(sockets):
    """I6: a step config's ids are checked when the step is written, and again when it is answered: a
    job whose config names B's data source (never checked) is answered without it."""
    room = ws.room()
    theirs = ready_data_source(make_user(admin=make_service_account("b")[0]))
    llm = ScriptedLLM(Script(["ZX-42 [1]."]))
    with installed(llm) as model:
        job = ask(room.owner_connection, model)
        job["config"]["dataSourceIds"] = [theirs]
        run_worker(job)
    assert_not_grounded_on(llm, job["llmStepId"], theirs)


def test_a_regen_by_someone_who_cannot_view_a_named_data_source_drops_it(sockets):
    """I6: a regen is checked again, for its requester too (the stricter of author and requester): the
    owner's answer drew on the owner's unlinked data source; a participant's regen may not."""
    room = ws.room()
    source = ready_data_source(room.owner)  # the owner's, not linked: the participant cannot view it
    llm = ScriptedLLM(Script(["ZX-42 [1]."]))
    with installed(llm) as model:
        job = ask(room.owner_connection, model, dataSourceIds=[source])
        run_worker(job)
        assert steps.get(job["llmStepId"])["config"]["dataSourceIds"] == [source]
        assert FACT in system_prompt(llm)
        llm.calls.clear()
        again = regen(room.participant_connection, job["llmStepId"])
        assert again["config"]["dataSourceIds"] == [source]  # the stored config, not yet trusted
        run_worker(again)
    assert_not_grounded_on(llm, again["llmStepId"], source)


def test_a_citation_of_another_tenants_data_source_is_not_found(sockets):
    """I6: a user's own annotations may cite only data sources the writer can view."""
    room = ws.room()
    theirs = ready_data_source(make_user(admin=make_service_account("b")[0]))
    payload = {"content": {"text": "see"}, "annotations": [{"dataSourceId": theirs, "text": "ZX-42"}]}
    ws.send(room.owner_connection, "convoNewStep", payload, "c1")
    [error] = sockets.errors(room.owner_connection)
    assert (error["code"], error["requestId"]) == ("not_found", "c1")
    assert steps.of_convo(room.convo_id).items == []


def test_a_citation_never_names_another_tenants_document(sockets):
    """I6, attacked from tenant B: B's queued job names A's document (its config never checked) beside
    B's own, both about the same fact. B's answer cites B's document by its name, and nothing of A's
    (its id, its name) reaches the answer, its citations or its stored config; a viewer of B's convo
    reads the name without being able to read the document."""
    tenant_a, _ = make_service_account("a")
    alice = make_user(admin=tenant_a)
    secret = "The launch code of project Heron is QQ-77, says tenant A."
    theirs = ready_data_source(alice, text=HERON.replace(FACT, secret), name="alice-secret-plan.md")
    room = ws.room()
    # Named by the step (not linked to the convo, which would let its viewers read it).
    mine = ready_data_source(room.owner, name="heron.md")
    llm = ScriptedLLM(Script(["The launch code is ZX-42 [1][2]."]))
    with installed(llm) as model:
        job = ask(room.owner_connection, model, dataSourceIds=[mine])
        job["config"]["dataSourceIds"] = [theirs, mine]
        sockets.clear()
        run_worker(job)
    answer = steps.get(job["llmStepId"])
    final = final_update(sockets, room.viewer_connection)
    for cited in (answer["annotations"], final["annotations"]):
        assert cited and {(a["dataSourceId"], a["dataSourceName"]) for a in cited} == {(mine, "heron.md")}
    assert FACT in system_prompt(llm)
    for seen in (json.dumps(answer), json.dumps(final), system_prompt(llm)):
        assert theirs not in seen and "alice-secret-plan" not in seen and "QQ-77" not in seen
    # The viewer of the convo may not read the data source itself, yet sees what is cited.
    hidden = invoke("data_sources.get_data_source", room.viewer, path={"dataSourceId": mine})
    assert hidden.status == 404


def test_an_unlinked_data_source_is_no_longer_used(sockets):
    room = ws.room()
    source = ready_data_source(room.owner)
    data_source_links.add_convo_data_source(Access(room.owner), room.convo_id, source)
    data_source_links.remove_convo_data_source(Access(room.owner), room.convo_id, source)
    llm = ScriptedLLM(Script(["I do not know."]))
    with installed(llm) as model:
        job = ask(room.owner_connection, model)
        run_worker(job)
    assert system_prompt(llm) == prompting.DEFAULT_INSTRUCTION
    assert steps.get(job["llmStepId"])["annotations"] == []
    assert "annotations" not in final_update(sockets, room.owner_connection)


def test_a_failing_retrieval_leaves_the_answer_ungrounded(sockets, monkeypatch):
    room = ws.room()
    source = ready_data_source(room.owner)
    data_source_links.add_convo_data_source(Access(room.owner), room.convo_id, source)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("S3 is down")

    monkeypatch.setattr(grounding, "retrieve", broken)
    llm = ScriptedLLM(Script(["Sorry, no documents today."]))
    with installed(llm) as model:
        job = ask(room.owner_connection, model)
        run_worker(job)
    assert system_prompt(llm) == prompting.DEFAULT_INSTRUCTION
    answer = steps.get(job["llmStepId"])
    assert (answer["status"], answer["annotations"]) == ("completed", [])


def test_a_data_source_in_another_convo_is_not_used(sockets):
    room = ws.room()
    elsewhere = convos.create_convo(Access(room.owner), ConvoCreate(name="Elsewhere"))
    source = ready_data_source(room.owner)
    data_source_links.add_convo_data_source(Access(room.owner), elsewhere["id"], source)
    llm = ScriptedLLM(Script(["No idea."]))
    with installed(llm) as model:
        run_worker(ask(room.owner_connection, model))
    assert system_prompt(llm) == prompting.DEFAULT_INSTRUCTION


# -- AWS calls --------------------------------------------------------------------------------------------


def test_aws_calls_of_a_grounded_answer_and_of_an_ungrounded_one(sockets, aws_calls):
    room = ws.room()
    source = ready_data_source(room.owner)
    data_source_links.add_convo_data_source(Access(room.owner), room.convo_id, source)
    plain = ws.room()
    for convo_id in (room.convo_id, plain.convo_id):  # naming a convo is not what is counted here
        objects.update(Ref("convo", convo_id), {"name": "Named"})
    # One delta ("ZX-42"), then the rest with the final update: 5 broadcasts.
    with installed(ScriptedLLM(Script(["ZX-42", " [1]."], delay=[0.0, 0.05]))) as model:
        grounded_job, plain_job = ask(room.owner_connection, model), ask(plain.owner_connection, model)
        aws_calls.reset()
        run_worker(grounded_job)
        grounded = dict(aws_calls.calls)
        aws_calls.reset()
        run_worker(plain_job)
        ungrounded = dict(aws_calls.calls)
    # 3 connections per broadcast: 5 broadcasts, or 4 when a slow machine coalesces the two chunks
    # into one delta (the coalescing is by time; its own tests pin it).
    # Every broadcast Queries the convo's connections, but a delta reuses the list read less than a
    # second before (`kallo.realtime`; on a machine slower than that it Queries too). A delta is saved
    # before it goes out.
    for calls in (grounded, ungrounded):
        broadcasts = calls.pop("apigatewaymanagementapi:PostToConnection") // 3
        assert broadcasts in (4, 5)
        deltas = broadcasts - 4
        listed = calls["dynamodb:Query"] - 3
        assert broadcasts - deltas <= listed <= broadcasts
        calls["dynamodb:Query"] -= listed
        calls["dynamodb:UpdateItem"] -= deltas
    # The answer of a named convo without a topic (replies' docstring), 3 connections per broadcast, the
    # idempotency record; grounding adds 1 Query (the convo's links) and, with a source, 1 BatchGetItem
    # and 1 GetObject (its index).
    common = {
        "dynamodb:GetItem": 1,
        "dynamodb:TransactWriteItems": 1,
        "dynamodb:UpdateItem": 2 + 1 + 1,  # + the token charge
        "dynamodb:PutItem": 1,
        "dynamodb:BatchWriteItem": 1,
    }
    assert ungrounded == {**common, "dynamodb:Query": 3}
    assert grounded == {**common, "dynamodb:Query": 3, "dynamodb:BatchGetItem": 1, "s3:GetObject": 1}
