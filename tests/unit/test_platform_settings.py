"""Each chat platform is optional, at least one is required, and half a platform is an error naming what is missing:
``serve``'s checks (bot/config_check.py) on settings objects and on an environment that does not validate."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import AliasChoices

from bot.config_check import active_platforms, load_settings, platform_lines, problems_for_serve
from bot.settings import Settings

RESPONDENT_AND_RALLY = {
    "RESPONDENT_API_KEY": "key-123",
    "RESPONDENT_API_SECRET": "secret-456",
    "RESPONDENT_WEBHOOK_KEY": "webhook-789",
    "RALLY_API_TOKEN": "rally-token",
    "RALLY_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
}
SLACK = {"SLACK_BOT_TOKEN": "xoxb-1-2-abc", "SLACK_SIGNING_SECRET": "8f742231b10e8888abcd99yyyzzz85a5"}
SLACK_OAUTH = {
    "SLACK_CLIENT_ID": "123.456",
    "SLACK_CLIENT_SECRET": "0123456789abcdef",
    "SLACK_SIGNING_SECRET": "8f742231b10e8888abcd99yyyzzz85a5",
}
TENANT = "8a1f3c52-4d7e-4b1a-9f0e-2c6d5b7a9e11"
# A new install: SingleTenant, the default.
TEAMS = {
    "MICROSOFT_APP_ID": "00000000-0000-0000-0000-000000000001",
    "MICROSOFT_APP_PASSWORD": "client-secret",
    "MICROSOFT_APP_TENANT_ID": TENANT,
}


def _env_names() -> set[str]:
    names: set[str] = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        names |= {alias} if isinstance(alias, str) else set(alias.choices) if isinstance(alias, AliasChoices) else set()
    return {n for n in names if isinstance(n, str)}


@pytest.fixture(autouse=True)
def bare_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No setting from the machine running the tests, and no .env file."""
    for name in _env_names():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    yield


def settings(env: dict[str, str]) -> Settings:
    return Settings(_env_file=None, **{_field(k): v for k, v in env.items()})


def _field(env: str) -> str:
    return next(name for name, f in Settings.model_fields.items() if f.validation_alias == env)


def named(problems: list[str]) -> list[str]:
    return [p.split(":", 1)[0] for p in problems]


def test_either_platform_alone_or_both_is_a_configuration_serve_accepts() -> None:
    cases: list[tuple[dict[str, str], list[str]]] = [
        (TEAMS, ["teams"]),
        ({"RALLYBRIDGE_TEAMS_SANDBOX": "true"}, ["teams"]),
        (SLACK, ["slack"]),
        (SLACK_OAUTH, ["slack"]),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"}, ["slack"]),  # Socket Mode: no signing secret
        ({**SLACK, **TEAMS}, ["slack", "teams"]),
    ]
    for chat, active in cases:
        s = settings({**RESPONDENT_AND_RALLY, **chat})
        assert problems_for_serve(s) == [], chat
        assert active_platforms(s) == active, chat


def test_no_platform_at_all_is_refused_naming_what_each_needs() -> None:
    problems = problems_for_serve(settings(RESPONDENT_AND_RALLY))
    assert len(problems) == 1, problems
    (problem,) = problems
    assert problem.startswith("chat platform: none configured")
    for variable in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"):
        assert variable in problem
    assert "MICROSOFT_APP_ID" in problem and "MICROSOFT_APP_PASSWORD" in problem


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({"SLACK_SIGNING_SECRET": "s"}, ["SLACK_BOT_TOKEN"]),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, ["SLACK_SIGNING_SECRET"]),
        ({"SLACK_APP_TOKEN": "xapp-1"}, ["SLACK_BOT_TOKEN"]),
        ({"SLACK_CLIENT_ID": "1.2", "SLACK_SIGNING_SECRET": "s"}, ["SLACK_BOT_TOKEN", "SLACK_CLIENT_SECRET"]),
        ({"SLACK_CLIENT_ID": "1.2", "SLACK_CLIENT_SECRET": "c"}, ["SLACK_SIGNING_SECRET"]),
        ({"SLACK_CLIENT_SECRET": "c", "SLACK_BOT_TOKEN": "xoxb-1"}, ["SLACK_CLIENT_ID", "SLACK_SIGNING_SECRET"]),
    ],
)
def test_half_a_slack_is_an_error_naming_what_is_missing_even_beside_teams(
    given: dict[str, str], missing: list[str]
) -> None:
    # Teams alone is fine: half a Slack is not.
    assert problems_for_serve(settings({**RESPONDENT_AND_RALLY, **TEAMS})) == []
    for teams in (TEAMS, {}):
        problems = problems_for_serve(settings({**RESPONDENT_AND_RALLY, **teams, **given}))
        assert named(problems) == missing, problems
        assert "none configured" not in " ".join(problems)


def test_half_a_teams_is_an_error_naming_what_is_missing_even_beside_slack() -> None:
    for slack in (SLACK, {}):
        problems = problems_for_serve(settings({**RESPONDENT_AND_RALLY, **slack, "MICROSOFT_APP_PASSWORD": "p"}))
        assert named(problems) == ["MICROSOFT_APP_ID"], problems
        problems = problems_for_serve(settings({**RESPONDENT_AND_RALLY, **slack, "MICROSOFT_APP_ID": "a"}))
        assert named(problems) == ["MICROSOFT_APP_PASSWORD", "MICROSOFT_APP_TENANT_ID"], problems


def test_an_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """A .env listing every variable, the Slack ones empty, runs Teams-only."""
    for name, value in {**RESPONDENT_AND_RALLY, **TEAMS, "SLACK_BOT_TOKEN": "", "SLACK_SIGNING_SECRET": ""}.items():
        monkeypatch.setenv(name, value)
    loaded, problems = load_settings()
    assert loaded is not None and problems == []
    assert loaded.slack_bot_token is None and loaded.slack_signing_secret is None
    assert problems_for_serve(loaded) == [] and active_platforms(loaded) == ["teams"]


def test_an_environment_that_does_not_validate_still_names_the_platform_problems(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bad_rally = {**RESPONDENT_AND_RALLY, "RALLY_WEBHOOK_SECRET": "not-svix"}
    cases: list[tuple[dict[str, str], list[str]]] = [
        ({}, ["RALLY_WEBHOOK_SECRET", "chat platform"]),
        ({"SLACK_SIGNING_SECRET": "s"}, ["RALLY_WEBHOOK_SECRET", "SLACK_BOT_TOKEN"]),
        (TEAMS, ["RALLY_WEBHOOK_SECRET"]),
        ({"RALLYBRIDGE_TEAMS_SANDBOX": "1"}, ["RALLY_WEBHOOK_SECRET"]),
        (SLACK, ["RALLY_WEBHOOK_SECRET"]),
    ]
    for chat, expected in cases:
        with monkeypatch.context() as m:
            for name, value in {**bad_rally, **chat}.items():
                m.setenv(name, value)
            loaded, problems = load_settings()
            assert loaded is None and named(problems) == expected, (chat, problems)


def _line(lines: list[str], platform: str) -> str:
    (line,) = [line for line in lines if line.startswith(f"{platform}:")]
    return line


@pytest.mark.parametrize(
    ("chat", "slack", "teams"),
    [
        (SLACK, "Slack: active, over HTTP on /slack/events; one workspace", "Teams: not active (no MICROSOFT_APP_ID"),
        (TEAMS, "Slack: not active (no SLACK_BOT_TOKEN", "Teams: active on /api/messages (MICROSOFT_APP_ID 0000"),
        ({**SLACK_OAUTH, **TEAMS}, "Slack: active, over HTTP on /slack/events; OAuth", "Teams: active"),
    ],
)
def test_check_config_says_which_platforms_are_active_and_why_not(chat: dict[str, str], slack: str, teams: str) -> None:
    lines = platform_lines(settings({**RESPONDENT_AND_RALLY, **chat}))
    assert len(lines) == 2 and _line(lines, "Slack").startswith(slack) and _line(lines, "Teams").startswith(teams)
    text = "\n".join(lines)
    for secret in ("client-secret", "0123456789abcdef", "xoxb-1-2-abc", "8f742231b10e8888abcd99yyyzzz85a5"):
        assert secret not in text


def test_settings_say_whether_each_platform_is_on() -> None:
    flags = []
    for env in ({}, {"SLACK_SIGNING_SECRET": "s"}, SLACK, SLACK_OAUTH, TEAMS, {**SLACK, **TEAMS}):
        s = settings(env)
        flags.append((s.slack_enabled, s.teams_enabled))
    assert flags == [(False, False), (False, False), (True, False), (True, False), (False, True), (True, True)]


# ---- MICROSOFT_APP_TYPE: SingleTenant (default), UserAssignedMSI, MultiTenant -----------------------------------

APP_ID = TEAMS["MICROSOFT_APP_ID"]


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({"MICROSOFT_APP_TYPE": "SingleTenant", "MICROSOFT_APP_PASSWORD": "p"}, ["MICROSOFT_APP_TENANT_ID"]),
        ({"MICROSOFT_APP_TYPE": "singletenant", "MICROSOFT_APP_TENANT_ID": TENANT}, ["MICROSOFT_APP_PASSWORD"]),
        ({"MICROSOFT_APP_TYPE": "SingleTenant", "MICROSOFT_APP_PASSWORD": "p", "MICROSOFT_APP_TENANT_ID": TENANT}, []),
        ({"MICROSOFT_APP_TYPE": "UserAssignedMSI"}, ["MICROSOFT_APP_TENANT_ID"]),
        ({"MICROSOFT_APP_TYPE": "userassignedmsi", "MICROSOFT_APP_TENANT_ID": TENANT}, []),
        (
            {"MICROSOFT_APP_TYPE": "UserAssignedMSI", "MICROSOFT_APP_TENANT_ID": TENANT, "MICROSOFT_APP_PASSWORD": "p"},
            ["MICROSOFT_APP_PASSWORD"],
        ),
        ({"MICROSOFT_APP_TYPE": "MultiTenant"}, ["MICROSOFT_APP_PASSWORD"]),
        ({"MICROSOFT_APP_TYPE": "multitenant", "MICROSOFT_APP_PASSWORD": "p"}, []),
    ],
)
def test_each_app_type_needs_its_own_settings(given: dict[str, str], missing: list[str]) -> None:
    problems = problems_for_serve(settings({**RESPONDENT_AND_RALLY, "MICROSOFT_APP_ID": APP_ID, **given}))
    assert named(problems) == missing, problems
    if given.get("MICROSOFT_APP_TYPE", "").lower() == "userassignedmsi" and missing == ["MICROSOFT_APP_PASSWORD"]:
        assert "no client secret" in problems[0]


def test_single_tenant_is_the_default_and_a_bot_that_relied_on_multi_tenant_is_told_how_to_keep_it() -> None:
    """Before, MultiTenant was the default: such a deployment (app id + secret only) is refused, naming the way
    back, never started with the wrong authority."""
    legacy = {**RESPONDENT_AND_RALLY, "MICROSOFT_APP_ID": APP_ID, "MICROSOFT_APP_PASSWORD": "client-secret"}
    assert settings(legacy).microsoft_app_type == "SingleTenant"
    (problem,) = problems_for_serve(settings(legacy))
    assert problem.startswith("MICROSOFT_APP_TENANT_ID: not set"), problem
    assert "the default when MICROSOFT_APP_TYPE is not set" in problem
    assert "MICROSOFT_APP_TYPE=MultiTenant" in problem
    assert problems_for_serve(settings({**legacy, "MICROSOFT_APP_TYPE": "MultiTenant"})) == []

    # A tenant id but no type: it runs as SingleTenant, and check-config says so and how to go back.
    line = _line(platform_lines(settings({**legacy, "MICROSOFT_APP_TENANT_ID": TENANT})), "Teams")
    assert f"SingleTenant, tenant {TENANT}: MICROSOFT_APP_TYPE is not set" in line, line
    assert "set MICROSOFT_APP_TYPE=MultiTenant" in line
    given = _line(platform_lines(settings({**legacy, "MICROSOFT_APP_TYPE": "MultiTenant"})), "Teams")
    assert given.endswith(", MultiTenant)."), given


def test_an_unknown_app_type_is_named_with_the_three_it_can_be(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**RESPONDENT_AND_RALLY, **TEAMS, "MICROSOFT_APP_TYPE": "Managed"}.items():
        monkeypatch.setenv(name, value)
    loaded, problems = load_settings()
    assert loaded is None and named(problems) == ["MICROSOFT_APP_TYPE"], problems
    for app_type in ("SingleTenant", "UserAssignedMSI", "MultiTenant"):
        assert app_type in problems[0]
