"""Write a sample API Gateway proxy event to events/<area>/<operation>.json for every REST route in
template.yaml that has none yet (`python -m tools.sample_events`). Existing samples are kept: edit them
freely to show a realistic body and query; tests load them and override what they need."""

from __future__ import annotations

import json
import re
from pathlib import Path

from local import template

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_IDS = {
    "convoId": "7b0e3c5a-2f4e-4a43-9a51-3f0a3d9d2c11",
    "teamId": "a4ede8ba-7c0a-4485-8763-cbd9b282fbec",
    "topicId": "97b608a9-302e-4387-a5f4-fd35969cdc21",
    "promptId": "5d3e1c9b-8a41-4f7a-9d2e-6b1c0f3a7e55",
    "userId": "2c4a230c-5085-4924-a3e1-25fb4fc5965b",
    "dataSourceId": "e39ea5f2-2188-47f8-add0-f1976630af5e",
    "stepId": "c3f1a2b4-5d6e-4f70-8a91-b2c3d4e5f607",
    "accessTokenId": "497f6eca-6276-4993-bfeb-53cbbbba6f08",
    "apiName": "core-api",
}
SERVICE_ACCOUNT = "0b1d3f5a-7c9e-4b2d-8f6a-1c3e5a7b9d0f"


def sample(route: template.Route) -> dict:
    names = re.findall(r"\{(\w+)\}", route.path)
    path_parameters = {n: EXAMPLE_IDS.get(n, "00000000-0000-4000-8000-000000000000") for n in names}
    path = re.sub(r"\{(\w+)\}", lambda m: path_parameters[m.group(1)], route.path)
    headers = {"accept": "application/json", "content-type": "application/json", "host": "localhost"}
    context: dict = {
        "resourcePath": route.path,
        "httpMethod": route.method,
        "path": f"/v1{path}",
        "stage": "v1",
        "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        "identity": {"sourceIp": "127.0.0.1", "userAgent": "sample"},
    }
    if route.authorized:
        context["authorizer"] = {
            "principalId": SERVICE_ACCOUNT,
            "scheme": "api_key",
            "isServiceAccount": "true",
            "userId": SERVICE_ACCOUNT,
        }
    return {
        "resource": route.path,
        "path": path,
        "httpMethod": route.method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": context,
        "body": None,
        "isBase64Encoded": False,
    }


def main() -> None:
    for route in template.rest_routes(template.load()):
        area, operation = route.handler.rsplit(".", 1)[0].split(".")
        target = ROOT / "events" / area / f"{operation}.json"
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(sample(route), indent=2) + "\n")
        print(f"wrote {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
