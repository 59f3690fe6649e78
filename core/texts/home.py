"""The bridge's home (``bridge/home.py``; Slack's App Home) and retrying failed deliveries (``retry <id>``).

The ``home_*`` texts are shown only on a home, so only on platforms that have one. The ``retry_*`` texts are
answers to the typed command too: what they say about the home is :class:`~core.message.HomeOnly`.
"""

from __future__ import annotations

from core.message import CHAT, Text, cmd, home_only, text


def retry_usage() -> Text:
    return text(
        "Usage: ",
        cmd("retry <id>"),
        " (the id of a failed delivery",
        home_only(", shown on the bridge's Home tab in ", CHAT),
        ").",
    )


def retry_not_found(delivery_id: str) -> Text:
    return text(
        f"There is no failed delivery #{delivery_id} for a participant in this channel.",
        home_only(" The Home tab of Rally Bridge lists the failed ones."),
    )


def retry_not_failed(delivery_id: int, state: str) -> Text:
    if state == "done":
        return text(f"Delivery #{delivery_id} was delivered already; nothing to retry.")
    return text(f"Delivery #{delivery_id} has not failed: it is still being delivered. Nothing to retry.")


def retry_busy(delivery_id: int, name: str) -> Text:
    return text(
        f"A message to {name} is being sent right now; retry #{delivery_id} in a moment so the two don't cross."
    )


def retry_queued(delivery_id: int, name: str) -> Text:
    return text(
        f"Sending #{delivery_id} to {name} again. The reply in the thread shows the outcome: "
        "✅ when delivered, or a notice with the reason if it fails again."
    )


def retry_notice(who: str, delivery_id: int, name: str) -> Text:
    return text(f"{who} asked to send #{delivery_id}, the reply to {name} that was not delivered, again.")


# --- on the home ------------------------------------------------------------------------------------------------


def home_not_here(word: str) -> Text:
    return text(f'"{word}" can\'t be done from the Home tab. Type ', cmd(word), " in the study's channel instead.")


def home_no_links() -> Text:
    return text(
        "No Rally study is bridged in this workspace yet. Invite @Rally Bridge to a channel "
        "(/invite @Rally Bridge) and run ",
        cmd("link <studyId>"),
        " there.",
    )


def home_may_act() -> Text:
    return text("You may message these participants, schedule reminders and retry failed deliveries.")


def home_closed_intro() -> Text:
    return text("Bridged in this workspace, but you may not act for them:")


def home_study_gone(study_name: str) -> Text:
    return text(f'Rally no longer has "{study_name}", so nobody can act for it. Unlink it in its channel.')


def home_not_checked(study_name: str) -> Text:
    return text(f'"{study_name}" was linked a moment ago and your access is not checked yet. Open this tab again.')


def home_reminder_not_found(reminder_id: str) -> Text:
    return text(
        f"There is no pending reminder #{reminder_id} that you can see here; it may have been sent or cancelled."
    )


def home_opted_out_no_retry(name: str) -> Text:
    return text(f"{name} has opted out: it can't be sent.")


def home_help(marker: str) -> tuple[Text, ...]:
    return (
        text(
            f"Reply in a participant's thread in the study channel to message them; start with {marker} to keep "
            "the reply as an internal note that is never sent."
        ),
        text(
            cmd("link <studyId>"),
            " in a channel bridges a study there. You must be on its Rally team with external-panel access, "
            "with the same email as in ",
            CHAT,
            ".",
        ),
        text(
            cmd("remind"),
            ", ",
            cmd("followup"),
            ", ",
            cmd("reschedule"),
            " schedule messages (or use the buttons on a thread's first message); ",
            cmd("status"),
            " and ",
            cmd("reminders"),
            " show what is planned; ",
            cmd("help"),
            " lists everything.",
        ),
        text(
            "Retry sends a reply that Respondent refused again, once the cause is fixed (",
            cmd("retry <id>"),
            "); Cancel stops a scheduled message (",
            cmd("cancel <id>"),
            ").",
        ),
    )
