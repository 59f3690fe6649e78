"""Who may message a participant: decided by one pure function, checked over thousands of combinations."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from core.domain import RallyUser, TeamMember
from core.permissions import may_message_participant

EMAIL = "ana@example.com"


def _member(*, access: bool, role: str = "TEAMMATE", email: str = EMAIL) -> TeamMember:
    return TeamMember("usr_1", email, "Ana Ortiz", role, access)


def _user(status: str = "ACTIVE", email: str = EMAIL) -> RallyUser:
    return RallyUser("usr_1", email, "Ana Ortiz", status)


def _decide(**overrides: object) -> bool:
    values: dict[str, object] = {
        "email": EMAIL,
        "chat_name": "Ana",
        "study_name": "Study",
        "link_active": True,
        "participant_name": "Jordan L.",
        "participant_opted_out": False,
        "team": [_member(access=True)],
        "rally_users": [_user()],
    }
    values.update(overrides)
    return may_message_participant(**values).allowed  # type: ignore[arg-type]


def test_teammate_with_access_and_active_account_may_message() -> None:
    assert _decide()


def test_email_match_ignores_case_and_surrounding_space() -> None:
    assert _decide(email="  ANA@Example.COM ")


def test_each_missing_condition_refuses_with_a_reason() -> None:
    refusals = {
        "no email": {"email": None},
        "not on team": {"team": [_member(access=True, email="someone@else.com")]},
        "no access": {"team": [_member(access=False)]},
        "deactivated": {"rally_users": [_user("DEACTIVATED")]},
        "invited only": {"rally_users": [_user("INVITED")]},
        "no rally user": {"rally_users": []},
        "opted out": {"participant_opted_out": True},
        "unlinked": {"link_active": False},
    }
    for name, overrides in refusals.items():
        decision = may_message_participant(
            **{
                "email": EMAIL,
                "chat_name": "Ana",
                "study_name": "Study",
                "link_active": True,
                "participant_name": "Jordan L.",
                "participant_opted_out": False,
                "team": [_member(access=True)],
                "rally_users": [_user()],
                **overrides,
            }  # type: ignore[arg-type]
        )
        assert not decision.allowed, name
        assert decision.reason, f"{name}: a refusal must say why"


@settings(max_examples=3000, deadline=None)
@given(
    has_email=st.booleans(),
    email_matches=st.booleans(),
    email_case=st.sampled_from([str.lower, str.upper, str.title]),
    on_team=st.booleans(),
    role=st.sampled_from(["OWNER", "TEAMMATE"]),
    access=st.booleans(),
    status=st.sampled_from(["ACTIVE", "INVITED", "DEACTIVATED", None]),
    opted_out=st.booleans(),
    linked=st.booleans(),
)
def test_a_message_leaves_if_and_only_if_every_condition_holds(
    has_email: bool,
    email_matches: bool,
    email_case: object,
    on_team: bool,
    role: str,
    access: bool,
    status: str | None,
    opted_out: bool,
    linked: bool,
) -> None:
    chat_email = (email_case(EMAIL) if email_matches else "other@example.com") if has_email else None  # type: ignore[operator]
    team = [_member(access=access, role=role)] if on_team else []
    users = [_user(status)] if status else []
    allowed = _decide(
        email=chat_email, team=team, rally_users=users, participant_opted_out=opted_out, link_active=linked
    )
    expected = has_email and email_matches and on_team and access and status == "ACTIVE" and not opted_out and linked
    assert allowed == expected
