"""The cost model of docs/COST.md, computed from the AWS calls `bench.aws_calls` counts: what 1,000
answered messages cost, a month at 1k, 100k and 1M monthly active users, and the idle cost. Prints the
tables as Markdown (docs/COST.md carries them with the assumptions).

    python -m bench.cost             # from the counts recorded below (bench.aws_calls, 2026-12)
    python -m bench.cost --measure   # count the flows again first (a minute)

Prices: us-east-1 list prices assumed for 2026-12, on-demand, without free tiers. Every assumption is
a constant below, so the doc changes with them.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from dataclasses import dataclass

# -- prices (USD, us-east-1, assumed for 2026-12) -------------------------------------------------------
PRICE = {
    "lambda_gb_second_arm64": 0.0000133334,
    "lambda_request": 0.20 / 1e6,
    "rest_request": 3.50 / 1e6,  # API Gateway REST, first 333 M a month
    "ws_message": 1.00 / 1e6,  # API Gateway WebSocket, per 32 KB message, first 1 B a month
    "ws_connection_minute": 0.25 / 1e6,
    "dynamodb_wru": 0.625 / 1e6,  # on-demand write request unit
    "dynamodb_rru": 0.125 / 1e6,  # on-demand read request unit
    "dynamodb_gb_month": 0.25,
    "dynamodb_pitr_gb_month": 0.20,  # point-in-time recovery (on in template.yaml)
    "s3_get": 0.0004 / 1000,
    "s3_put": 0.005 / 1000,
    "s3_gb_month": 0.023,
    "sqs_fifo_request": 0.50 / 1e6,
    "bedrock_nova_lite_input_1k": 0.00006,  # DefaultModel bedrock:amazon.nova-lite-v1:0
    "bedrock_nova_lite_output_1k": 0.00024,
    "alarm_month": 0.10,  # standard-resolution alarm, one metric
    "dashboard_month": 3.00,  # beyond the account's 3 free dashboards
    "secret_month": 0.40,
    "logs_ingest_gb": 0.50,
    "logs_gb_month": 0.03,
}

# -- the flows, in AWS calls (bench.aws_calls; DynamoDB, SQS and PostToConnection) ------------------------
# A user's message asking for an answer, at a human pace (its connection's verdict older than 3 s) on a
# topic's convo: "convoNewStep, no reply: next message after 3 s" + what a reply adds (the token budgets'
# BatchGetItem and the job) from "convoNewStep with a reply: next message within 3 s".
MESSAGE = Counter(
    {"Query": 3, "BatchGetItem": 2 + 1, "TransactWriteItems": 1, "UpdateItem": 1, "SendMessage": 1, "Post": 3}
)
# The LLM step worker's short answer ("LLM step worker: a short answer": 5 broadcasts to 3 connections).
ANSWER = Counter(
    {"GetItem": 2, "Query": 11, "TransactWriteItems": 2, "UpdateItem": 3, "BatchWriteItem": 1, "Post": 15}
)
ANSWER_CONNECTIONS = 3  # the connections the recorded answer broadcast to
RECORDED = {"message": MESSAGE, "answer": ANSWER}
# The REST reads a client makes around an answer (the console and SDKs read the convo and its steps),
# in DynamoDB calls: a team member on a topic's convo as Create a Convo makes it, from a cold process
# (bench.aws_calls' rows; the budgets tests/integration/test_convos_get.py and test_convos_steps.py
# assert; tests/unit/test_cost_model.py counts them again).
REST_READS = Counter({"Get a Convo": 3, "Query Convo Steps, a convo created by Create a Convo": 3})


@dataclass(frozen=True)
class Assumptions:
    input_tokens: int = 1500  # prompt: instructions, history, passages
    output_tokens: int = 300
    generation_seconds: float = 6.0  # the model's stream, which the worker waits on
    connections: int = 1  # sockets on the convo (one person, one tab)
    deltas_per_second: int = 4  # coalesced deltas (`kallo.services.replies` pacing)
    saves_per_second: int = 2  # progress saves, 2 UpdateItem each
    rest_per_answer: int = len(REST_READS)  # Get a Convo + Query Convo Steps around an answer
    message_lambda_ms: int = 60  # WsConvoNewStepFunction, 512 MB, warm
    worker_overhead_ms: int = 500  # the worker beyond the model's stream, 1024 MB
    rest_lambda_ms: int = 40  # a REST function, 512 MB, warm; its authorizer the same, 1024 MB
    s3_gets_per_answer: float = 0.2  # retrieval indexes a warm worker has not read (grounded answers)
    # Request units per call (items of 1-4 KB; a transaction writes each item twice).
    rru: tuple[tuple[str, float], ...] = (("GetItem", 1), ("Query", 1.5), ("BatchGetItem", 3))
    wru: tuple[tuple[str, float], ...] = (
        ("UpdateItem", 2),
        ("PutItem", 1),
        ("TransactWriteItems", 26),  # a step, its marker, the convo's latestStep, ~10 postings: x2
        ("BatchWriteItem", 20),
    )


def answered_message(a: Assumptions) -> dict[str, float]:
    """Costs (USD) of one answered message, per service."""
    broadcasts = ANSWER["Post"] // ANSWER_CONNECTIONS
    deltas = a.generation_seconds * a.deltas_per_second
    calls = MESSAGE + ANSWER
    # A longer answer than the recorded one: its deltas Query the connections about once a second, its
    # saves write the step and the convo's latestStep.
    calls["Query"] += int(a.generation_seconds)
    calls["UpdateItem"] += int(a.generation_seconds * a.saves_per_second * 2)
    calls["BatchWriteItem"] += 2  # the answer's words, 25 a request
    posts = (MESSAGE["Post"] // 3 + broadcasts + deltas) * a.connections
    # The REST reads around the answer (`rest_per_answer` of them): a read unit or so per call.
    rest_calls = sum(REST_READS.values()) * a.rest_per_answer / len(REST_READS)
    rru = sum(calls[op] * units for op, units in a.rru) + rest_calls
    wru = sum(calls[op] * units for op, units in a.wru) + a.rest_per_answer * 1  # authorizer's rate count
    gb_seconds = (
        0.5 * a.message_lambda_ms / 1000
        + 1.0 * (a.generation_seconds * 1000 + a.worker_overhead_ms) / 1000
        + a.rest_per_answer * (0.5 + 1.0) * a.rest_lambda_ms / 1000
    )
    invocations = 2 + 2 * a.rest_per_answer
    return {
        "Bedrock tokens (Nova Lite)": a.input_tokens / 1000 * PRICE["bedrock_nova_lite_input_1k"]
        + a.output_tokens / 1000 * PRICE["bedrock_nova_lite_output_1k"],
        "Lambda": gb_seconds * PRICE["lambda_gb_second_arm64"] + invocations * PRICE["lambda_request"],
        "API Gateway WebSocket": (1 + posts) * PRICE["ws_message"],
        "API Gateway REST": a.rest_per_answer * PRICE["rest_request"],
        "DynamoDB": rru * PRICE["dynamodb_rru"] + wru * PRICE["dynamodb_wru"],
        "SQS (FIFO)": 3 * PRICE["sqs_fifo_request"],  # send, receive, delete
        "S3": a.s3_gets_per_answer * PRICE["s3_get"],
    }


@dataclass(frozen=True)
class Usage:
    answers_per_mau: int = 30
    sessions_per_mau: int = 10  # WebSocket sessions ($connect + $disconnect)
    session_minutes: int = 15
    other_rest_per_mau: int = 60  # lists, teams, sharing, uploads
    documents_mb_per_mau: float = 5.0  # uploads + extracted text + retrieval index (S3)
    dynamodb_kb_per_answer: float = 8.0  # question + answer + postings + grants, kept
    logs_kb_per_request: float = 1.0


def monthly(mau: int, a: Assumptions, u: Usage, months_of_data: int = 12) -> dict[str, float]:
    """A month at `mau` monthly active users (data stored: `months_of_data` months of the same use)."""
    answers = mau * u.answers_per_mau
    per_answer = answered_message(a)
    costs = {service: cost * answers for service, cost in per_answer.items()}
    sessions = mau * u.sessions_per_mau
    costs["API Gateway WebSocket"] += sessions * (
        2 * PRICE["ws_message"] + u.session_minutes * PRICE["ws_connection_minute"]
    )
    connect = sessions * (
        2 * PRICE["dynamodb_wru"] * 2 + 1 * PRICE["dynamodb_rru"] * 2
    )  # $connect, $disconnect
    rest = mau * u.other_rest_per_mau
    costs["API Gateway REST"] += rest * PRICE["rest_request"]
    costs["Lambda"] += (rest + sessions * 2) * (
        PRICE["lambda_request"] * 2 + 1.5 * a.rest_lambda_ms / 1000 * PRICE["lambda_gb_second_arm64"]
    )
    costs["DynamoDB"] += connect + rest * (4 * PRICE["dynamodb_rru"] + 2 * PRICE["dynamodb_wru"])
    table_gb = answers * months_of_data * u.dynamodb_kb_per_answer / 2**20
    costs["DynamoDB storage + PITR"] = table_gb * (
        PRICE["dynamodb_gb_month"] + PRICE["dynamodb_pitr_gb_month"]
    )
    costs["S3 storage"] = mau * months_of_data * u.documents_mb_per_mau / 1024 * PRICE["s3_gb_month"]
    requests = answers * (2 + a.rest_per_answer) + rest + sessions * 2
    costs["CloudWatch Logs"] = (
        requests * u.logs_kb_per_request / 2**20 * (PRICE["logs_ingest_gb"] + PRICE["logs_gb_month"])
    )
    costs["Alarms, dashboard, secrets"] = fixed_monthly()
    return costs


def fixed_monthly(alarms: int = 10, dashboards: int = 1, secrets: int = 2) -> float:
    """What the stack costs a month when nobody uses it, storage aside (template.yaml: 10 alarms, one
    dashboard, two Secrets Manager secrets; everything else is billed per request)."""
    return (
        alarms * PRICE["alarm_month"]
        + dashboards * PRICE["dashboard_month"]
        + secrets * PRICE["secret_month"]
    )


def measured() -> tuple[Counter[str], Counter[str], Counter[str]]:
    """The message's, the answer's and the REST reads' calls, counted again (bench.aws_calls)."""
    from bench import aws_calls

    def counts(name: str) -> Counter[str]:
        _, _, detail = aws_calls.measure_ws(name)
        found = Counter({op: int(n) for op, n in re.findall(r"(\w+) x(\d+)", detail)})
        found["Post"] = found.pop("PostToConnection", 0)
        return found

    after = counts("convoNewStep, no reply: next message after 3 s")
    with_reply = counts("convoNewStep with a reply: next message within 3 s")
    without = counts("convoNewStep, no reply: next message within 3 s")
    reads = Counter()
    for name in REST_READS:
        _, _, detail = aws_calls.measure(name)
        reads[name] = sum(int(n) for op, n in re.findall(r"(\w+) x(\d+)", detail) if op in DYNAMODB_READS)
    return after + (with_reply - without), counts("LLM step worker: a short answer"), reads


DYNAMODB_READS = ("GetItem", "BatchGetItem", "Query")


def measure() -> None:
    """Count the flows again (bench.aws_calls) and use those counts."""
    for recorded, counted in zip((MESSAGE, ANSWER, REST_READS), measured(), strict=True):
        recorded.clear()
        recorded.update(counted)


def table(rows: dict[str, float], total_label: str = "**total**") -> list[str]:
    lines = ["| service | USD |", "|---|---:|"]
    lines += [f"| {service} | {cost:,.4f} |" for service, cost in rows.items()]
    lines.append(f"| {total_label} | **{sum(rows.values()):,.4f}** |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--measure", action="store_true", help="count the flows again first")
    if parser.parse_args().measure:
        measure()
    a, u = Assumptions(), Usage()
    print(f"Calls per answered message: message {dict(MESSAGE)}; answer {dict(ANSWER)}")
    print(f"DynamoDB calls of the REST reads around it: {dict(REST_READS)}\n")
    print("1,000 answered messages:\n")
    print("\n".join(table({k: v * 1000 for k, v in answered_message(a).items()})))
    print("\nA month:\n")
    scales = (1_000, 100_000, 1_000_000)
    months = {mau: monthly(mau, a, u) for mau in scales}
    print("| service | " + " | ".join(f"{m:,} MAU" for m in scales) + " |")
    print("|---|" + "---:|" * len(scales))
    for service in months[scales[0]]:
        print(f"| {service} | " + " | ".join(f"{months[m][service]:,.2f}" for m in scales) + " |")
    print("| **total** | " + " | ".join(f"**{sum(months[m].values()):,.2f}**" for m in scales) + " |")
    print(f"\nIdle: {fixed_monthly():.2f} USD a month plus storage.")


if __name__ == "__main__":
    main()
