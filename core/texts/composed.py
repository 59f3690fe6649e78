"""Saved replies, study-wide updates and links checked before they leave: what the researcher is told."""

from __future__ import annotations

from collections.abc import Sequence

from core.message import Text, cmd, join, text

PLACEHOLDER_HELP = "{first_name}, {session_time}, {scheduling_link}, {study}, {researcher}"


def reply_usage() -> Text:
    return text(
        "Saved replies: ",
        cmd("replies"),
        " lists them; ",
        cmd("reply add <name> <text>"),
        " saves one for the workspace, ",
        cmd("reply study <name> <text>"),
        " for this channel's study; ",
        cmd("reply <participant> <name>"),
        " sends one; ",
        cmd("reply remove <name>"),
        f". Placeholders: {PLACEHOLDER_HELP}.",
    )


def saved_replies_list(lines: Sequence[tuple[str, str, str]]) -> Text:
    """``lines``: (name, where it is offered, body)."""
    if not lines:
        return text("No saved replies yet. ", cmd("reply add <name> <text>"), " saves one.")
    shown = [text(f"• {name} ({where}): {body}") for name, where, body in lines]
    return text("Saved replies:\n", join("\n", shown), "\n", cmd("reply <participant> <name>"), " sends one.")


def saved_replies_for(participant: str, count: int) -> Text:
    if not count:
        return text(f"No saved replies to send {participant} yet. ", cmd("reply add <name> <text>"), " saves one.")
    return text(f"Send {participant} a saved reply (it goes out as you, after the usual checks):")


def reply_saved(name: str, where: str) -> Text:
    return text(f"Saved reply “{name}” saved for {where}. ", cmd(f"reply <participant> {name}"), " sends it.")


def reply_name_bad(name: str) -> Text:
    return text(f"“{name}” can't be a name: use up to 40 letters, digits, - or _ (for example welcome or parking).")


def reply_unknown_placeholders(unknown: Sequence[str]) -> Text:
    named = ", ".join("{" + n + "}" for n in unknown)
    return text(f"Not saved: I don't know {named}. Placeholders are {PLACEHOLDER_HELP}.")


def reply_not_found(name: str, known: Sequence[str]) -> Text:
    there = ", ".join(known) if known else "none yet"
    return text(f"No saved reply “{name}” here (saved replies: {there}). ", cmd("replies"), " lists them.")


def reply_removed(name: str) -> Text:
    return text(f"Saved reply “{name}” removed.")


def cannot_fill(participant: str, problem: str) -> Text:
    return text(f"Nothing was sent to {participant}: {problem} for them. Edit the text or send a reply by hand.")


def saved_sent_notice(who: str, name: str, body: str) -> Text:
    return text(f"{who} sent the saved reply “{name}”:\n", body)


def links_held(problems: Sequence[tuple[str, str]]) -> Text:
    found = "\n".join(f"• {url}: {reason}" for url, reason in problems)
    return text(
        "I held your message back: a link in it looks broken.\n",
        found,
        "\nFix the link and send it again, or send it as it is.",
    )


def held_sent() -> Text:
    return text("Sent as it was written.")


def held_cancelled() -> Text:
    return text("Cancelled: nothing was sent.")


def held_gone() -> Text:
    return text("That message was already sent or cancelled.")


def update_usage() -> Text:
    return text(
        "Send one message to many participants of this channel's study: ",
        cmd("update <audience> -- <message>"),
        ". Audience: all (every approved participant), next24h (session in the next 24 h), unbooked (no session), "
        "silent 3d (no reply for 3 days), or list Jordan, Priya. You see a preview and the exact count, then Confirm. "
        f"Placeholders: {PLACEHOLDER_HELP}.",
    )


def update_nobody(audience: str) -> Text:
    return text(f"Nobody in this study matches “{audience}”: nothing to send.")


def update_preview(
    study: str,
    audience: str,
    count: int,
    skipped: Sequence[str],
    samples: Sequence[tuple[str, str]],
    problems: Sequence[tuple[str, str]],
) -> Text:
    head = f"Update to {count} participant{'s' if count != 1 else ''} of {study} ({audience})"
    shown = "\n".join(f"→ {name}: {body}" for name, body in samples)
    more = f"\n…and {count - len(samples)} more." if count > len(samples) else ""
    skip = f"\nSkipped: {len(skipped)} opted out ({', '.join(skipped)})." if skipped else ""
    warn = ""
    if problems:
        warn = "\n⚠️ A link looks broken:\n" + "\n".join(f"• {url}: {reason}" for url, reason in problems)
    return text(f"{head}:\n{shown}{more}{skip}{warn}\nNothing is sent until you confirm.")


def update_not_allowed(names: Sequence[str], reason: Text) -> Text:
    return text(f"You may not message {', '.join(names)}: ", reason)


def update_unfillable(problems: Sequence[tuple[str, str]]) -> Text:
    found = "\n".join(f"• {name}: {problem}" for name, problem in problems)
    return text("Nothing was sent: the message can't be filled in for\n", found)


def update_confirmed(count: int) -> Text:
    return text(f"Sending to {count} participant{'s' if count != 1 else ''}; the channel gets a summary when done.")


def update_already(status: str) -> Text:
    return text(f"That update was already {'sent' if status == 'sending' else status}: nothing more was sent.")


def update_cancelled() -> Text:
    return text("Update cancelled: nothing was sent.")


def update_gone(update_id: str) -> Text:
    return text(f"No update #{update_id} here.")


def update_sent_notice(who: str, body: str) -> Text:
    return text(f"{who} sent a study-wide update:\n", body)


def update_summary(study: str, who: str, sent: int, skipped: int, failed: Sequence[tuple[str, str]]) -> Text:
    lines = f"Study update from {who} to {study}: {sent} sent, {skipped} skipped (opted out), {len(failed)} failed."
    if failed:
        lines += "\n" + "\n".join(f"• {name}: {reason}" for name, reason in failed)
    return text(lines)


def not_a_participant_thread() -> Text:
    return text("That message is not in a participant's thread: use the shortcut on a message of one.")
