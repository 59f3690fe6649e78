"""The `rallybridge` command as an operator runs it: a subprocess, a bare environment, no .env file."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from playground.world import free_port
from storage.migrate import head_revision, upgrade
from storage.models import Base
from tests.integration.processes import RALLYBRIDGE

pytestmark = pytest.mark.slow

MISSING = [
    "RESPONDENT_API_KEY",
    "RESPONDENT_API_SECRET",
    "RESPONDENT_WEBHOOK_KEY",
    "RALLY_API_TOKEN",
    "RALLY_WEBHOOK_SECRET",
]
# With no chat platform at all, one line says so and names what Slack and Teams each need.
NO_PLATFORM = "chat platform"


def _bare_env(tmp_path: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}


def _valid_env(tmp_path: Path, database_url: str | None = None) -> dict[str, str]:
    return {
        **_bare_env(tmp_path),
        "RALLYBRIDGE_DATABASE_URL": database_url or f"sqlite+aiosqlite:///{tmp_path / 'bridge.sqlite3'}",
        "RALLYBRIDGE_HOST": "127.0.0.1",
        "RALLYBRIDGE_PORT": str(free_port()),
        "SLACK_BOT_TOKEN": "xoxb-1234-5678-abcdef",
        "SLACK_SIGNING_SECRET": "8f742231b10e8888abcd99yyyzzz85a5",
        "RESPONDENT_API_KEY": "key-123",
        "RESPONDENT_API_SECRET": "secret-456",
        "RESPONDENT_WEBHOOK_KEY": "webhook-789",
        "RALLY_API_TOKEN": "rally-token",
        "RALLY_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    }


def run(tmp_path: Path, *args: str, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """`rallybridge <args>` in ``tmp_path`` (so no .env is read) with exactly ``env``."""
    assert not (tmp_path / ".env").exists()
    return subprocess.run(
        [RALLYBRIDGE, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=timeout, check=False
    )


def _named(output: str) -> set[str]:
    """The variables named on the problem lines (``  - NAME: why``)."""
    return {line.strip()[2:].split(":", 1)[0] for line in output.splitlines() if line.strip().startswith("- ")}


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = run(tmp_path, "--help", env=_bare_env(tmp_path))
    assert result.returncode == 0, result.stderr
    for command in ("serve", "demo", "db", "check-config"):
        assert command in result.stdout, result.stdout


def test_check_config_with_empty_environment_names_every_missing_variable(tmp_path: Path) -> None:
    result = run(tmp_path, "check-config", env=_bare_env(tmp_path))
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert _named(output) == {*MISSING, NO_PLATFORM}, output
    for name in MISSING:
        assert f"{name}: not set" in output, output
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "MICROSOFT_APP_ID", "MICROSOFT_APP_PASSWORD"):
        assert name in output, output
    assert "Configuration OK" not in output


def test_check_config_names_a_rally_secret_without_whsec(tmp_path: Path) -> None:
    env = {**_valid_env(tmp_path), "RALLY_WEBHOOK_SECRET": "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
    result = run(tmp_path, "check-config", env=env)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert _named(output) == {"RALLY_WEBHOOK_SECRET"}, output
    assert "whsec_" in output
    assert "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" not in output  # a secret is never echoed back


def test_check_config_names_missing_variables_alongside_an_invalid_one(tmp_path: Path) -> None:
    env = {**_bare_env(tmp_path), "RALLY_WEBHOOK_SECRET": "not-a-svix-secret"}
    result = run(tmp_path, "check-config", env=env)
    assert result.returncode != 0
    assert _named(result.stdout + result.stderr) == {*MISSING, NO_PLATFORM}, result.stderr


def test_check_config_with_a_full_valid_environment_exits_0(tmp_path: Path) -> None:
    result = run(tmp_path, "check-config", env=_valid_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Configuration OK" in result.stdout
    assert "sqlite" in result.stdout


def test_db_upgrade_creates_the_schema_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "fresh.sqlite3"
    assert not path.exists()
    result = run(tmp_path, "db", "upgrade", env=_valid_env(tmp_path, f"sqlite+aiosqlite:///{path}"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"revision {head_revision()}" in result.stdout
    with sqlite3.connect(path) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        (revision,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert set(Base.metadata.tables) <= tables
    assert revision == head_revision()
    # Running it again is harmless.
    again = run(tmp_path, "db", "upgrade", env=_valid_env(tmp_path, f"sqlite+aiosqlite:///{path}"))
    assert again.returncode == 0 and f"revision {head_revision()}" in again.stdout


def test_serve_refuses_an_unmigrated_database_and_says_how_to_fix_it(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite3"
    result = run(tmp_path, "serve", env=_valid_env(tmp_path, f"sqlite+aiosqlite:///{path}"))
    assert result.returncode != 0
    assert "rallybridge db upgrade" in result.stderr, result.stdout + result.stderr
    assert "Refusing to start" in result.stderr


def test_serve_refuses_a_database_at_another_revision(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0000_older'")
    result = run(tmp_path, "serve", env=_valid_env(tmp_path, url))
    assert result.returncode != 0
    assert "0000_older" in result.stderr and "rallybridge db upgrade" in result.stderr, result.stderr


def test_serve_with_missing_configuration_names_it_and_does_not_start(tmp_path: Path) -> None:
    env = {k: v for k, v in _valid_env(tmp_path).items() if k != "RESPONDENT_WEBHOOK_KEY"}
    result = run(tmp_path, "serve", env=env)
    assert result.returncode != 0
    assert _named(result.stderr) == {"RESPONDENT_WEBHOOK_KEY"}, result.stderr
