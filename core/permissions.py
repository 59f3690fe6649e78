"""Who may message a participant (contract R2). Pure: the caller fetches, this decides."""

from __future__ import annotations

from dataclasses import dataclass, field

from core import texts
from core.domain import RallyUser, TeamMember
from core.message import Text


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: Text = field(default_factory=Text)  # why not, said to the person (a refusal they read)
    member: TeamMember | None = None
    rally_user: RallyUser | None = None


def may_act_for_study(
    *, email: str | None, chat_name: str, study_name: str, team: list[TeamMember], rally_users: list[RallyUser]
) -> Decision:
    """Owner or teammate listed with external-panel access, matched by email, whose Rally account is active."""
    if not email:
        return Decision(False, texts.no_email(chat_name))
    wanted = email.strip().casefold()
    member = next((m for m in team if m.email.strip().casefold() == wanted), None)
    if member is None:
        return Decision(False, texts.not_on_team(study_name))
    if not member.external_panel_access:
        return Decision(False, texts.no_panel_access(study_name), member)
    user = next((u for u in rally_users if u.email.strip().casefold() == wanted), None)
    if user is None or user.status.upper() != "ACTIVE":
        return Decision(False, texts.rally_user_inactive(user.status if user else "missing"), member, user)
    return Decision(True, member=member, rally_user=user)


def may_message_participant(
    *,
    email: str | None,
    chat_name: str,
    study_name: str,
    link_active: bool,
    participant_name: str,
    participant_opted_out: bool,
    team: list[TeamMember],
    rally_users: list[RallyUser],
) -> Decision:
    """A reply leaves for Respondent only if the study is still linked, the participant has not opted out,
    and the author may act for the study."""
    if not link_active:
        return Decision(False, texts.study_unlinked_refusal(study_name))
    decision = may_act_for_study(
        email=email, chat_name=chat_name, study_name=study_name, team=team, rally_users=rally_users
    )
    if not decision.allowed:
        return decision
    if participant_opted_out:
        return Decision(False, texts.participant_opted_out(participant_name), decision.member, decision.rally_user)
    return decision
