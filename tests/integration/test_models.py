"""Query Models: GET /models, and the refusal of a model off that list when a topic is written."""

from kallo.auth.principal import Principal
from kallo.settings import get_settings
from tests.support.api import invoke
from tests.support.world import make_object, make_service_account, make_user, ref_of

TOPIC = {"name": "Lichens", "description": "Of Antarctica"}


def test_any_caller_lists_the_deployment_models_the_default_first(aws, aws_calls, monkeypatch):
    monkeypatch.setenv("KALLO_DEFAULT_MODEL", "bedrock:amazon.nova-lite-v1:0")
    monkeypatch.setenv(
        "KALLO_ALLOWED_MODELS", '["bedrock:amazon.nova-micro-v1:0", "bedrock:amazon.nova-lite-v1:0"]'
    )
    get_settings.cache_clear()
    service_account, _ = make_service_account()
    user = make_user()
    # A token scoped to one topic is an authenticated caller too: the list is the deployment's, no one's.
    narrow = Principal(
        user_id=user.user_id, scheme="access_token", scope=(make_object("topic", ref_of(user)),)
    )
    expected = [
        {"id": "bedrock:amazon.nova-lite-v1:0", "provider": "bedrock", "default": True},
        {"id": "bedrock:amazon.nova-micro-v1:0", "provider": "bedrock", "default": False},
    ]
    for caller in (service_account, user, narrow):
        aws_calls.reset()
        result = invoke("models.query_models", caller)
        assert (result.status, result.json) == (200, expected), result.body
        assert aws_calls.calls == {}


def test_the_list_needs_credentials(aws):
    assert invoke("models.query_models", None).status in (401, 403)


def test_a_topic_naming_an_unknown_model_is_refused_with_the_accepted_ones(aws, monkeypatch):
    """Refused when written (422), not when an answer fails: create and update alike."""
    monkeypatch.setenv("KALLO_DEFAULT_MODEL", "embedded:smollm2")
    monkeypatch.setenv("KALLO_ALLOWED_MODELS", '["embedded:smollm2"]')
    get_settings.cache_clear()
    alice = make_user()
    topic = invoke("topics.create_topic", alice, query={}, body=TOPIC).json
    for model in ("smollm2", "embedded:smollm3", "bedrock:amazon.nova-lite-v1:0", "openai:gpt-4o"):
        body = {"config": {"defaults": {"model": model}}}
        for result in (
            invoke("topics.create_topic", alice, query={}, body={**TOPIC, **body}),
            invoke("topics.update_topic", alice, path={"topicId": topic["id"]}, body=body),
        ):
            assert (result.status, result.json["code"]) == (422, "unknown_model"), result.body
            assert "this deployment answers with embedded:smollm2" in result.json["message"]
    stored = invoke("topics.query_topics", alice, query={"topicIds": topic["id"]}).json
    assert [t["config"] for t in stored] == [{"defaults": {}}]
