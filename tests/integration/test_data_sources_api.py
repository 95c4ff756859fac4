"""Query Data Sources, Get / Update a Data Source, Generate Signed URL for Download."""

from urllib.parse import parse_qs, unquote, urlsplit
from uuid import uuid4

import pytest
import requests

from kallo import aws as kallo_aws
from kallo.authz.access import Access
from kallo.services import data_sources
from kallo.store import blobs, grants, keys, objects
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.api import invoke
from tests.support.world import grant, make_object, make_service_account, make_user, ref_of


def make_data_source(owner: Ref, **fields) -> Ref:
    """A data source item as the upload leaves it (its location is not read by these operations)."""
    defaults = {"type": "upload", "mimeType": "text/plain", "size": 5, "status": "ready"}
    defaults["location"] = blobs.prefix(owner, str(uuid4())) + blobs.ORIGINAL
    return make_object("data_source", owner, **{**defaults, **fields})


def link(data_source: Ref, target: Ref, at: str) -> None:
    """A `dependent` grant, as Add Topic / Convo Data Source writes it, at a given time."""
    table().put(grants.item(data_source, target, "dependent", created_by=str(uuid4()), created_at=at))


def uploaded(principal, data: bytes = b"Quarterly figures.\n", name: str = "Q3 r\u00e9sum\u00e9.txt") -> dict:
    return data_sources.upload_file(Access(principal), data, filename=name, declared_type="text/plain")


# -- Get a Data Source ---------------------------------------------------------------------------------


def test_get_data_source(aws, aws_calls):
    alice, bob = make_user(), make_user()
    created = uploaded(alice)
    aws_calls.reset()
    result = invoke("data_sources.get_data_source", alice, path={"dataSourceId": created["id"]})
    assert result.status == 200, result.body
    assert aws_calls.total == 3 and aws_calls["dynamodb:GetItem"] == 1, aws_calls.calls
    found = result.json
    assert found["id"] == created["id"] and found["status"] == "processing"
    assert set(found) == {
        "id",
        "name",
        "type",
        "location",
        "mimeType",
        "size",
        "status",
        "createdBy",
        "createdAt",
        "updatedAt",
    }
    for probe in (created["id"], str(uuid4())):
        hidden = invoke("data_sources.get_data_source", bob, path={"dataSourceId": probe})
        assert hidden.status == 404 and hidden.json["code"] == "not_found"
    assert invoke("data_sources.get_data_source", alice, path={"dataSourceId": "nope"}).status == 422


def test_a_team_member_and_a_linked_convo_see_it(aws):
    owner, member, participant = make_user(), make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, member, "member")
    shared = make_data_source(team)
    assert invoke("data_sources.get_data_source", member, path={"dataSourceId": shared.id}).status == 200
    convo = make_object("convo", ref_of(owner))
    grant(convo, participant, "participant")
    linked = make_data_source(ref_of(owner))
    assert invoke("data_sources.get_data_source", participant, path={"dataSourceId": linked.id}).status == 404
    grant(linked, convo, "dependent")
    assert invoke("data_sources.get_data_source", participant, path={"dataSourceId": linked.id}).status == 200


# -- Update a Data Source ------------------------------------------------------------------------------


def test_update_data_source(aws, aws_calls):
    alice, viewer, bob = make_user(), make_user(), make_user()
    created = uploaded(alice)
    ref = Ref("data_source", created["id"])
    grant(ref, viewer, "viewer")
    path = {"dataSourceId": ref.id}
    aws_calls.reset()
    result = invoke("data_sources.update_data_source", alice, path=path, body={"name": "../Renamed.txt"})
    assert result.status == 200, result.body
    assert aws_calls.total == 3 and aws_calls["dynamodb:UpdateItem"] == 1, aws_calls.calls
    assert result.json["name"] == "Renamed.txt" and result.json["updatedAt"] >= created["updatedAt"]
    assert result.json["location"] == created["location"] and objects.get(ref)["name"] == "Renamed.txt"
    denied = invoke("data_sources.update_data_source", viewer, path=path, body={"name": "mine"})
    assert denied.status == 403 and denied.json["code"] == "permission_denied"
    assert invoke("data_sources.update_data_source", bob, path=path, body={"name": "mine"}).status == 404
    for bad in (
        {},
        {"name": None},
        {"name": ""},
        {"name": "x", "location": "tenants/x"},
        {"status": "ready"},
    ):
        assert invoke("data_sources.update_data_source", alice, path=path, body=bad).status == 422, bad
    assert invoke("data_sources.update_data_source", alice, path=path, raw_body="{bad").status == 400
    assert objects.get(ref)["name"] == "Renamed.txt"


# -- Query Data Sources --------------------------------------------------------------------------------


def test_query_by_ids(aws, aws_calls):
    alice, bob = make_user(), make_user()
    mine = [make_data_source(ref_of(alice)) for _ in range(3)]
    theirs = make_data_source(ref_of(bob))
    ids = [mine[2].id, theirs.id, str(uuid4()), mine[0].id]
    aws_calls.reset()
    result = invoke("data_sources.query_data_sources", alice, query={"dataSourceIds": ",".join(ids)})
    assert result.status == 200, result.body
    assert [d["id"] for d in result.json] == [mine[2].id, mine[0].id]
    assert aws_calls.total == 3 and aws_calls["dynamodb:BatchGetItem"] == 2, aws_calls.calls
    probe = invoke("data_sources.query_data_sources", bob, query={"dataSourceIds": mine[0].id})
    assert probe.status == 200 and probe.json == []
    too_many = ",".join(str(uuid4()) for _ in range(101))
    assert invoke("data_sources.query_data_sources", alice, query={"dataSourceIds": too_many}).status == 422


def test_query_by_convo_and_topic(aws, aws_calls):
    alice, viewer, bob = make_user(), make_user(), make_user()
    topic = make_object("topic", ref_of(alice))
    convo = make_object("convo", ref_of(alice))
    grant(convo, viewer, "viewer")
    first, second, third = (make_data_source(ref_of(alice), name=n) for n in ("a", "b", "c"))
    bobs = make_data_source(ref_of(bob))
    for at, data_source in enumerate((second, first, bobs)):
        link(data_source, convo, f"2026-11-2{at}T10:00:00.000Z")
    for data_source in (first, second, third):
        grant(data_source, topic, "dependent")
    objects.update(topic, {"dataSourceIds": [third.id, first.id]})
    gone = make_data_source(ref_of(alice))
    link(gone, convo, "2026-11-19T10:00:00.000Z")
    table().delete(keys.object_key(gone))

    aws_calls.reset()
    by_convo = invoke("data_sources.query_data_sources", viewer, query={"convoId": convo.id})
    assert by_convo.status == 200, by_convo.body
    # In the order they were linked; a link can outlive its data source until the purge worker runs.
    assert [d["id"] for d in by_convo.json] == [second.id, first.id, bobs.id]
    assert aws_calls["dynamodb:Query"] == 2 and aws_calls["dynamodb:BatchGetItem"] == 2, aws_calls.calls
    assert aws_calls.total == 4

    aws_calls.reset()
    by_topic = invoke("data_sources.query_data_sources", alice, query={"topicId": topic.id})
    assert [d["id"] for d in by_topic.json] == [third.id, first.id, second.id]
    assert aws_calls.total == 5 and aws_calls["dynamodb:GetItem"] == 1, aws_calls.calls

    for query in ({"convoId": convo.id}, {"topicId": topic.id}, {"topicId": str(uuid4())}):
        assert invoke("data_sources.query_data_sources", bob, query=query).status == 404


def test_query_by_uploader_and_all(aws, aws_calls):
    alice, bob, carol = make_user(), make_user(), make_user()
    alices = [make_data_source(ref_of(alice)) for _ in range(2)]
    bobs = make_data_source(ref_of(bob))
    for data_source in (*alices, bobs):
        grant(data_source, carol, "viewer")
    mine = make_data_source(ref_of(carol))

    by_me = invoke("data_sources.query_data_sources", carol, query={"userId": carol.user_id})
    assert by_me.status == 200, by_me.body
    assert [d["id"] for d in by_me.json] == [mine.id]
    # `userId` names whom the caller acts for: viewing a user's data sources gives no authority over it.
    for caller in (carol, bob):
        refused = invoke("data_sources.query_data_sources", caller, query={"userId": alice.user_id})
        assert refused.status == 404 and refused.json["code"] == "not_found", refused.body

    aws_calls.reset()
    everything = invoke("data_sources.query_data_sources", carol, query={})
    assert sorted(d["id"] for d in everything.json) == sorted([*(r.id for r in alices), bobs.id, mine.id])
    assert aws_calls.total == 3 and "x-next-token" not in everything.headers, aws_calls.calls

    seen, token = [], None
    while True:
        page = invoke(
            "data_sources.query_data_sources",
            carol,
            query={"limit": "2", **({"nextToken": token} if token else {})},
        )
        assert page.status == 200 and len(page.json) <= 2
        seen += [d["id"] for d in page.json]
        token = page.headers.get("x-next-token")
        if not token:
            break
    assert sorted(seen) == sorted(d["id"] for d in everything.json)

    service, _ = make_service_account()
    pat = make_user(admin=service)
    pats = make_data_source(ref_of(pat))
    for_pat = invoke("data_sources.query_data_sources", service, query={"userId": pat.user_id})
    assert [d["id"] for d in for_pat.json] == [pats.id]


def test_query_bad_input(aws):
    alice = make_user()
    both = invoke(
        "data_sources.query_data_sources", alice, query={"convoId": str(uuid4()), "userId": alice.user_id}
    )
    assert both.status == 400 and both.json["code"] == "ambiguous_filter"
    for query in ({"convoId": "x"}, {"limit": "0"}, {"limit": "101"}, {"dataSourceIds": "a,b"}):
        result = invoke("data_sources.query_data_sources", alice, query=query)
        assert result.status == 422, (query, result.body)
    bad_token = invoke("data_sources.query_data_sources", alice, query={"nextToken": "garbage"})
    assert bad_token.status == 400 and bad_token.json["code"] == "invalid_next_token"


# -- Generate Signed URL for Download ------------------------------------------------------------------


def test_download_url(aws, aws_calls):
    alice, bob = make_user(), make_user()
    data = b"Quarterly figures.\n"
    created = uploaded(alice, data)
    objects.update(Ref("data_source", created["id"]), {"status": "ready"})  # as the worker leaves it
    version = objects.get(Ref("data_source", created["id"]))["versionId"]
    aws_calls.reset()
    result = invoke("data_sources.get_download_url", alice, path={"dataSourceId": created["id"]})
    assert result.status == 200, result.body
    assert aws_calls.total == 3 and aws_calls["dynamodb:GetItem"] == 1, aws_calls.calls
    url = result.json
    assert isinstance(url, str)
    query = parse_qs(urlsplit(url).query)
    assert int(query["X-Amz-Expires"][0]) == 300 <= 900
    assert query["versionId"] == [version]
    assert query["response-content-type"] == ["text/plain"]
    disposition = query["response-content-disposition"][0]
    assert disposition.startswith('attachment; filename="Q3 resume.txt"; filename*=UTF-8')
    assert unquote(disposition.split("''", 1)[1]) == "Q3 r\u00e9sum\u00e9.txt"
    assert urlsplit(url).path.endswith(created["location"])

    fetched = requests.get(url, timeout=10)
    assert fetched.status_code == 200 and fetched.content == data
    assert fetched.headers["content-disposition"] == disposition

    # A newer version under the same key does not change what the URL returns.
    kallo_aws.client("s3").put_object(Bucket=blobs.bucket(), Key=created["location"], Body=b"other bytes")
    assert requests.get(url, timeout=10).content == data

    assert invoke("data_sources.get_download_url", bob, path={"dataSourceId": created["id"]}).status == 404
    blobs.delete_all(blobs.prefix(ref_of(alice), created["id"]))
    # S3 answers 404 NoSuchVersion, or 403 when the signer may not list the bucket (as in Lambda).
    gone = requests.get(url, timeout=10)
    assert gone.status_code in (403, 404) and data not in gone.content, gone.text


def test_no_download_before_the_presigned_upload(aws):
    alice = make_user()
    waiting = make_data_source(ref_of(alice), status="awaiting_upload")
    result = invoke("data_sources.get_download_url", alice, path={"dataSourceId": waiting.id})
    assert result.status == 409 and result.json["code"] == "not_uploaded"
    missing = invoke("data_sources.get_download_url", alice, path={"dataSourceId": str(uuid4())})
    assert missing.status == 404


@pytest.mark.parametrize("status", ["processing", "failed"])
def test_a_data_source_that_is_not_ready_is_never_served(aws, status):
    """I11: bytes being checked, or that failed their checks, have no download URL."""
    alice = make_user()
    created = uploaded(alice)
    objects.update(Ref("data_source", created["id"]), {"status": status})
    result = invoke("data_sources.get_download_url", alice, path={"dataSourceId": created["id"]})
    assert result.status == 409 and result.json["code"] == "not_ready", result.body


def test_another_tenants_user_is_not_found(aws):
    """I1 (authority), attacked from tenant B: listing by the id of tenant A's user answers as for an
    unknown user, even when B can view what that user uploaded; B's own user's listing works."""
    tenant_a, _ = make_service_account("tenant A")
    tenant_b, _ = make_service_account("tenant B")
    alice, bob = make_user(admin=tenant_a), make_user(admin=tenant_b)
    alices = make_data_source(ref_of(alice))
    grant(alices, bob, "viewer")
    missing = str(uuid4())
    for caller in (tenant_b, bob):
        hidden = invoke("data_sources.query_data_sources", caller, query={"userId": alice.user_id})
        unknown = invoke("data_sources.query_data_sources", caller, query={"userId": missing})
        assert hidden.status == unknown.status == 404
        assert hidden.json == {"code": "not_found", "message": f"user {alice.user_id} not found"}
        assert unknown.json == {"code": "not_found", "message": f"user {missing} not found"}
    bobs = make_data_source(ref_of(bob))
    for_bob = invoke("data_sources.query_data_sources", tenant_b, query={"userId": bob.user_id})
    assert for_bob.status == 200 and [d["id"] for d in for_bob.json] == [bobs.id]
