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
    rule: str = ""  # the rule that refused (one of ``RULES``), "" when allowed


NO_EMAIL, NOT_ON_TEAM, NO_PANEL_ACCESS, ACCOUNT_INACTIVE, UNLINKED, OPTED_OUT = RULES = (
    "no-email",
    "not-on-team",
    "no-panel-access",
    "account-inactive",
    "unlinked",
    "opted-out",
)


def may_act_for_study(
    *, email: str | None, chat_name: str, study_name: str, team: list[TeamMember], rally_users: list[RallyUser]
) -> Decision:
    """Owner or teammate listed with external-panel access, matched by email, whose Rally account is active."""
    if not email:
        return Decision(False, texts.no_email(chat_name), rule=NO_EMAIL)
    wanted = email.strip().casefold()
    member = next((m for m in team if m.email.strip().casefold() == wanted), None)
    if member is None:
        return Decision(False, texts.not_on_team(study_name), rule=NOT_ON_TEAM)
    if not member.external_panel_access:
        return Decision(False, texts.no_panel_access(study_name), member, rule=NO_PANEL_ACCESS)
    user = next((u for u in rally_users if u.email.strip().casefold() == wanted), None)
    if user is None or user.status.upper() != "ACTIVE":
        status = user.status if user else "missing"
        return Decision(False, texts.rally_user_inactive(status), member, user, rule=ACCOUNT_INACTIVE)
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
        return Decision(False, texts.study_unlinked_refusal(study_name), rule=UNLINKED)
    decision = may_act_for_study(
        email=email, chat_name=chat_name, study_name=study_name, team=team, rally_users=rally_users
    )
    if not decision.allowed:
        return decision
    if participant_opted_out:
        reason = texts.participant_opted_out(participant_name)
        return Decision(False, reason, decision.member, decision.rally_user, rule=OPTED_OUT)
    return decision


def still_may_send(
    *,
    author_name: str,
    email: str | None,
    study_name: str,
    link_active: bool,
    team: list[TeamMember],
    rally_users: list[RallyUser],
) -> str | None:
    """At send time, for a relay queued earlier (``bridge/access.py``): None if its author may still message the
    participant by the same rule as when it was written (study linked, on the team with external-panel access,
    Rally account active), else why not, said about the author to the thread (a permanent failure's reason). The
    opt-out is the relay's own check."""
    decision = may_message_participant(
        email=email,
        chat_name=author_name,
        study_name=study_name,
        link_active=link_active,
        participant_name="",
        participant_opted_out=False,
        team=team,
        rally_users=rally_users,
    )
    if decision.allowed:
        return None
    if decision.rule == UNLINKED:
        return texts.relay_study_unlinked(study_name)
    if decision.rule == NO_EMAIL:
        return texts.relay_author_no_email(author_name)
    if decision.rule == NOT_ON_TEAM:
        return texts.relay_author_not_on_team(author_name, study_name)
    if decision.rule == NO_PANEL_ACCESS:
        return texts.relay_author_no_panel_access(author_name, study_name)
    status = decision.rally_user.status if decision.rally_user else "missing"
    return texts.relay_author_inactive(author_name, status)
