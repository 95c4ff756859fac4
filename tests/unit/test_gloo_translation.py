"""The Gloo KaLLM surface's translation (`kallo.surfaces.gloo`): the seed's request shapes and switches,
chat ids, the character limit, sources from citations, publishers matched to data sources, the topic of a
scoped token, and an answer's messages turned into Gloo's deltas and object."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from kallo.auth.principal import Principal
from kallo.llm import registry
from kallo.store.keys import Ref
from kallo.surfaces.gloo import (
    KallmMessage,
    Reply,
    Switches,
    chat_id_of,
    gloo_time,
    matching_publishers,
    max_tokens_for,
    scoped_topic,
    sources_of,
)

CHAT = "0191f0c2-8a4e-7c3b-9d2e-1f2a3b4c5d6e"
STEP = "5b0f6a1e-2c3d-4e5f-8a9b-0c1d2e3f4a5b"
ANSWER = "9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
SOURCE = "3f2e1d0c-9b8a-4f6e-8d4c-3b2a1f0e9d8c"
OTHER_SOURCE = "7e6d5c4b-3a29-4817-a6f5-e4d3c2b1a098"


def message(**fields: Any) -> KallmMessage:
    return KallmMessage.model_validate({"query": "What is your name?", **fields})


# -- the request ----------------------------------------------------------------------------------------


def test_the_seeds_example_body_is_accepted_word_for_word() -> None:
    body = KallmMessage.model_validate(
        {
            "chat_id": "<string>",
            "query": "What is your name?",
            "character_limit": 123,
            "sources_limit": 123,
            "stream": True,
            "publishers": ["<string>"],
        }
    )
    assert (body.query, body.character_limit, body.stream, body.publishers) == (
        "What is your name?",
        123,
        True,
        ["<string>"],
    )


def test_fields_the_seed_does_not_list_are_ignored() -> None:
    assert message(temperature=3).query == "What is your name?"


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"query": ""}, "query"),
        ({"query": "   \n"}, "query"),
        ({"query": "a\x00b"}, "query"),
        ({"query": "x" * 16001}, "query"),
        ({"character_limit": 0}, "character_limit"),
        ({"character_limit": 65537}, "character_limit"),
        ({"character_limit": "many"}, "character_limit"),
        ({"sources_limit": -1}, "sources_limit"),
        ({"publishers": ["p"] * 51}, "publishers"),
        ({"publishers": ["a\nb"]}, "publishers"),
        ({"publishers": "one"}, "publishers"),
        ({"stream": "sometimes"}, "stream"),
        ({"user": "key:somebody"}, "user"),
        ({"user": ""}, "user"),
    ],
)
def test_bad_bodies_are_refused_naming_the_field(fields: dict[str, Any], where: str) -> None:
    with pytest.raises(ValidationError) as raised:
        message(**fields)
    assert raised.value.errors()[0]["loc"][0] == where


def test_a_missing_query_is_refused() -> None:
    with pytest.raises(ValidationError):
        KallmMessage.model_validate({"chat_id": CHAT})


def test_switches_default_as_in_the_seed() -> None:
    switches = Switches.model_validate({})
    assert (switches.intent, switches.enable_sources, switches.enable_suggestions) == (None, 1, 1)


def test_switches_read_the_query_strings_values() -> None:
    switches = Switches.model_validate({"intent": "1", "enable_sources": "2", "enable_suggestions": "0"})
    assert (switches.intent, switches.enable_sources, switches.enable_suggestions) == (1, 2, 0)
    blank = Switches.model_validate({"intent": "", "enable_sources": " ", "enable_suggestions": ""})
    assert (blank.intent, blank.enable_sources, blank.enable_suggestions) == (None, 1, 1)


@pytest.mark.parametrize(
    "query",
    [{"intent": "2"}, {"enable_sources": "3"}, {"enable_suggestions": "-1"}, {"intent": "yes"}],
)
def test_switches_outside_the_seeds_enums_are_refused(query: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        Switches.model_validate(query)


def test_chat_id_comes_from_the_body_then_the_query() -> None:
    other = "0191f0c2-8a4e-7c3b-9d2e-000000000000"
    assert chat_id_of(message(chat_id=CHAT), Switches(chat_id=other)) == CHAT
    assert chat_id_of(message(), Switches(chat_id=other)) == other
    assert chat_id_of(message(chat_id=""), Switches(chat_id=other)) == other
    assert chat_id_of(message(chat_id=CHAT.upper()), Switches()) == CHAT


@pytest.mark.parametrize("given", [None, "", "<string>", "c3c870f25-63fc-451f-a9ce-9a5abed55aa0"])
def test_a_chat_id_that_cannot_be_a_kallo_id_starts_a_new_chat(given: str | None) -> None:
    assert chat_id_of(message(chat_id=given), Switches()) is None


# -- the answer's bounds and sources ---------------------------------------------------------------------


def test_the_character_limit_becomes_max_tokens_within_the_models_cap() -> None:
    model = "bedrock:amazon.nova-micro-v1:0"
    assert max_tokens_for(123, model) == 31 + 16
    assert max_tokens_for(1, model) == 17
    assert max_tokens_for(65536, model) == registry.max_tokens_cap(model) == 2048


def test_times_are_written_as_gloo_writes_them() -> None:
    assert gloo_time("2026-12-03T12:00:05.123Z") == "2026-12-03T12:00:05.123000"


def test_sources_are_the_citations_with_their_names_in_order_within_the_limit() -> None:
    annotations = [
        {"type": "citation", "dataSourceId": SOURCE, "text": "ZX-42.", "start": 0, "end": 6},
        {"type": "citation", "dataSourceId": OTHER_SOURCE, "text": "Room 4."},
        {"type": "citation", "dataSourceId": "gone", "text": "Deleted since."},
    ]
    names = {SOURCE: "heron.md", OTHER_SOURCE: "rooms.md"}
    assert sources_of(annotations, names, None) == [
        {"dataSourceId": SOURCE, "name": "heron.md", "text": "ZX-42."},
        {"dataSourceId": OTHER_SOURCE, "name": "rooms.md", "text": "Room 4."},
    ]
    assert sources_of(annotations, names, 1) == [
        {"dataSourceId": SOURCE, "name": "heron.md", "text": "ZX-42."}
    ]
    assert sources_of(annotations, names, 0) == []


def test_publishers_match_linked_sources_by_id_or_name() -> None:
    linked = [{"id": SOURCE, "name": "Heron.md"}, {"id": OTHER_SOURCE, "name": "rooms.md"}]
    assert matching_publishers(["heron.MD"], linked) == [SOURCE]
    assert matching_publishers([OTHER_SOURCE.upper(), "heron.md"], linked) == [SOURCE, OTHER_SOURCE]
    assert matching_publishers(["<string>", "nobody"], linked) == []


def test_a_new_chat_goes_under_the_one_topic_a_token_is_scoped_to() -> None:
    me, topic, other = "u1", "t1", "t2"
    assert scoped_topic(Principal(user_id=me, scheme="api_key")) is None
    token = Principal(user_id=me, scheme="access_token", scope=(Ref("topic", topic),))
    assert scoped_topic(token) == topic
    whole = Principal(user_id=me, scheme="access_token", scope=(Ref("topic", topic), Ref("user", me)))
    assert scoped_topic(whole) is None
    two = Principal(user_id=me, scheme="access_token", scope=(Ref("topic", topic), Ref("topic", other)))
    assert scoped_topic(two) is None


# -- an answer's messages ----------------------------------------------------------------------------------


def running(reply: Reply) -> list[str]:
    """Feed a typical answer (other convo traffic mixed in); the deltas Gloo sends."""
    messages = [
        ("convoStatus", {"convoId": CHAT, "status": "running", "stepId": ANSWER}),
        ("convoNewStep", {"id": ANSWER, "createdAt": "2026-12-03T12:00:05.123Z", "status": "running"}),
        ("convoStepUpdate", {"id": ANSWER, "delta": "My name ", "seq": 1}),
        ("convoStepUpdate", {"id": "someone-else", "delta": "noise", "seq": 1}),
        ("convoStepUpdate", {"id": ANSWER, "delta": "is Kallo.", "seq": 2}),
    ]
    return [d for d in (reply.feed(t, p) for t, p in messages) if d]


def test_deltas_and_the_final_update_make_the_answer() -> None:
    reply = Reply(STEP, ANSWER, CHAT)
    assert running(reply) == ["My name ", "is Kallo."]
    assert reply.timestamp == "2026-12-03T12:00:05.123000"
    assert reply.error == {"code": "internal_error", "message": "the answer ended without a result"}
    final = {"id": ANSWER, "content": {"text": "My name is Kallo."}, "status": "completed", "seq": 3}
    assert reply.feed("convoStepUpdate", final) == ""
    assert reply.error is None and reply.message == "My name is Kallo."
    assert reply.fields(reply.message) == {
        "query_id": STEP,
        "message_id": ANSWER,
        "chat_id": CHAT,
        "message": "My name is Kallo.",
        "timestamp": "2026-12-03T12:00:05.123000",
    }


def test_the_character_limit_cuts_deltas_and_the_message() -> None:
    reply = Reply(STEP, ANSWER, CHAT, character_limit=10)
    assert running(reply) == ["My name ", "is"]
    reply.feed(
        "convoStepUpdate", {"id": ANSWER, "content": {"text": "My name is Kallo."}, "status": "completed"}
    )
    assert reply.message == "My name is"


def test_a_failed_answer_tells_its_code_and_message_only() -> None:
    reply = Reply(STEP, ANSWER, CHAT)
    running(reply)
    error = {"code": "model_error", "message": "the model could not answer"}
    reply.feed(
        "convoStepUpdate", {"id": ANSWER, "content": {"text": "My"}, "status": "failed", "error": error}
    )
    assert reply.error == error


def test_a_stopped_answer_keeps_its_text() -> None:
    reply = Reply(STEP, ANSWER, CHAT)
    running(reply)
    reply.feed("convoStepUpdate", {"id": ANSWER, "content": {"text": "My name is"}, "status": "stopped"})
    assert reply.error is None and reply.message == "My name is"
