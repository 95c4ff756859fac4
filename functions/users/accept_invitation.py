"""Accept Invitation: POST /invitations/accept?objectType=convo|team&objectId= → 200 the grantee
`{id, type, role}` the caller became on the object.

Only the person invited accepts: a registered user whose VERIFIED email address (an OpenID Connect
issuer's `email_verified`) is the invitation's address, calling as itself (an access token needs the
whole-user scope). Anyone else, like a user a service account created with that address (unverified,
tenant-local), gets 404, as if there were no invitation. A caller that already holds a role on the
object keeps it and the invitation is used up. Get My Invitations lists what the caller may accept.
"""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from kallo.models.auth import GranteeView
from kallo.models.common import Id
from kallo.models.users import InvitableType
from kallo.services import invitations
from kallo.web import caller, create_app, lambda_handler_for, ok

app = create_app()


@app.post("/invitations/accept", summary="Accept Invitation", tags=["Users"], description=__doc__)
def accept_invitation(
    objectType: Annotated[InvitableType, Query(description="The type of the object")],
    objectId: Annotated[Id, Query(description="The ID of the object")],
) -> Response[GranteeView]:
    return ok(invitations.accept_invitation(caller(app), objectType, objectId))


lambda_handler = lambda_handler_for(app)
