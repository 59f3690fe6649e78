"""Teams pieces without a network: text both ways, the app package, and the configuration rules."""

from __future__ import annotations

import html
import json
import re
import struct
import zipfile
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from botbuilder.schema import Activity

from adapters.teams import card as teams_card
from adapters.teams import format as fmt
from adapters.teams.inbound import event_of, split_conversation_id
from adapters.teams.package import APP_PACKAGE, PackageError, manifest, write_package
from adapters.teams.setup import teams_problems
from core import texts
from core.events import EventKind
from core.message import cmd, text
from playground.world import free_port
from tests.integration.test_cli import _valid_env, run

APP_ID = "12345678-1234-1234-1234-123456789abc"


# ---- text ---------------------------------------------------------------------------------------------------


def test_participant_text_cannot_mention_link_or_inject_markup() -> None:
    escaped = fmt.escape('<at>General</at> <a href="https://evil">bank</a> & <img src=x onerror=y>\nline 2')
    assert "<" not in escaped.replace("<br>", "") and "&amp;" in escaped and escaped.endswith("<br>line 2")
    assert fmt.escape_markdown("[bank](https://evil) **x**") == r"\[bank\](https://evil) \*\*x\*\*"


MARKDOWN_TRAPS = [
    "[label](https://evil.example)",
    "![img](https://evil.example/x.png) [ref][1]\n[1]: https://evil.example",
    "**bold** __bold__ *it* _it_ `code` ~~gone~~ \\[escaped\\](https://evil.example)",
    "# Heading\n- item\n+ item\n1. first\n2) second\ntext\n===\n---\n> quote\n| a | b |",
    "<https://evil.example> &#91;x&#93;(https://evil.example) pa_1 st_123",
]


@pytest.mark.parametrize("outside", MARKDOWN_TRAPS)
def test_participant_text_cannot_become_a_markdown_link_or_formatting(outside: str) -> None:
    escaped = fmt.escape(outside)
    # No Markdown syntax reaches Teams as such: every such character is a numeric character reference ...
    assert not {"[", "]", "*", "`", "_", "~", "|", "\\"} & set(escaped) and "](" not in escaped
    lines = escaped.split("<br>")
    assert not any(line.lstrip().startswith(("#", "-", "+", "=", ">", "1.", "2)")) for line in lines)
    # ... which Teams' HTML shows as the character: the reader sees exactly what was typed.
    assert html.unescape(escaped.replace("<br>", "\n")) == outside
    # A CommonMark reader (Teams may read Markdown too) finds plain text: no link, image, emphasis, code, block.
    markdown_it = pytest.importorskip("markdown_it")
    rendered = markdown_it.MarkdownIt("commonmark").render(escaped)
    tags = set(re.findall(r"<([a-z0-9]+)", rendered))
    assert tags <= {"p", "br"}, rendered


def test_card_text_escapes_links_formatting_and_a_leading_list_marker() -> None:
    assert fmt.escape_markdown("[x](https://evil.example)") == r"\[x\](https://evil.example)"
    assert fmt.escape_markdown("- Jo") == r"\- Jo" and fmt.escape_markdown("1. Jo") == r"1\. Jo"
    assert fmt.escape_markdown("Jo\n- x") == "Jo - x"  # one line: a marker further on is no list


@pytest.mark.parametrize(
    ("teams", "plain"),
    [
        ("<at>Ana Ortiz</at> see you", "@Ana Ortiz see you"),
        ("<at>Rally Bridge</at> thanks", "thanks"),
        (
            '<p>See <a href="https://x.example/s">the schedule</a></p><p>bye</p>',
            "See the schedule (https://x.example/s)\nbye",
        ),
        ('<a href="https://x.example">https://x.example</a>', "https://x.example"),
        ('<a href="mailto:a@b.c">a@b.c</a>', "a@b.c"),
        ("I &lt;3 you &amp; a < b", "I <3 you & a < b"),
        ("line<br>next", "line\nnext"),
    ],
)
def test_researcher_text_becomes_plain_text(teams: str, plain: str) -> None:
    assert fmt.to_plain_text(teams, bot_name="Rally Bridge") == plain


def test_core_wording_is_addressed_the_teams_way() -> None:
    line = text("• ", cmd("link <studyId>"), ": ...")
    assert fmt.render(line, "Rally Bridge") == "• @Rally Bridge link &lt;studyId&gt;: ..."
    assert fmt.wording(line, "Rally Bridge") == "• @Rally Bridge link <studyId>: ..."
    assert "as in Teams." in fmt.wording(texts.not_on_team("Study"), "Rally Bridge")
    assert "Home tab" not in fmt.wording(texts.retry_not_found("3"), "Rally Bridge")


def test_root_card_carries_the_slack_roots_facts() -> None:
    when = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)
    card = teams_card.root_card("Jo [x](y)", "Study *A*", when, "https://app.rallyuxr.com/schedule/1")
    text = json.dumps(card)
    assert r"Jo \\[x\\](y)" in text and r"Study \\*A\\*" in text and "Fri 27 Nov 2026, 17:00 UTC" in text
    assert card["actions"][0]["url"] == "https://app.rallyuxr.com/schedule/1"
    assert "actions" not in teams_card.root_card("Jo", "S", None, "javascript:alert(1)")


@pytest.mark.parametrize("url", ["https://app.rallyuxr.com/schedule/pa_1", "http://rally.example/s?a=1&b=pa_1*"])
def test_the_scheduling_link_is_the_cards_button_not_an_escaped_fact(url: str) -> None:
    card = teams_card.root_card("Jo", "Study", None, url)
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Scheduling link", "url": url}]
    (facts,) = [block["facts"] for block in card["body"] if block["type"] == "FactSet"]
    assert [fact["title"] for fact in facts] == ["Study"]
    assert "\\" not in json.dumps(card)  # no Markdown escape anywhere: nothing Teams could show as a stray backslash


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "https://", "https://a.example/x y", "https://a.example/\nx", "http://[::1", "ftp://a"],
)
def test_a_scheduling_link_that_is_no_web_address_is_left_off_the_card(url: str) -> None:
    card = teams_card.root_card("Jo", "Study", None, url)
    assert "actions" not in card and url not in json.dumps(card) and "Scheduling" not in json.dumps(card)


# ---- activities -------------------------------------------------------------------------------------------


def _activity(**extra: object) -> Activity:
    base = {
        "type": "message",
        "id": "1700000000002",
        "channelId": "msteams",
        "serviceUrl": "https://smba.trafficmanager.net/emea/",
        "from": {"id": "29:ana", "name": "Ana"},
        "recipient": {"id": "28:bot", "name": "Rally Bridge"},
        "conversation": {"id": "19:c@thread.tacv2;messageid=1700000000001", "conversationType": "channel"},
        "channelData": {"channel": {"id": "19:c@thread.tacv2"}, "tenant": {"id": "tenant-1"}},
        "text": "hello",
    }
    return Activity().deserialize({**base, **extra})


def test_a_reply_in_a_chain_is_a_chat_message_with_the_root_as_thread() -> None:
    event = event_of(_activity())
    assert event is not None and event.kind is EventKind.CHAT_MESSAGE
    p = event.payload
    assert (p["platform"], p["workspace"], p["channel"]) == ("teams", "tenant-1", "19:c@thread.tacv2")
    assert (p["ts"], p["thread_ts"]) == ("1700000000002", "1700000000001")
    assert split_conversation_id("19:c@thread.tacv2") == ("19:c@thread.tacv2", None)


def test_a_new_post_mentioning_the_bot_is_a_command_and_the_bots_own_posts_are_ignored() -> None:
    mention = {
        "type": "mention",
        "text": "<at>Rally Bridge</at>",
        "mentioned": {"id": "28:bot", "name": "Rally Bridge"},
    }
    event = event_of(
        _activity(
            text="<at>Rally Bridge</at> link st_1",
            entities=[mention],
            conversation={"id": "19:c@thread.tacv2;messageid=1700000000002", "conversationType": "channel"},
        )
    )
    assert event is not None and event.kind is EventKind.CHAT_COMMAND and event.payload["text"] == "link st_1"
    assert event_of(_activity(**{"from": {"id": "28:bot", "name": "Rally Bridge"}})) is None
    assert event_of(_activity(type="conversationUpdate")) is None


# ---- the app package --------------------------------------------------------------------------------------


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    length = struct.unpack(">I", data[8:12])[0]
    assert zlib.crc32(data[12 : 16 + length]) & 0xFFFFFFFF == struct.unpack(">I", data[16 + length : 20 + length])[0]
    return width, height


def test_the_package_has_manifest_and_icons_for_this_bot(tmp_path: Path) -> None:
    out = write_package(APP_ID, "https://bridge.example.org/", tmp_path / "app.zip")
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(archive.read("manifest.json"))
        assert _png_size(archive.read("color.png")) == (192, 192)
        assert _png_size(archive.read("outline.png")) == (32, 32)
    # Structural checks of what the v1.17 schema requires (the schema itself is not available offline).
    assert manifest["manifestVersion"] == "1.17" and "v1.17" in manifest["$schema"]
    for field in ("id", "version", "developer", "name", "description", "icons", "accentColor"):
        assert manifest[field]
    assert len(manifest["name"]["short"]) <= 30 and len(manifest["description"]["short"]) <= 80
    assert len(manifest["description"]["full"]) <= 4000
    (bot,) = manifest["bots"]
    assert bot["botId"] == APP_ID and set(bot["scopes"]) == {"team", "personal"}
    team_commands = next(c for c in bot["commandLists"] if c["scopes"] == ["team"])["commands"]
    assert [c["title"] for c in team_commands] == ["link", "unlink", "assign", "queue", "replies", "update", "help"]
    assert all(len(c["description"]) <= 128 for lst in bot["commandLists"] for c in lst["commands"])
    rsc = manifest["authorization"]["permissions"]["resourceSpecific"]
    assert {"name": "ChannelMessage.Read.Group", "type": "Application"} in rsc
    assert manifest["webApplicationInfo"]["id"] == APP_ID
    assert manifest["validDomains"] == ["bridge.example.org"]
    developer = manifest["developer"]  # the pages the bridge serves itself (bot/pages.py, tests/teams/test_pages.py)
    assert developer["websiteUrl"] == "https://bridge.example.org"
    assert developer["privacyUrl"] == "https://bridge.example.org/privacy"
    assert developer["termsOfUseUrl"] == "https://bridge.example.org/terms"
    assert "00000000-0000" not in json.dumps(manifest) and "example.com" not in json.dumps(manifest)


def test_the_manifests_privacy_and_terms_urls_are_under_the_bridges_url_path_and_port_included() -> None:
    developer = manifest(APP_ID, "https://example.org:8443/rally-bridge/")["developer"]
    assert developer["privacyUrl"] == "https://example.org:8443/rally-bridge/privacy"
    assert developer["termsOfUseUrl"] == "https://example.org:8443/rally-bridge/terms"


def test_the_package_refuses_a_wrong_app_id_or_url(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="GUID"):
        write_package("my-bot", "https://bridge.example.org", tmp_path / "x.zip")
    with pytest.raises(PackageError, match="https"):
        write_package(APP_ID, "http://bridge.example.org", tmp_path / "x.zip")
    assert (APP_PACKAGE / "color.png").is_file() and (APP_PACKAGE / "outline.png").is_file()


# ---- configuration ----------------------------------------------------------------------------------------


def test_teams_is_off_without_microsoft_settings_and_needs_an_app_id_outside_a_sandbox() -> None:
    from bot.settings import Settings

    assert teams_problems(Settings(_env_file=None)) == []
    no_id = Settings(_env_file=None, microsoft_app_password="secret")
    assert [p.split(":")[0] for p in teams_problems(no_id)] == ["MICROSOFT_APP_ID"]
    assert teams_problems(Settings(_env_file=None, teams_sandbox=True)) == []
    single = Settings(
        _env_file=None, microsoft_app_id=APP_ID, microsoft_app_password="s", microsoft_app_type="singletenant"
    )
    assert [p.split(":")[0] for p in teams_problems(single)] == ["MICROSOFT_APP_TENANT_ID"]
    msi = Settings(_env_file=None, microsoft_app_id=APP_ID, microsoft_app_type="UserAssignedMSI")
    assert [p.split(":")[0] for p in teams_problems(msi)] == ["MICROSOFT_APP_TENANT_ID"]
    assert teams_problems(Settings(_env_file=None, microsoft_app_id=APP_ID, microsoft_app_tenant_id="t")) == [
        "MICROSOFT_APP_PASSWORD: not set (the client secret of the bot's app registration, needed with "
        "MICROSOFT_APP_TYPE SingleTenant)"
    ]


@pytest.mark.slow
def test_serve_refuses_to_open_the_teams_route_without_an_app_id(tmp_path: Path) -> None:
    env = {**_valid_env(tmp_path), "MICROSOFT_APP_PASSWORD": "secret", "RALLYBRIDGE_PORT": str(free_port())}
    result = run(tmp_path, "serve", env=env)
    assert result.returncode == 2 and "MICROSOFT_APP_ID: not set" in result.stderr, result.stderr
    package = run(tmp_path, "teams-package", "--app-id", APP_ID, "--url", "https://b.example.org", env=env)
    assert package.returncode == 0 and (tmp_path / "rallybridge-teams.zip").exists(), package.stderr
