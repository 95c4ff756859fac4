"""I4 (ids): the server makes every id. Each create operation refuses a body that names one, with the
same answer whether the id is another tenant's or unused, so a create tells nothing about ids in use."""

from uuid import uuid4

import pytest

from kallo.store import objects
from kallo.store.keys import Ref
from tests.support.api import invoke
from tests.support.world import make_object, make_user, ref_of

CREATES = {
    "topics.create_topic": ("topic", {"name": "T", "description": ""}),
    "teams.create_team": ("team", {"name": "T"}),
    "convos.create_convo": ("convo", {"name": "C"}),
    "prompts.create_prompt": ("prompt", {"text": "Be brief."}),
}


@pytest.mark.parametrize("operation", sorted(CREATES))
def test_a_create_naming_an_id_is_refused_alike_for_any_id(aws, operation):
    kind, body = CREATES[operation]
    victim, attacker = make_user(), make_user()
    theirs = make_object(kind, ref_of(victim))
    answers = []
    for chosen in (theirs.id, str(uuid4()), None):
        result = invoke(operation, attacker, query={}, body={**body, "id": chosen})
        assert result.status == 422, result.body
        answers.append((result.json["code"], result.json["message"]))
    assert answers == [("validation_error", "body.id: ids are assigned by the server: leave id out")] * 3
    assert objects.get(theirs)["createdBy"] == victim.user_id
    made = invoke(operation, attacker, query={}, body=body)
    assert made.status == 201 and made.json["id"] != theirs.id
    assert objects.get(Ref(kind, made.json["id"]))["createdBy"] == attacker.user_id
