"""What a conversation list tells the reconcile: its latest message, whether its messages are all there, who has
read it, and who wrote each message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.respondent import RespondentClient
from adapters.respondent.client import parse_conversation, parse_message
from sandbox.respondent import OWNER, RespondentSandbox

PROJECT = "69603934cd7d6158385a200c"
USER = "6960391fbd5465b2dd6bd6e1"


@pytest.fixture
async def sandbox() -> AsyncIterator[RespondentSandbox]:
    sb = RespondentSandbox(api_key="k", api_secret="s")
    await sb.start()
    yield sb
    await sb.stop()


@pytest.fixture
async def client(sandbox: RespondentSandbox) -> AsyncIterator[RespondentClient]:
    assert sandbox.base_url
    c = RespondentClient(sandbox.base_url, "k", "s", timeout=2)
    yield c
    await c.close()


async def test_a_list_with_messages_is_complete_and_names_the_latest(
    sandbox: RespondentSandbox, client: RespondentClient
) -> None:
    await sandbox.participant_writes(PROJECT, USER, "one")
    latest = await sandbox.participant_writes(PROJECT, USER, "two")
    (conv,) = await client.list_conversations(PROJECT)
    assert conv.messages_complete and conv.latest_message_uid == latest
    assert [m.body for m in conv.messages] == ["one", "two"]
    assert sandbox.calls == {"GET /v1/messaging/conversations": 1}


async def test_a_list_without_messages_is_not_complete_but_the_conversation_is(
    sandbox: RespondentSandbox, client: RespondentClient
) -> None:
    sandbox.list_embeds_messages = False
    latest = await sandbox.participant_writes(PROJECT, USER, "hello")
    (listed,) = await client.list_conversations(PROJECT)
    assert not listed.messages_complete and listed.messages == () and listed.latest_message_uid == latest
    assert listed.participant_user_ids == (USER,)  # the owner is still told apart without messages
    full = await client.get_conversation(listed.uid)
    assert full.messages_complete and [m.uid for m in full.messages] == [latest]


def _conversation(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "uid": "c1",
        "user": OWNER,
        "participants": [OWNER, {"uid": USER}],
        "metadata": {"projectId": PROJECT},
    }
    return {**base, **fields}


def _message(uid: str) -> dict[str, Any]:
    return {"uid": uid, "body": "x", "createdAt": "2026-11-25T17:03:12.000Z", "sender": {"uid": USER}}


@pytest.mark.parametrize(
    ("fields", "complete"),
    [
        ({"messages": [_message("m1")], "messagesCount": 1, "latestMessage": {"uid": "m1"}}, True),
        ({"messages": [_message("m1")]}, True),  # no count, no latest: the list is all there is
        ({"messages": [], "messagesCount": 0}, True),
        ({"messagesCount": 0}, True),  # says it has none
        ({"messages": [_message("m2")], "messagesCount": 2, "latestMessage": {"uid": "m2"}}, False),  # truncated
        ({"messages": [_message("m1")], "latestMessage": {"uid": "m2"}}, False),  # the latest is missing
        ({"latestMessage": {"uid": "m1"}, "messagesCount": 1}, False),  # no messages at all
        ({}, False),  # nothing said: read it
    ],
)
def test_completeness_is_taken_only_from_what_the_object_shows(fields: dict[str, Any], complete: bool) -> None:
    assert parse_conversation(_conversation(**fields)).messages_complete is complete


@pytest.mark.parametrize(
    ("participants", "read_by"),
    [
        ([{**OWNER, "read": True}, {"uid": USER, "read": True}], {USER}),  # the owner is not a participant
        ([{**OWNER, "read": True}, {"uid": USER, "read": False}], set()),
        ([{"uid": USER}, {"uid": "u2", "read": True}], {"u2"}),  # no flag: not read
        ([{"uid": USER, "read": "true"}, {"uid": "u2", "read": 1}], set()),  # only a real true counts
        (["junk", None, {"read": True}, {"uid": 7, "read": True}, {"uid": USER, "read": True}], {USER}),
        ("not a list", set()),
    ],
)
def test_read_by_lists_participants_whose_read_flag_is_true(participants: Any, read_by: set[str]) -> None:
    assert parse_conversation(_conversation(participants=participants)).read_by == frozenset(read_by)


@pytest.mark.parametrize(
    ("sender", "name"),
    [
        ({"uid": USER, "firstName": "Jordan", "lastName": "Lee"}, "Jordan Lee"),
        ({"uid": USER, "firstName": " Jordan ", "lastName": ""}, "Jordan"),
        ({"uid": USER, "firstName": "", "lastName": "Lee"}, "Lee"),
        ({"uid": USER, "firstName": " ", "lastName": ""}, None),
        ({"uid": USER, "firstName": None, "lastName": 3}, None),
        ({"uid": USER}, None),
        (None, None),
    ],
)
def test_a_message_names_its_sender(sender: Any, name: str | None) -> None:
    message = parse_message({"uid": "m1", "body": "x", "sender": sender})
    assert message.sender_name == name
    assert message.sender_uid == (USER if sender else None)


async def test_read_flags_and_sender_names_come_through_the_client(
    sandbox: RespondentSandbox, client: RespondentClient
) -> None:
    await sandbox.participant_writes(PROJECT, USER, "hello", first_name="Jordan", last_name="Lee")
    (listed,) = await client.list_conversations(PROJECT)
    assert listed.read_by == {USER} and listed.messages[0].sender_name == "Jordan Lee"
    await client.send_message(listed.uid, "hi Jordan")
    conv = await client.get_conversation(listed.uid)
    assert conv.read_by == frozenset() and conv.messages[-1].sender_name == "Api Owner"
