"""Create Access Token: POST /auth/access-tokens → 201 {id, jwt} (ApiKeyAuth only)."""

from aws_lambda_powertools.event_handler import Response

from kallo.models.auth import AccessToken, AccessTokenCreate
from kallo.services import access_tokens
from kallo.web import caller, create_app, created, lambda_handler_for

app = create_app()


@app.post("/auth/access-tokens", summary="Create Access Token", tags=["Auth"], status_code=201)
def create_access_token(body: AccessTokenCreate) -> Response[AccessToken]:
    # Unregistered OIDC identities reach the service, which answers every non-API-key caller alike.
    return created(access_tokens.create_access_token(caller(app, allow_unregistered=True), body))


lambda_handler = lambda_handler_for(app)
