"""The bridge's two public pages: ``GET /privacy`` and ``GET /terms``, which the Teams app package's manifest names
as its ``privacyUrl`` and ``termsOfUseUrl`` (the paths are ``adapters/teams/package.py``'s, so the two agree).

Plain HTML, every word escaped, no scripts, nothing read from the request or the database. The privacy page says
what the bridge really keeps (the tables of ``storage/models.py``, ``storage/reminders.py``, ``storage/teams.py``),
where, and for how long: finished queue rows (with the message text in them) are deleted after the retention
(``RALLYBRIDGE_RETENTION_DAYS``, ``storage/retention.py``), whose number of days the page states; nothing else is
deleted automatically, so it says so. No setting names a contact, so both pages point to the team that runs the
bridge.
"""

from __future__ import annotations

import html

from aiohttp import web

from adapters.teams.package import PRIVACY_PATH, TERMS_PATH
from adapters.web import Handler
from bot.settings import DEFAULT_RETENTION_DAYS

CONTACT = "the team that runs this bridge"

# A page: its title (also the top heading), an introduction, then sections of (heading, paragraphs or items).
Section = tuple[str, tuple[str, ...]]

PRIVACY_TITLE = "Rally Bridge privacy notice"
PRIVACY_INTRO = (
    "Rally Bridge connects the chat with research participants on Respondent to a Slack or Microsoft Teams channel "
    f"of the team that runs a Rally study. This page says what the bridge stores, where, for how long, and who to "
    f"ask. It describes the software as it works; how this copy is run is decided by {CONTACT}."
)


def _how_long(retention_days: int) -> Section:
    return (
        "How long it is kept",
        (
            f"Finished inbox and outbox rows, with the message text they carry, are deleted automatically "
            f"{retention_days} days after they were handled. A reply that could not be delivered to a participant "
            f"is kept, with its text, for as long as it can still be sent again: until it is sent (then it is "
            f"deleted {retention_days} days later, like the rest) or until {CONTACT} deletes it.",
            f"The bridge deletes nothing else by itself: linked studies, threads, message records (ids, no text) and "
            f"reminders stay in the database until {CONTACT} deletes them. Backups of the database keep what they "
            f"hold for as long as they are kept.",
            "Unlinking a study stops the bridging and a participant opting out stops messages to them; neither "
            "deletes what was stored. When a Slack workspace uninstalls the app, its installation and bot token "
            "are deleted.",
        ),
    )


def privacy_sections(retention_days: int = DEFAULT_RETENTION_DAYS) -> tuple[Section, ...]:
    """The privacy notice's sections, saying how many days finished queue rows are kept."""
    return (*_STORED_AND_WHERE, _how_long(retention_days), _PRIVACY_CONTACT)


_STORED_AND_WHERE: tuple[Section, ...] = (
    (
        "What the bridge stores",
        (
            "Linked studies (table study_links): the Rally study's id and name, its Respondent project id, the chat "
            "platform, workspace and channel it is bridged to, who linked it (a chat user id) and when.",
            "Participants' threads (participant_threads): for each approved participant of a linked study, the "
            "Rally participant and person ids, email address, display name, the Respondent project, user and "
            "conversation ids, the scheduling link and session time, whether they opted out, and the channel and "
            "thread that carry their conversation.",
            "Message records (chat_messages): one row per message in either direction, with its ids on each side "
            "(the Respondent message id, the chat post id), the author's chat user id and name, whether it was "
            "delivered, the reason if it was not, and when it was sent. These rows do not hold the message text.",
            "Reminders (reminders): the text of each scheduled message to a participant, when it is due, the time "
            "as typed and its time zone, who asked for it (chat user id, name, email address, Rally user id) and "
            "what became of it.",
            "The inbox (inbox): every event the bridge received, as it was received: researchers' channel messages "
            "and commands with their text, Rally status changes and opt-outs (with the email address), and the ids "
            "of new Respondent messages (a participant's message text is read from Respondent, not kept here).",
            "The outbox (outbox): every action on another system, with what it needs: participants' message text "
            "to post in the channel, researchers' replies to send to the participant, the entries archived on the "
            "Rally study (message text, author name and email address), notices to chat users and home views.",
            "Chat platform state. Slack: each workspace installation with its bot token (slack_installations, "
            "slack_bots), short-lived install states (slack_oauth_states), uninstalls (slack_uninstalls) and which "
            "workspace a channel or user id belongs to (slack_directory). Teams: how to reach each channel and "
            "personal chat (teams_conversations), the users the bridge has seen (teams_users: id, name, directory "
            "object id) and a record of each post it made (teams_posts: ids only, no text).",
        ),
    ),
    (
        "Where it is stored and where it goes",
        (
            f"Everything above is kept in the database of {CONTACT}, nowhere else.",
            "Message text goes only to the systems the bridge connects: a participant's messages are posted in the "
            "linked Slack or Teams channel, a researcher's replies are sent to the participant through Respondent, "
            "and both are archived on the study record in Rally.",
        ),
    ),
)
_PRIVACY_CONTACT: Section = (
    "Who to contact",
    (f"Ask {CONTACT} about the data it keeps about you, or to have it corrected or deleted.",),
)

TERMS_TITLE = "Rally Bridge terms of use"
TERMS_INTRO = (
    f"This bridge is run by {CONTACT}, for its own research studies on Rally that recruit on Respondent. "
    "Using it from Slack or Microsoft Teams means using it under that team's own policies and its agreements with "
    "Rally, Respondent, Slack and Microsoft."
)
TERMS_SECTIONS: tuple[Section, ...] = (
    (
        "Use",
        (
            "Use the bridge only to talk with participants of studies you work on. Replies are checked against the "
            "Rally study team before they are sent; a reply from someone outside it is refused.",
            "Respect a participant's choice: the bridge sends nothing to a participant who opted out.",
        ),
    ),
    (
        "No warranty",
        (
            "The bridge is provided as is, without warranty of any kind. A message may be delayed, and in rare "
            "cases posted twice in the channel; a reply that cannot be delivered is marked as not delivered.",
        ),
    ),
    (
        "Privacy",
        ("What the bridge stores, where and for how long is described in its privacy notice.",),
    ),
    (
        "Who to contact",
        (f"Ask {CONTACT} about these terms.",),
    ),
)


def page(title: str, intro: str, sections: tuple[Section, ...], *, see_also: tuple[str, str] | None = None) -> str:
    """A standalone HTML page: every text escaped; ``see_also`` is a (relative href, label) link at the end."""
    e = html.escape
    lines = [
        "<!doctype html>",
        '<html lang="en">',
        '<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title></head>",
        '<body style="font-family: sans-serif; max-width: 46em; margin: 2em auto; padding: 0 1em; line-height: 1.5">',
        f"<h1>{e(title)}</h1>",
        f"<p>{e(intro)}</p>",
    ]
    for heading, paragraphs in sections:
        lines.append(f"<h2>{e(heading)}</h2>")
        lines += [f"<p>{e(paragraph)}</p>" for paragraph in paragraphs]
    if see_also is not None:
        href, label = see_also
        lines.append(f'<p><a href="{e(href)}">{e(label)}</a></p>')
    lines += ["</body>", "</html>", ""]
    return "\n".join(lines)


def privacy_html(retention_days: int = DEFAULT_RETENTION_DAYS) -> str:
    return page(PRIVACY_TITLE, PRIVACY_INTRO, privacy_sections(retention_days), see_also=("terms", "Terms of use"))


PRIVACY_HTML = privacy_html()  # with the default retention
TERMS_HTML = page(TERMS_TITLE, TERMS_INTRO, TERMS_SECTIONS, see_also=("privacy", "Privacy notice"))

# Nothing on these pages loads, runs or frames anything.
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


def _route(body: str) -> Handler:
    async def handle(_request: web.Request) -> web.StreamResponse:
        return web.Response(text=body, content_type="text/html", charset="utf-8", headers=_HEADERS)

    return handle


def add_pages(web_app: web.Application, *, retention_days: int = DEFAULT_RETENTION_DAYS) -> None:
    """``GET /privacy`` (saying the retention configured) and ``GET /terms`` (HEAD too)."""
    web_app.router.add_get(PRIVACY_PATH, _route(privacy_html(retention_days)))
    web_app.router.add_get(TERMS_PATH, _route(TERMS_HTML))
