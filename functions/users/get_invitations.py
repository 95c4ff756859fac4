"""Get Invitations: GET /invitations?objectType=convo|team&objectId= → 200 [invitation]: the object's
current invitations, for those who may invite to it."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from kallo.models.common import Id
from kallo.models.users import InvitableType, Invitation
from kallo.services import invitations
from kallo.web import caller, create_app, lambda_handler_for, ok

app = create_app()


@app.get("/invitations", summary="Get Invitations", tags=["Users"])
def get_invitations(
    objectType: Annotated[InvitableType, Query(description="The type of the object")],
    objectId: Annotated[Id, Query(description="The ID of the object")],
) -> Response[list[Invitation]]:
    found = invitations.get_invitations(caller(app), objectType, objectId)
    return ok([Invitation.model_validate(i) for i in found])


lambda_handler = lambda_handler_for(app)
