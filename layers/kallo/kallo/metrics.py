"""The application's CloudWatch metrics (Powertools Metrics, embedded metric format: one JSON line on
stdout per document, which CloudWatch Logs turns into metrics). Names, units and dimensions are the ones
of docs/DEVELOPING.md, "Observability"; the alarms and the dashboard of template.yaml read them.

Each event is written at once as its own document (`Powertools`' EMF provider, with a metric set of its
own), not gathered in the shared set of a `Metrics` instance flushed by a handler decorator: the events
happen deep in services that many kinds of handler run (REST, WebSocket, queue workers, the ASGI
surfaces, the local stack), and none of them has to be decorated for a figure to reach CloudWatch.

- Namespace and the `service` dimension come from `POWERTOOLS_METRICS_NAMESPACE` and
  `POWERTOOLS_SERVICE_NAME` (the template sets both); code passes neither.
- `POWERTOOLS_METRICS_DISABLED=true` silences them: the tests and the local stack set it, so no EMF
  line is noise there (set it to false to see them).
- A metric never fails the work it measures: a failure to write one is logged and dropped.
"""

from __future__ import annotations

import logging
from typing import Any

from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

logger = logging.getLogger(__name__)

COUNT, MILLISECONDS = "Count", "Milliseconds"
ANSWERS = "Answers"
FAILED_ANSWERS = "FailedAnswers"
INPUT_TOKENS, OUTPUT_TOKENS = "InputTokens", "OutputTokens"
FIRST_DELTA_LATENCY = "FirstDeltaLatency"
COMPLETION_LATENCY = "CompletionLatency"
THROTTLED_REQUESTS = "ThrottledRequests"
QUOTA_REFUSALS = "QuotaRefusals"
WEBSOCKET_SEND_FAILURES = "WebSocketSendFailures"
INVITATION_MAIL_FAILURES = "InvitationMailFailures"


def emit(values: dict[str, tuple[float, str]], **dimensions: str) -> None:
    """One EMF document: `values` maps a metric name to (value, unit); `dimensions` come on top of
    `service` (only the token counts have one: `model`)."""
    if is_metrics_disabled():
        return
    try:
        document = AmazonCloudWatchEMFProvider()
        for name, value in dimensions.items():
            document.add_dimension(name=name, value=value)
        for name, (value, unit) in values.items():
            document.add_metric(name=name, unit=unit, value=value)
        document.flush_metrics()
    except Exception:
        logger.warning("a metric could not be written", extra={"metrics": sorted(values)}, exc_info=True)


def count(name: str, value: float = 1) -> None:
    emit({name: (value, COUNT)})


def answer(outcome: str, *, first_delta_ms: float | None, completion_ms: float) -> None:
    """An answer that ended `completed`, `stopped` (`Answers`) or `failed` (`FailedAnswers`), with its
    latencies (`first_delta_ms` is None when no delta went out)."""
    values: dict[str, Any] = {
        FAILED_ANSWERS if outcome == "failed" else ANSWERS: (1, COUNT),
        COMPLETION_LATENCY: (max(0.0, completion_ms), MILLISECONDS),
    }
    if first_delta_ms is not None:
        values[FIRST_DELTA_LATENCY] = (max(0.0, first_delta_ms), MILLISECONDS)
    emit(values)


def tokens(model: str, input_tokens: int, output_tokens: int) -> None:
    """One model call's tokens as the provider counted them, by model (`<provider>:<model id>`)."""
    emit({INPUT_TOKENS: (input_tokens, COUNT), OUTPUT_TOKENS: (output_tokens, COUNT)}, model=model)
