"""Query Steps: GET /steps?searchTerm= → 200 [step], newest first, only steps the caller may view."""

import base64

from kallo.authz.access import Access
from kallo.models.convos import ConvoCreate
from kallo.models.ws import NewStep
from kallo.services import convos
from kallo.services import steps as service
from kallo.store.keys import Ref
from tests.support.api import invoke
from tests.support.world import grant, make_object, make_user, ref_of


def write(principal, convo_id: str, text: str) -> dict:
    actor = service.Actor(Access(principal), broadcast=lambda *args: None)
    return service.add_step(actor, convo_id, NewStep.model_validate({"content": {"text": text}}))


def search(principal, **query: str):
    return invoke("steps.query_steps", principal, query=query)


def ids(result) -> list[str]:
    assert result.status == 200, result.body
    return [s["id"] for s in result.json]


def test_steps_with_every_word_newest_first_across_convos(aws, aws_calls):
    alice, bob = make_user(), make_user()
    mine = convos.create_convo(Access(alice), ConvoCreate())["id"]
    shared = convos.create_convo(Access(bob), ConvoCreate())["id"]
    grant(Ref("convo", shared), alice, "viewer")
    first = write(alice, mine, "A Lisbon itinerary for three days")
    write(alice, mine, "Lisbon restaurants")
    second = write(bob, shared, "Itinerary: LISBON, then Sintra")
    aws_calls.reset()
    result = invoke("steps.query_steps", alice)  # the sample: searchTerm=lisbon itinerary
    assert ids(result) == [second["id"], first["id"]] and "x-next-token" not in result.headers
    # The postings of "itinerary", one check per convo (2 Queries + the caller's grants), the steps.
    assert dict(aws_calls.calls) == {"dynamodb:Query": 3, "dynamodb:BatchGetItem": 2}
    assert {k: v for k, v in result.json[0].items() if v is not None} == second
    assert ids(search(bob, searchTerm="lisbon")) == [second["id"]]


def test_steps_of_convos_the_caller_cannot_view_never_show(aws):
    owner, member, outsider = make_user(), make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, member, "member")
    topic = make_object("topic", team)
    in_topic = convos.create_convo(Access(owner), ConvoCreate(), topic_id=topic.id)["id"]
    private = convos.create_convo(Access(outsider), ConvoCreate())["id"]
    visible = write(owner, in_topic, "quarterly budget review")
    write(outsider, private, "secret budget review")
    assert ids(search(member, searchTerm="budget review")) == [visible["id"]]  # inherited from the team
    assert [s["convoId"] for s in search(outsider, searchTerm="budget").json] == [private]
    assert ids(search(make_user(), searchTerm="budget")) == []


def test_pages(aws):
    alice = make_user()
    convo = convos.create_convo(Access(alice), ConvoCreate())["id"]
    made = [write(alice, convo, f"harbour note {i}")["id"] for i in range(5)]
    seen, token = [], None
    while True:
        result = search(alice, searchTerm="harbour", limit="2", **({"nextToken": token} if token else {}))
        assert len(result.json) <= 2
        seen += ids(result)
        token = result.headers.get("x-next-token")
        if not token:
            break
    assert seen == list(reversed(made))
    other = search(
        alice,
        searchTerm="note",
        nextToken=search(alice, searchTerm="harbour", limit="1").headers["x-next-token"],
    )
    assert other.status == 400 and other.json["code"] == "invalid_next_token"


def test_a_search_cursor_hides_the_index_and_serves_only_its_caller(aws):
    """I7 (attack): tenant A searches a word tenant B also wrote; A's cursor must show no key of the
    global word index (B's convo and step ids), and B cannot use it."""
    tenant_a, tenant_b = make_user(), make_user()
    theirs = convos.create_convo(Access(tenant_b), ConvoCreate())["id"]
    hidden = [write(tenant_b, theirs, f"harbour secret {i}") for i in range(3)]
    mine = convos.create_convo(Access(tenant_a), ConvoCreate())["id"]
    own = [write(tenant_a, mine, f"harbour plan {i}")["id"] for i in range(3)]
    first = search(tenant_a, searchTerm="harbour", limit="2")
    token = first.headers["x-next-token"]
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    for secret in (theirs, mine, *(s["id"] for s in hidden), *own, tenant_b.user_id):
        assert secret.encode() not in raw and secret not in token
    for marker in (b"TERM#", b"OBJ#", b"GSI1", b"harbour"):
        assert marker not in raw
    seen, following = ids(first), token
    while following:  # page 2 and on, by the caller the cursor was issued to
        page = search(tenant_a, searchTerm="harbour", limit="2", nextToken=following)
        seen += ids(page)
        following = page.headers.get("x-next-token")
    assert seen == list(reversed(own))
    stolen = search(tenant_b, searchTerm="harbour", limit="2", nextToken=token)
    assert stolen.status == 400 and stolen.json["code"] == "invalid_next_token"


def test_bad_input(aws):
    alice = make_user()
    for query in (
        {},
        {"searchTerm": ""},
        {"searchTerm": "x" * 201},
        {"searchTerm": "a"},
        {"searchTerm": "?!"},
        {"searchTerm": "ok", "limit": "0"},
        {"searchTerm": "ok", "limit": "101"},
        {"searchTerm": "ok", "nextToken": "garbage"},
    ):
        result = search(alice, **query)
        assert 400 <= result.status < 500, (query, result.status)
        assert {"code", "message"} <= set(result.json), result.body
    assert search(alice, searchTerm="a").json["code"] == "search_term_has_no_words"
    assert search(None, searchTerm="ok").status == 401
