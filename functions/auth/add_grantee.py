"""Add Grantee to Object: POST /auth/grantees?objectType=&objectId=[&inviteEmail=] body grantee → 201.

Grants the body's `{id, type, role}` on the object and answers 201 with the grantee.
- Which grantee type may hold which role on which object type is the policy's table (else 400
  `grant_not_supported`). Owners change only through PUT /auth/grantees (400 `use_put_for_owner`);
  `dependent` grants, and convos or topics on data sources and prompts, are links made by Add Convo /
  Topic Data Source and Set Topic Prompt (400 `use_link_endpoint`).
- The caller needs `can_add_<role>` on the object (404 when it cannot view it, 403 when it can). The
  grantee must exist and be reachable: a user the caller may name (itself or a user of its tenant:
  another tenant's user is 404 with the same message as an unknown id), or a team, topic or convo the
  caller can view (else 404).
- A grantee that already holds another role gets the new one, which also needs `can_remove_<old role>`
  (an owner's role is changed only by PUT); the role it already holds changes nothing.

Invitations (`inviteEmail`, teams and convos only; the body is a user grantee without `id`, e.g.
`{"type": "user", "role": "member"}`): an invitation is always stored (a new one for the same email and
object replaces it), whether or not someone has that address, and the answer is the invitation
`{objectType, objectId, inviteEmail, role, createdBy, createdAt}`. It expires after the configured days
(30 by default), is listed by Get Invitations, withdrawn by Delete Invitation, and becomes the grant
when the owner of that verified address accepts it (Accept Invitation, listed by Get My Invitations) or
registers with it. The invitee is emailed (from the stack's sender address, as exports are) a link
that accepts it in the console: `<console>#/invitations?accept=<objectType>:<objectId>`. The email is
sent once the invitation is stored; if sending fails, the invitation stays, the failure is logged and
counted, and the answer is still 201 (adding the grantee again renews the invitation and resends it).
Each inviting user may have 50 invitations mailed per UTC day (by default: the stack's
`InvitationMailsPerDay`), whatever the objects and addresses; past that the answer is 429
`invitation_mail_limit` with `Retry-After` (seconds to the next UTC day) and nothing is stored.
"""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from kallo.authz.policy import ObjectType
from kallo.models.auth import GranteeView
from kallo.models.common import Email, Grantee, Id
from kallo.models.users import Invitation
from kallo.services import grantees
from kallo.web import caller, console_url, create_app, created, lambda_handler_for

app = create_app()


@app.post(
    "/auth/grantees", summary="Add Grantee to Object", tags=["Auth"], status_code=201, description=__doc__
)
def add_grantee(
    body: Grantee,
    objectType: Annotated[ObjectType, Query()],
    objectId: Annotated[Id, Query()],
    inviteEmail: Annotated[Email | None, Query(description="Invite this address (see above)")] = None,
) -> Response[GranteeView | Invitation]:
    obj = grantees.object_ref(objectType, objectId)
    return created(
        grantees.add_grantee(caller(app), obj, body, invite_email=inviteEmail, console_url=console_url(app))
    )


lambda_handler = lambda_handler_for(app)
