"""The CloudWatch metrics (kallo.metrics, EMF on stdout) of an answered, a failed and a throttled path,
a quota refusal and a failed WebSocket send, read back from the captured output as CloudWatch would
read them: names, units, values and dimensions as docs/DEVELOPING.md ("Observability") and the
template's alarms and dashboard expect (tests/unit/test_template.py pins the names there)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from kallo import metrics, quotas, realtime
from kallo.errors import TooManyRequests
from kallo.llm import Usage
from kallo.services import replies
from kallo.settings import get_settings
from tests.support.scripted_llm import Script
from tests.unit.test_replies import nameless, play, scene, sent  # noqa: F401 (fixtures)

NAMESPACE, SERVICE = "Kallo", "kallo-metrics-test"


@pytest.fixture
def emitted(monkeypatch, capsys):
    """Metrics on, as in the template (tests/conftest.py turns them off); returns a reader of the EMF
    documents written since the last read."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", NAMESPACE)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", SERVICE)
    capsys.readouterr()

    def read() -> list[dict[str, Any]]:
        return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]

    return read


def values(documents: list[dict[str, Any]]) -> dict[str, tuple[list[float], str, frozenset[str]]]:
    """metric name → (its values, its unit, its dimension names), across the documents."""
    found: dict[str, tuple[list[float], str, frozenset[str]]] = {}
    for document in documents:
        [directive] = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == NAMESPACE
        [dimensions] = directive["Dimensions"]
        assert document["service"] == SERVICE
        for metric in directive["Metrics"]:
            value = document[metric["Name"]]
            listed = value if isinstance(value, list) else [value]
            previous = found.get(metric["Name"], ([], "", frozenset()))[0]
            found[metric["Name"]] = (previous + listed, metric["Unit"], frozenset(dimensions))
    return found


def test_an_answered_question_counts_an_answer_its_latencies_and_its_tokens_by_model(scene, sent, emitted):  # noqa: F811
    with play(Script(["Hello", " world"], delay=0.01, usage=Usage(12, 3))) as (_, model):
        job = scene.job(scene.step("Hi"), model)
        replies.answer(job, queued_at=None)
    documents = emitted()
    found = values(documents)
    assert found["Answers"] == ([1.0], "Count", {"service"})
    assert "FailedAnswers" not in found
    [first], unit, dims = found["FirstDeltaLatency"]
    [completion], completion_unit, _ = found["CompletionLatency"]
    assert (unit, completion_unit, dims) == ("Milliseconds", "Milliseconds", {"service"})
    assert 0 <= first <= completion < 60_000
    # The tokens carry the model as their own dimension, in a document of their own.
    assert found["InputTokens"] == ([12.0], "Count", {"service", "model"})
    assert found["OutputTokens"] == ([3.0], "Count", {"service", "model"})
    [tokens] = [d for d in documents if "InputTokens" in d]
    assert tokens["model"] == model


def test_the_latencies_start_when_the_job_was_queued(scene, sent, emitted):  # noqa: F811
    with play(Script(["Hi"])) as (_, model):
        job = scene.job(scene.step("Hi"), model)
        replies.answer(job, queued_at=time.time() - 5)
    found = values(emitted())
    assert found["FirstDeltaLatency"][0][0] >= 5000
    assert found["CompletionLatency"][0][0] >= 5000


def test_a_failed_answer_counts_a_failure_not_an_answer(scene, sent, emitted):  # noqa: F811
    with play(Script(["Once ", "upon"], fail_after=1)) as (_, model):
        replies.answer(scene.job(scene.step("Tell a story"), model))
    found = values(emitted())
    assert found["FailedAnswers"] == ([1.0], "Count", {"service"})
    assert "Answers" not in found
    assert "CompletionLatency" in found
    assert "InputTokens" not in found  # the provider counted nothing: no token figures are made up


def test_a_convo_name_counts_its_tokens_by_model_apart_from_the_answers(nameless, sent, emitted):  # noqa: F811
    """Naming a nameless convo asks the answer's model for a title: its tokens are that model's too."""
    answer, title = (
        Script(["Blue light scatters"], usage=Usage(40, 4)),
        Script(["Sky Colour"], usage=Usage(30, 2)),
    )
    with play(answer, title) as (_, model):
        replies.answer(nameless.job(nameless.step("Why is the sky blue?"), model), queued_at=None)
    documents = [d for d in emitted() if "InputTokens" in d]
    assert [(d["model"], d["InputTokens"], d["OutputTokens"]) for d in documents] == [
        (model, [40.0], [4.0]),
        (model, [30.0], [2.0]),
    ]
    assert values(documents)["InputTokens"] == ([40.0, 30.0], "Count", {"service", "model"})


def test_a_summary_counts_the_tokens_of_each_request_by_model(aws, emitted):
    """A summary by sections asks once per section and once to combine: each request's tokens."""
    from kallo.llm.embedded import CONTEXT_TOKENS
    from kallo.services import summaries
    from tests.support.scripted_llm import ScriptedLLM, installed
    from tests.unit.test_summaries import long_text

    scripted = ScriptedLLM(Script(["A short summary."], usage=Usage(100, 7)))
    with installed(scripted, context_tokens=CONTEXT_TOKENS) as model:
        summaries.generate("The pier closes at dusk.", model, deadline=time.monotonic() + 60)
        [whole] = values(emitted())["InputTokens"][0]
        assert whole == 100.0
        summaries.generate(long_text(3000), model, deadline=time.monotonic() + 60)
    requests = len(scripted.calls) - 1
    documents = [d for d in emitted() if "InputTokens" in d]
    assert requests > 2 and len(documents) == requests
    assert {d["model"] for d in documents} == {model}
    assert values(documents)["OutputTokens"] == ([7.0] * requests, "Count", {"service", "model"})


def test_a_model_that_counts_nothing_emits_no_tokens(aws, emitted):
    from kallo.services import summaries
    from tests.support.scripted_llm import ScriptedLLM, installed

    with installed(ScriptedLLM(Script(["A short summary."]))) as model:
        summaries.generate("The pier closes at dusk.", model, deadline=time.monotonic() + 60)
    assert "InputTokens" not in values(emitted())


def test_a_throttled_request_counts_once(emitted):
    with pytest.raises(TooManyRequests):
        quotas.raise_if_throttled({quotas.THROTTLED: "7"})
    quotas.raise_if_throttled({})  # not throttled: nothing
    assert values(emitted()) == {"ThrottledRequests": ([1.0], "Count", {"service"})}


@pytest.fixture
def one_summary_a_day(monkeypatch) -> Iterator[None]:
    monkeypatch.setenv("KALLO_SUMMARIES_PER_DAY", "1")
    get_settings.cache_clear()
    yield
    monkeypatch.delenv("KALLO_SUMMARIES_PER_DAY")
    get_settings.cache_clear()


def test_a_quota_refusal_counts_once(aws, one_summary_a_day, emitted):
    quotas.count_summary("u1")
    with pytest.raises(TooManyRequests) as refused:
        quotas.count_summary("u1")
    assert refused.value.code == quotas.QUOTA_EXCEEDED
    assert values(emitted()) == {"QuotaRefusals": ([1.0], "Count", {"service"})}


def test_an_invitation_mail_refusal_is_a_quota_refusal(aws, monkeypatch, emitted):
    monkeypatch.setenv("KALLO_INVITATION_MAILS_PER_DAY", "0")
    get_settings.cache_clear()
    with pytest.raises(TooManyRequests) as refused:
        quotas.count_invitation_mail("u1")
    assert refused.value.code == quotas.INVITATION_MAIL_LIMIT
    assert values(emitted()) == {"QuotaRefusals": ([1.0], "Count", {"service"})}
    get_settings.cache_clear()


class _Client:
    """A management API client whose post fails as told."""

    class exceptions:
        GoneException = type("GoneException", (ClientError,), {})

    def __init__(self, error: Exception) -> None:
        self.error = error

    def post_to_connection(self, **_: Any) -> None:
        raise self.error


def _client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "PostToConnection")


def test_a_failed_websocket_send_counts_and_a_gone_connection_does_not(emitted, monkeypatch):
    gone = _Client.exceptions.GoneException({"Error": {"Code": "GoneException"}}, "PostToConnection")
    monkeypatch.setattr(realtime, "_management_client", lambda: _Client(gone))
    assert realtime.post("c1", b"{}") is False
    assert values(emitted()) == {}
    monkeypatch.setattr(
        realtime, "_management_client", lambda: _Client(_client_error("LimitExceededException"))
    )
    with pytest.raises(ClientError):
        realtime.post("c1", b"{}")
    assert values(emitted()) == {"WebSocketSendFailures": ([1.0], "Count", {"service"})}


def test_no_metric_is_written_while_metrics_are_disabled(capsys, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    metrics.count(metrics.THROTTLED_REQUESTS)
    assert capsys.readouterr().out == ""


def test_a_metric_that_cannot_be_written_never_fails_the_work(emitted, monkeypatch):
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE")  # EMF refuses a document without a namespace
    metrics.count(metrics.QUOTA_REFUSALS)
    assert emitted() == []


def test_the_names_are_the_documented_ones() -> None:
    from tests.unit.test_template import KALLO_METRICS

    assert {
        metrics.ANSWERS,
        metrics.FAILED_ANSWERS,
        metrics.INPUT_TOKENS,
        metrics.OUTPUT_TOKENS,
        metrics.FIRST_DELTA_LATENCY,
        metrics.COMPLETION_LATENCY,
        metrics.THROTTLED_REQUESTS,
        metrics.QUOTA_REFUSALS,
        metrics.WEBSOCKET_SEND_FAILURES,
        metrics.INVITATION_MAIL_FAILURES,
    } == KALLO_METRICS
