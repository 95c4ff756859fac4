"""Get My Invitations: GET /invitations/mine → 200 [invitation]: the current invitations sent to the
caller's VERIFIED email address (an OpenID Connect issuer's `email_verified`), ordered by object, for a
client to offer Accept Invitation. Empty for a caller without one (a user a service account created, a
token without the whole-user scope)."""

from aws_lambda_powertools.event_handler import Response

from kallo.models.users import Invitation
from kallo.services import invitations
from kallo.web import caller, create_app, lambda_handler_for, ok

app = create_app()


@app.get("/invitations/mine", summary="Get My Invitations", tags=["Users"], description=__doc__)
def get_my_invitations() -> Response[list[Invitation]]:
    return ok([Invitation.model_validate(i) for i in invitations.my_invitations(caller(app))])


lambda_handler = lambda_handler_for(app)
