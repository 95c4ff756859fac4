"""Follow-up suggestions (kallo.services.suggestions): made once by the step's model and kept, one
maker at a time under an expiring lease, cleaned, charged to the caller's token budget, and refused
for what is not a completed answer the caller may view."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from kallo import quotas
from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.clock import epoch_seconds, now
from kallo.errors import Conflict, NotFound, TooManyRequests, Unprocessable
from kallo.llm import ProviderError, Usage
from kallo.models.convos import ConvoCreate
from kallo.services import convos, suggestions
from kallo.store import quotas as counters
from kallo.store import steps
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.scripted_llm import Script, ScriptedLLM, installed
from tests.support.world import add_user_step, grant, make_user
from tests.support.ws import llm_step

SAID = '1. What is the best time to visit the castle?\n2) "Where do locals eat?"\n\n- Is the tram worth it?'
QUESTIONS = ["What is the best time to visit the castle?", "Where do locals eat?", "Is the tram worth it?"]


@dataclass
class World:
    owner: Principal
    viewer: Principal
    outsider: Principal
    convo: str
    question: dict[str, Any]


@pytest.fixture
def world(aws) -> World:
    owner, viewer, outsider = make_user(), make_user(), make_user()
    convo = convos.create_convo(Access(owner), ConvoCreate())["id"]
    grant(Ref("convo", convo), viewer, "viewer")
    question = add_user_step(Ref("convo", convo), owner, "Plan three days in Lisbon")
    return World(owner, viewer, outsider, convo, question)


@pytest.fixture
def llm() -> Iterator[tuple[ScriptedLLM, str]]:
    scripted = ScriptedLLM(Script([SAID[:20], SAID[20:]], usage=Usage(input_tokens=90, output_tokens=30)))
    with installed(scripted) as model:
        yield scripted, model


def answer(world: World, model: str, **options: Any) -> dict[str, Any]:
    return llm_step(world.convo, world.question["id"], config={"model": model}, **options)


def tokens_used(user_id: str) -> int:
    start = int(now().timestamp()) // quotas.DAY * quotas.DAY
    counter = counters.Counter(Ref("user", user_id), quotas.TOKENS, start)
    return counters.used([counter])[counter]


def test_made_once_by_the_steps_model_and_kept(world, llm):
    scripted, model = llm
    step = answer(world, model)
    assert suggestions.suggestions_for(Access(world.viewer), step["id"]) == QUESTIONS
    (messages, generation) = scripted.calls[0]
    assert generation.model == "test" and generation.max_tokens == suggestions.SUGGESTION_TOKENS
    assert "Plan three days in Lisbon" in messages[1].content and "Alfama" in messages[1].content
    stored = table().get(steps.key(step), consistent=True)
    assert stored["suggestions"] == QUESTIONS and suggestions.LEASE not in stored
    assert stored["updatedAt"] == step["updatedAt"]  # not a change of the step
    # Charged to the caller who made them, with the provider's counts (I10).
    assert tokens_used(world.viewer.user_id) == 120
    assert suggestions.suggestions_for(Access(world.owner), step["id"]) == QUESTIONS
    assert len(scripted.calls) == 1 and tokens_used(world.owner.user_id) == 0


def test_nothing_usable_is_an_empty_list_kept(world):
    scripted = ScriptedLLM(Script(['Here are three questions:\n\n  \n1.\n""']))
    with installed(scripted) as model:
        step = answer(world, model)
        assert suggestions.suggestions_for(Access(world.owner), step["id"]) == []
        assert suggestions.suggestions_for(Access(world.owner), step["id"]) == []
    assert len(scripted.calls) == 1
    # Without the provider's counts, the caller is charged an estimate.
    assert tokens_used(world.owner.user_id) > 0


def test_a_failing_model_gives_an_empty_list_not_kept(world):
    scripted = ScriptedLLM(Script(["What"], fail_after=0, error=ProviderError("down")), Script(["Why?"]))
    with installed(scripted) as model:
        step = answer(world, model)
        assert suggestions.suggestions_for(Access(world.owner), step["id"]) == []
        stored = table().get(steps.key(step), consistent=True)
        assert "suggestions" not in stored and suggestions.LEASE not in stored  # the lease given back
        assert suggestions.suggestions_for(Access(world.owner), step["id"]) == ["Why?"]
    assert tokens_used(world.owner.user_id) > 0  # the second, estimated; the failure cost nothing


def test_the_model_is_stopped_after_three_questions(world):
    scripted = ScriptedLLM(
        Script(["Why?\n", "How?\n", "When?\n", "Where?\n"], usage=Usage(input_tokens=500, output_tokens=500))
    )
    with installed(scripted) as model:
        step = answer(world, model)
        assert suggestions.suggestions_for(Access(world.owner), step["id"]) == ["Why?", "How?", "When?"]
    # Stopped before the provider's counts came: charged our estimate, not the 1000 it would report.
    assert 0 < tokens_used(world.owner.user_id) < 1000


def test_a_slow_model_keeps_its_complete_lines(world, monkeypatch):
    monkeypatch.setattr(suggestions, "GENERATION_SECONDS", 5.0)
    monkeypatch.setattr(suggestions, "CUT_MARGIN_SECONDS", 4.8)  # cut 0.2 s in
    scripted = ScriptedLLM(Script(["Why?\n", "How", " far?\n"], delay=[0.0, 0.3, 0.3]))
    with installed(scripted) as model:
        step = answer(world, model)
        assert suggestions.suggestions_for(Access(world.owner), step["id"]) == ["Why?"]


def test_one_maker_at_a_time_and_a_crashed_one_blocks_no_longer_than_its_lease(world, llm):
    scripted, model = llm
    step = answer(world, model)
    moment = epoch_seconds(now())
    table().update(steps.key(step), {suggestions.LEASE: moment + 30})  # another caller is making them
    assert suggestions.suggestions_for(Access(world.viewer), step["id"]) is None
    assert scripted.calls == []
    table().update(steps.key(step), {suggestions.LEASE: moment - 1})  # that caller crashed
    assert suggestions.suggestions_for(Access(world.viewer), step["id"]) == QUESTIONS
    # Kept while this caller held the lease: a caller that loses the race reads them.
    table().update(steps.key(step), {suggestions.LEASE: moment + 30})
    assert suggestions.suggestions_for(Access(world.owner), step["id"]) == QUESTIONS


def test_a_second_caller_while_the_first_is_making_them(world):
    scripted = ScriptedLLM(Script(["Why?\n", "How?"], delay=[0.0, 0.5]))
    with installed(scripted) as model:
        step = answer(world, model)
        first: list[Any] = []
        maker = threading.Thread(
            target=lambda: first.append(suggestions.suggestions_for(Access(world.viewer), step["id"]))
        )
        maker.start()
        deadline = time.monotonic() + 5
        while not scripted.calls and time.monotonic() < deadline:
            time.sleep(0.01)
        assert scripted.calls, "the first caller never asked the model"
        assert suggestions.suggestions_for(Access(world.owner), step["id"]) is None
        maker.join(timeout=10)
        assert first == [["Why?", "How?"]]
        assert suggestions.suggestions_for(Access(world.owner), step["id"]) == ["Why?", "How?"]
    assert len(scripted.calls) == 1


def test_a_lost_race_reads_what_the_winner_kept(world, llm, monkeypatch):
    scripted, model = llm
    step = answer(world, model)
    table().update(steps.key(step), {"suggestions": ["Kept by the winner?"]})
    # The GSI has not caught up: the step as read has none, the lease is refused, the table has them.
    monkeypatch.setattr(suggestions, "answer", lambda access, step_id: step)
    assert suggestions.suggestions_for(Access(world.viewer), step["id"]) == ["Kept by the winner?"]
    assert scripted.calls == []


def test_refusals(world, llm):
    _, model = llm
    step = answer(world, model)
    with pytest.raises(NotFound) as hidden:
        suggestions.suggestions_for(Access(world.outsider), step["id"])
    assert hidden.value.message == f"step {step['id']} not found"
    with pytest.raises(Unprocessable) as user_step:
        suggestions.suggestions_for(Access(world.owner), world.question["id"])
    assert user_step.value.code == "not_an_answer"
    for status in ("running", "failed"):
        unfinished = answer(world, model, status=status)
        with pytest.raises(Conflict) as not_done:
            suggestions.suggestions_for(Access(world.owner), unfinished["id"])
        assert not_done.value.code == "not_completed"


def test_a_used_up_budget_is_refused_before_the_model_is_asked(world, llm, monkeypatch):
    scripted, model = llm
    step = answer(world, model)
    monkeypatch.setenv("KALLO_USER_TOKENS_PER_DAY", "100")
    from kallo.settings import get_settings

    get_settings.cache_clear()
    try:
        quotas.charge_tokens(world.owner.user_id, None, 100)
        with pytest.raises(TooManyRequests) as refused:
            suggestions.suggestions_for(Access(world.owner), step["id"])
        assert refused.value.code == "quota_exceeded" and scripted.calls == []
    finally:
        monkeypatch.delenv("KALLO_USER_TOKENS_PER_DAY")
        get_settings.cache_clear()


def test_a_model_no_longer_allowed_gives_way_to_the_default(world):
    assert (
        suggestions._model({"config": {"model": "openai:not-on-the-list"}})
        == suggestions.get_settings().default_model
    )
    assert suggestions._model({}) == suggestions.get_settings().default_model


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (SAID, QUESTIONS),
        ("**1.** Why?\nQuestion 2: How?\n\u201cWhen?\u201d", ["Why?", "How?", "When?"]),
        ("a) One?\nb) Two?\nc) Three?\nd) Four?", ["One?", "Two?", "Three?"]),
        ("Same?\nsame?\n  \nOther?", ["Same?", "Other?"]),
        ("x" * 300, ["x" * suggestions.SUGGESTION_CHARS]),
        ("Follow-up questions:\n\tTabbed\u00a0and\u200b odd?", ["Tabbed and odd?"]),
        ("", []),
        ("Answer: the castle opens at nine.\nWhat about Sintra?", ["What about Sintra?"]),
        ("Ask about trams.\nAsk about food.", ["Ask about trams.", "Ask about food."]),
    ],
)
def test_clean(raw, expected):
    assert suggestions.clean(raw) == expected
