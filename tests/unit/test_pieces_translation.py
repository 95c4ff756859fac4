"""Kallo ↔ Pieces translation (`kallo.surfaces.pieces`): what it builds is accepted by the models of the
real `pieces-os-client` package (which validate required fields and types), and what that package
sends is read by the surface's seed models."""

from __future__ import annotations

import json

import pytest
from pieces_os_client.models.application import Application
from pieces_os_client.models.conversation import Conversation
from pieces_os_client.models.conversations import Conversations
from pieces_os_client.models.conversations_create_from_asset_output import ConversationsCreateFromAssetOutput
from pieces_os_client.models.flattened_assets import FlattenedAssets
from pieces_os_client.models.flattened_conversations import FlattenedConversations
from pieces_os_client.models.fragment_format import FragmentFormat
from pieces_os_client.models.referenced_asset import ReferencedAsset
from pieces_os_client.models.seeded_conversation import SeededConversation
from pieces_os_client.models.seeded_conversation_message import SeededConversationMessage
from pieces_os_client.models.streamed_identifiers import StreamedIdentifiers
from pieces_os_client.models.transferable_string import TransferableString
from pydantic import ValidationError

from kallo.realtime import identifiers as streams
from kallo.surfaces import pieces

CONVO = {
    "id": "01a23bd8-a326-7a05-9a21-0a69b9ce64b5",
    "name": "Trip",
    "createdAt": "2026-12-03T12:19:43.014Z",
    "createdBy": "u1",
    "updatedAt": "2026-12-03T12:20:00.000Z",
}


def step(step_id: str, author: str, text: str, **fields) -> dict:
    return {
        "id": step_id,
        "convoId": CONVO["id"],
        "authorType": author,
        "content": {"text": text},
        "createdAt": "2026-12-03T12:19:44.000Z",
        "updatedAt": "2026-12-03T12:19:45.000Z",
        **fields,
    }


STEPS = [
    step("s1", "user", "Where to go?"),
    step("s2", "llm", "Lisbon."),
    step("s3", "llm", "Porto.", isAlternate=True),
]


def test_a_convo_is_a_pieces_conversation():
    built = pieces.conversation(CONVO, STEPS, ["d1"])
    parsed = Conversation.from_json(json.dumps(built))
    assert parsed.id == CONVO["id"] and parsed.name == "Trip" and parsed.type.value == "COPILOT"
    assert parsed.created.value.isoformat().startswith("2026-12-03T12:19:43.014")
    assert parsed.updated.readable == "2026-12-03 12:20:00 UTC"
    # Alternates are not messages; the primary steps are, in order.
    messages = parsed.messages.iterable
    assert [m.id for m in messages] == ["s1", "s2"] and parsed.messages.indices == {"s1": 0, "s2": 1}
    assert [m.reference.role.value for m in messages] == ["USER", "ASSISTANT"]
    assert messages[1].reference.fragment.string.raw == "Lisbon."
    assert messages[1].reference.conversation.id == CONVO["id"]
    assert [a.id for a in parsed.assets.iterable] == ["d1"]


def test_without_transferables_messages_carry_no_text():
    built = pieces.conversation(CONVO, STEPS, [], transferables=False)
    parsed = Conversation.from_json(json.dumps(built))
    assert all(m.reference.fragment is None for m in parsed.messages.iterable)
    assert parsed.assets is None


def test_a_nameless_convo_has_no_name():
    built = pieces.conversation({**CONVO, "name": ""}, [], [])
    assert "name" not in built
    parsed = Conversation.from_json(json.dumps(built))
    assert parsed.name is None and parsed.messages.iterable == []


def test_listings_and_outputs_parse():
    listed = pieces._flat([CONVO["id"]], [pieces.conversation(CONVO, STEPS, [])])
    assert Conversations.from_json(json.dumps(listed)).iterable[0].id == CONVO["id"]
    ids = FlattenedConversations.from_json(json.dumps(pieces.identifiers(["a", "b"])))
    assert [c.id for c in ids.iterable] == ["a", "b"] and ids.indices == {"a": 0, "b": 1}
    output = {"conversation": {"id": CONVO["id"], "reference": pieces.conversation(CONVO, STEPS, ["d1"])}}
    parsed = ConversationsCreateFromAssetOutput.from_json(json.dumps(output))
    assert parsed.conversation.reference.assets.iterable[0].id == "d1"


def test_a_stream_frame_is_streamed_identifiers():
    frame = StreamedIdentifiers.from_json(streams.frame(["a", "b"], ["c"]).decode())
    assert [(i.conversation.id, i.deleted) for i in frame.iterable] == [("a", None), ("b", None), ("c", True)]
    assert StreamedIdentifiers.from_json(streams.frame([]).decode()).iterable == []


def test_what_the_client_sends_is_read():
    seed = SeededConversation(
        type="COPILOT",
        name="From a client",
        messages=[
            SeededConversationMessage(
                role="USER", fragment=FragmentFormat(string=TransferableString(raw="hi"))
            ),
            SeededConversationMessage(
                role="ASSISTANT", fragment=FragmentFormat(string=TransferableString(raw="yo"))
            ),
        ],
        assets=FlattenedAssets(iterable=[ReferencedAsset(id="0d9e3c5c-4a37-4d3e-9d1e-1f0f6b3f2a10")]),
        application=Application.from_dict(
            {
                "id": "app",
                "name": "OPEN_SOURCE",
                "onboarded": True,
                "platform": "LINUX",
                "privacy": "OPEN",
                "version": "1.0.0",
                "descriptor": "kallo-topic:4a4f6a3c-0c53-4a39-9b0c-7f4a1a9b3e21",
            }
        ),
    )
    read = pieces.SeededConversation.model_validate(json.loads(seed.to_json()))
    assert read.name == "From a client" and [m.role for m in read.messages] == ["USER", "ASSISTANT"]
    assert read.messages[1].fragment.string.raw == "yo"
    assert pieces._topic_of(read) == "4a4f6a3c-0c53-4a39-9b0c-7f4a1a9b3e21"
    assert [a.id for a in read.assets.iterable] == ["0d9e3c5c-4a37-4d3e-9d1e-1f0f6b3f2a10"]


@pytest.mark.parametrize(
    "seed",
    [
        {},  # type is required, as in the client's model
        {"type": "COPILOT", "name": "two\nlines"},
        {"type": "COPILOT", "messages": [{"role": "USER", "fragment": {"string": {"raw": "x" * 70_000}}}]},
        {"type": "COPILOT", "messages": [{"role": "USER", "fragment": {}}] * (pieces.MAX_MESSAGES + 1)},
        {"type": "COPILOT", "assets": {"iterable": [{"id": "x"}] * (pieces.MAX_ASSETS + 1)}},
    ],
)
def test_bad_seeds_are_refused(seed):
    with pytest.raises(ValidationError):
        pieces.SeededConversation.model_validate(seed)


def test_an_id_that_is_not_a_uuid_names_nothing():
    from kallo.errors import NotFound

    assert (
        pieces._id("0D9E3C5C-4A37-4D3E-9D1E-1F0F6B3F2A10", "convo") == "0d9e3c5c-4a37-4d3e-9d1e-1f0f6b3f2a10"
    )
    for bad in ("nope", "x" * 100, "../identifiers"):
        with pytest.raises(NotFound):
            pieces._id(bad, "convo")
