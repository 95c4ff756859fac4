"""Query Models: GET /models → 200 [{id, provider, default}], the models a topic's defaults or a step's
config may name (any other is refused with 422 `unknown_model` when it is written)."""

from aws_lambda_powertools.event_handler import Response

from kallo.models.model_names import Model
from kallo.services import model_names
from kallo.web import caller, create_app, lambda_handler_for, ok

app = create_app()


@app.get("/models", summary="Query Models", tags=["Models"])
def query_models() -> Response[list[Model]]:
    return ok(model_names.query_models(caller(app)))


lambda_handler = lambda_handler_for(app)
