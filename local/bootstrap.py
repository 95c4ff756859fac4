"""The local stack's first credential: a "bootstrap" service account and its API key, so that a newcomer
can call every operation right away (API.md: "A local stack prints a ready API key").

`kallo` is imported inside the functions below: it is importable only once the stack has put the
layer's directory on sys.path (`runtime.add_code_paths`), as Lambda does for a function's layers.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass

ACCOUNT_NAME = "bootstrap"
KEY_VARIABLE = "KALLO_API_KEY"


class InvalidApiKey(ValueError):
    pass


def requested_key(environ: Mapping[str, str]) -> str | None:
    """The key the developer asked for with KALLO_API_KEY, if any; InvalidApiKey when the API would
    never accept it (better to refuse at start than to print a key that answers 401)."""
    from kallo.auth import api_keys

    key = environ.get(KEY_VARIABLE, "").strip()
    if not key:
        return None
    if not api_keys.looks_valid(key):
        raise InvalidApiKey(
            f"{KEY_VARIABLE} is not a valid API key: it must start with `{api_keys.PREFIX}` and be 16 to "
            f"128 characters long, e.g. {KEY_VARIABLE}={api_keys.PREFIX}local_dev_key_1"
        )
    return key


@dataclass(frozen=True)
class Bootstrap:
    user_id: str
    api_key: str
    generated: bool  # False when the key came from KALLO_API_KEY


def create(key: str | None) -> Bootstrap:
    """Create the service account and store its key (the given one, or a new one)."""
    from kallo.services import credentials

    account = credentials.create_service_account(ACCOUNT_NAME)
    api_key, _ = credentials.issue_api_key(account["id"], key=key, name=ACCOUNT_NAME)
    return Bootstrap(user_id=account["id"], api_key=api_key, generated=key is None)


def websocket_url(base_url: str) -> str:
    """The local stack's WebSocket endpoint (`/ws`, on the REST API's host and port)."""
    return base_url.replace("http", "ws", 1) + "/ws"


def banner(base_url: str, bootstrap: Bootstrap, seconds: float) -> str:
    """What `make run` prints once the stack answers: where it is, the key, and a call to paste."""
    origin = "generated; set KALLO_API_KEY to choose it" if bootstrap.generated else "from KALLO_API_KEY"
    key = shlex.quote(f"x-api-key: {bootstrap.api_key}")
    rule = "─" * 78
    return "\n".join(
        [
            rule,
            f"  Kallo local stack ready on {base_url}  (started in {seconds:.1f} s)",
            "",
            f"  REST API   {base_url}/",
            f"  WebSocket  {websocket_url(base_url)}?convoId=<convo id>   (README: Real-time)",
            f"  Console    {base_url}/console/   (sign in with the API key below and any email)",
            f"  Docs       {base_url}/docs   (documents: /openapi.json REST, /asyncapi.json WebSocket)",
            f"  Health     {base_url}/health/core-api",
            "",
            f"  API key    {bootstrap.api_key}",
            f"             service account {ACCOUNT_NAME} ({bootstrap.user_id}); {origin}",
            "",
            "  Try it:",
            f"    curl -s -X POST {base_url}/teams -H {key} \\",
            "         -H 'content-type: application/json' -d '{\"name\": \"My team\"}'",
            "",
            "  Data lives in memory (embedded AWS services) and is gone when the stack stops.",
            "  Ctrl-C stops it.",
            rule,
        ]
    )
