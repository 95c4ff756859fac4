"""Delete Invitation: DELETE /invitations?objectType=&objectId=&inviteEmail= → 204 (withdraws it)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from kallo.models.common import Email, Id
from kallo.models.users import InvitableType
from kallo.services import invitations
from kallo.web import caller, create_app, lambda_handler_for, no_content

app = create_app()


@app.delete("/invitations", summary="Delete Invitation", tags=["Users"], status_code=204)
def delete_invitation(
    objectType: Annotated[InvitableType, Query(description="The type of the object")],
    objectId: Annotated[Id, Query(description="The ID of the object")],
    inviteEmail: Annotated[Email, Query(description="The invited email address")],
) -> Response[None]:
    invitations.delete_invitation(caller(app), objectType, objectId, inviteEmail)
    return no_content()


lambda_handler = lambda_handler_for(app)
