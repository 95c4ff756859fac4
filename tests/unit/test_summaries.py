"""Summaries (kallo.services.summaries): fitting a document to the model's context by sections, the
citations that ground a summary, exactly one pending request, and jobs with nothing to do."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from kallo.clock import now
from kallo.documents import passages
from kallo.documents.bm25 import Index
from kallo.llm import ProviderError
from kallo.llm.embedded import CONTEXT_TOKENS
from kallo.services import summaries
from kallo.store import keys, objects
from kallo.store.table import table
from tests.support.scripted_llm import Script, ScriptedLLM, installed
from tests.support.world import make_object, make_user, ref_of

WORDS = ["harbour", "tide", "gull", "ferry", "pier", "anchor", "lantern", "keeper", "storm", "beacon"]


def long_text(words: int) -> str:
    return " ".join(f"{WORDS[n % len(WORDS)]}{n}" + ("." if n % 12 == 11 else "") for n in range(words))


@pytest.fixture
def small() -> Iterator[tuple[ScriptedLLM, str]]:
    """A scripted model with the embedded model's context."""
    scripted = ScriptedLLM(Script(["A short summary."]))
    with installed(scripted, context_tokens=CONTEXT_TOKENS) as model:
        yield scripted, model


def later(seconds: float = 60) -> float:
    return time.monotonic() + seconds


# -- fitting the context -------------------------------------------------------------------------------


def test_sections_cover_the_text_at_word_boundaries():
    text = long_text(3000)
    parts = summaries.sections(text, 6000)
    assert 1 < len(parts) <= summaries.MAX_SECTIONS
    assert " ".join(parts).split() == text.split()
    assert all(len(p) <= 6000 for p in parts)


def test_a_text_beyond_six_budgets_keeps_the_start_of_six_parts():
    text = long_text(20000)
    parts = summaries.sections(text, 1000)
    assert len(parts) == summaries.MAX_SECTIONS
    assert all(len(p) <= 1000 for p in parts)
    assert parts[0].startswith("harbour0") and parts[-1] in text


def test_a_short_text_is_summarised_in_one_request(small):
    llm, model = small
    assert summaries.generate("The pier closes at dusk.", model, deadline=later()) == "A short summary."
    ((messages, generation),) = llm.calls
    assert [m.role for m in messages] == ["system", "user"]
    assert messages[0].content == summaries.SUMMARY_INSTRUCTION
    assert messages[1].content == "The pier closes at dusk."
    assert generation.max_tokens == summaries.SUMMARY_TOKENS


def test_a_long_text_is_summarised_by_sections_then_as_a_whole(small):
    llm, model = small
    text = long_text(12000)
    assert summaries.generate(text, model, deadline=later()) == "A short summary."
    *parts, whole = llm.calls
    assert len(parts) == summaries.MAX_SECTIONS
    for messages, generation in parts:
        assert messages[0].content == summaries.SECTION_INSTRUCTION
        assert generation.max_tokens == summaries.SECTION_TOKENS
        # Prompt and answer within the context, at the documents' characters per token.
        prompt_tokens = sum(len(m.content) for m in messages) / summaries.CHARS_PER_TOKEN
        assert prompt_tokens + generation.max_tokens <= CONTEXT_TOKENS
    assert whole[0][0].content == summaries.COMBINE_INSTRUCTION
    assert whole[0][1].content.startswith("Part 1: A short summary.\n\nPart 2: ")


def test_a_hosted_model_reads_a_long_text_at_once(aws):
    scripted = ScriptedLLM(Script(["Sum."]))
    text = long_text(8000)
    with installed(scripted) as model:  # 32k tokens
        summaries.generate(text, model, deadline=later())
    assert len(text) > 60000
    assert len(scripted.calls) == 1


def test_an_empty_answer_or_no_time_left_fails(small):
    llm, model = small
    llm.scripts = [Script(["  \n"])]
    with pytest.raises(ProviderError, match="no summary"):
        summaries.generate("Some text.", model, deadline=later())
    with pytest.raises(TimeoutError):
        summaries.generate("Some text.", model, deadline=time.monotonic() - 1)
    with pytest.raises(ProviderError, match="no text"):
        summaries.generate(" \n ", model, deadline=later())


# -- citations -----------------------------------------------------------------------------------------


def test_each_summary_sentence_cites_its_best_source_sentence_once():
    text = (
        "The ferry leaves the harbour at noon. Tickets are sold on board.\n\n"
        "Gulls nest on the northern cliffs. In winter the ferry runs twice a week."
    )
    index = Index.build(passages.split(text))
    summary = "The ferry leaves at noon. Gulls nest on the cliffs! The ferry leaves at noon."
    found = summaries.citations("ds", summary, index)
    assert [c["text"] for c in found] == [
        "The ferry leaves the harbour at noon.",
        "Gulls nest on the northern cliffs.",
    ]
    for citation in found:
        assert citation["type"] == "citation" and citation["dataSourceId"] == "ds"
        assert text[citation["start"] : citation["end"]] == citation["text"]


def test_summary_citations_carry_the_data_sources_name():
    index = Index.build(passages.split("Heron is the billing system. The launch code is ZX-42."))
    found = summaries.citations("ds", "The launch code is ZX-42.", index, name="heron.md")
    assert found and all((c["dataSourceId"], c["dataSourceName"]) == ("ds", "heron.md") for c in found)


def test_at_most_five_citations():
    sentences = [f"Fact {word} is about the {word} of the coast." for word in WORDS]
    text = " ".join(sentences)
    index = Index.build(passages.split(text))
    assert len(summaries.citations("ds", " ".join(sentences), index)) == summaries.MAX_CITATIONS


def test_summary_sentences():
    assert summaries.summary_sentences("One. Two!\n- three\n\n...") == ["One.", "Two!", "- three"]


# -- one pending request, jobs with nothing to do -----------------------------------------------------


def test_only_one_request_makes_a_summary_pending(aws):
    moment = now()
    assert summaries._mark_pending("ds", None, moment) is True
    assert summaries._mark_pending("ds", None, moment) is False  # someone else was first
    stale = table().get(keys.summary_key("ds"))
    assert summaries._mark_pending("ds", stale, moment) is True
    assert summaries._mark_pending("ds", stale, moment) is True  # same requestedAt: the expectation holds
    assert (
        summaries._mark_pending("ds", {**stale, "requestedAt": "2020-01-01T00:00:00.000Z"}, moment) is False
    )


def test_a_job_without_a_pending_summary_or_a_ready_data_source_does_nothing(aws, small, aws_calls):
    llm, _ = small
    owner = ref_of(make_user())
    source = make_object("data_source", owner, status="processing", location="x")
    aws_calls.reset()
    assert summaries.summarize(source.id) is None
    assert aws_calls.total == 1
    table().put(
        {**keys.summary_key(source.id), "status": "pending", "requestedAt": "2026-11-22T10:00:00.000Z"}
    )
    assert summaries.summarize(source.id) is None
    objects.update(source, {"status": "ready"})
    table().delete(keys.object_key(source))
    assert summaries.summarize(source.id) is None
    assert llm.calls == []


def test_a_looping_summary_keeps_each_sentence_once_without_part_labels():
    looping = "Part 1: The plant opens in May.\nThe plant opens in May.\n" + "It makes  bikes. " * 12
    assert summaries.tidy(looping) == "The plant opens in May. It makes  bikes."


def test_a_summary_is_cut_at_its_sentence_cap():
    many = " ".join(f"Point number {n} matters." for n in range(20))
    assert len(summaries.summary_sentences(summaries.tidy(many))) == summaries.MAX_SUMMARY_SENTENCES


def test_a_summary_of_labels_only_fails(small):
    llm, model = small
    llm.scripts = [Script(["Part 1:"])]
    with pytest.raises(ProviderError, match="no summary"):
        summaries.generate("A short text about ships.", model, deadline=later())


def test_a_failed_summary_says_neither_the_providers_url_nor_its_body():
    """I7: the stored error is a code and a message of ours; the provider's words go to the log."""
    leak = ProviderError("the model server at http://10.0.0.7/v1 answered 500: {'secret': 'tenant b'}")
    assert summaries._shown(leak) == {"code": "model_error", "message": "the model could not answer"}
    assert summaries._shown(TimeoutError("worker internals"))["code"] == "summary_timeout"
    assert summaries._shown(KeyError("internals")) == {
        "code": "internal_error",
        "message": summaries.INTERNAL,
    }
