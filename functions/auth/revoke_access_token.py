"""Revoke Access Token: DELETE /auth/access-tokens/{accessTokenId} → 204 (ApiKeyAuth only; the token's
creator only)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from kallo.models.common import Id
from kallo.services import access_tokens
from kallo.web import caller, create_app, lambda_handler_for, no_content

app = create_app()


@app.delete(
    "/auth/access-tokens/<accessTokenId>", summary="Revoke Access Token", tags=["Auth"], status_code=204
)
def revoke_access_token(accessTokenId: Annotated[Id, Path()]) -> Response[None]:
    access_tokens.revoke_access_token(caller(app, allow_unregistered=True), accessTokenId)
    return no_content()


lambda_handler = lambda_handler_for(app)
