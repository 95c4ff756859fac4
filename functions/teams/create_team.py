"""Create a Team: POST /teams → 201 team."""

from aws_lambda_powertools.event_handler import Response

from kallo.models.teams import Team, TeamCreate
from kallo.services import teams
from kallo.web import caller, create_app, created, lambda_handler_for

app = create_app()


@app.post("/teams", summary="Create a Team", tags=["Teams"], status_code=201)
def create_team(body: TeamCreate) -> Response[Team]:
    return created(Team.model_validate(teams.create_team(caller(app), body)))


lambda_handler = lambda_handler_for(app)
