"""The cost model (`bench/cost.py`, docs/COST.md) is built from call counts: the ones it records must be
the ones the flows make now (`bench.aws_calls`, which runs them against moto), so a change of a budget
that forgets the model fails here."""

from __future__ import annotations

from bench import cost


def test_the_recorded_call_counts_are_the_measured_ones() -> None:
    message, answer, reads = cost.measured()
    assert dict(cost.MESSAGE) == dict(message)
    assert dict(cost.ANSWER) == dict(answer)
    assert dict(cost.REST_READS) == dict(reads)
    # The targets: the REST reads around an answer at most 3 DynamoDB calls each.
    assert max(cost.REST_READS.values()) <= 3


def test_the_model_uses_the_recorded_reads() -> None:
    base = cost.answered_message(cost.Assumptions())["DynamoDB"]
    saved = dict(cost.REST_READS)
    try:
        cost.REST_READS.update({name: calls + 1 for name, calls in saved.items()})
        assert cost.answered_message(cost.Assumptions())["DynamoDB"] > base
    finally:
        cost.REST_READS.clear()
        cost.REST_READS.update(saved)
