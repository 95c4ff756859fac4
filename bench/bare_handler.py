"""The cold-start baseline of `bench/cold_start.py`: the least a Python Lambda behind API Gateway
imports. It imports boto3 (creating nothing) and builds a Powertools REST resolver with one route, and
every function's import is measured against it in the same run, the WebSocket and queue functions
too."""

import boto3  # noqa: F401 (imported, as a handler that talks to AWS would, but no client is created)
from aws_lambda_powertools.event_handler import APIGatewayRestResolver

app = APIGatewayRestResolver()


@app.get("/ping")
def ping() -> dict[str, bool]:
    return {"ok": True}


def lambda_handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
