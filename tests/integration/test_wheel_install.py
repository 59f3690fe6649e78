"""What a new user does: build the wheel, install it into a fresh virtualenv outside the checkout, and run the
commands from another directory, with nothing of the checkout on the path.

It is also what the container does (Dockerfile, compose.yaml), step for step: the wheel is built from the checkout
as `docker build` sees it (the .dockerignore patterns) with the builder stage's `pip wheel --no-deps`, installed
with `pip install <wheel>` into a fresh virtualenv, and the commands run are read from the Dockerfile (ENTRYPOINT
+ CMD, the HEALTHCHECK) and from compose.yaml (the migrate service's command). Whatever those files say the image
runs, this test runs against the installed wheel.

Dependencies come from the index pip is configured with here (as for `pip install` by hand); the module's fixture
builds and installs once, which takes most of the module's time (printed; run with -s to see it).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.slack.manifest import build_manifest
from playground.server import STATIC
from playground.world import free_port
from storage.migrate import head_revision
from storage.models import Base

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
APP_ID = "2f6a1c52-7a0e-4a65-9d5f-3c0b8e9d1a77"
COMMANDS = ("serve", "demo", "db", "check-config", "manifest", "teams-package")
# No outside service is ever called: every API the bridge could reach points at a port nobody listens on.
NOWHERE = "http://127.0.0.1:9/"


# ---- the image's recipe, read from the files docker reads ------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions (continuation lines joined, comments dropped) as (KEYWORD, rest)."""
    joined = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text(encoding="utf-8"))
    lines = [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def _exec_form(keyword: str) -> list[str]:
    """The last ``keyword`` instruction's JSON array (for HEALTHCHECK: the one after its options and CMD)."""
    (rest, *_) = [rest for kw, rest in reversed(_instructions()) if kw == keyword]
    if keyword == "HEALTHCHECK":
        rest = rest.split(" CMD ", 1)[1]
    argv: list[str] = json.loads(rest)
    return argv


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    return data


def _build_context(dest: Path) -> Path:
    """The checkout as `docker build` sends it: everything except what .dockerignore leaves out."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    anywhere = [p.removeprefix("**/") for p in patterns if p.startswith("**/")]
    top = [p for p in patterns if not p.startswith("**/")]
    assert not any("/" in p or p.startswith("!") for p in [*anywhere, *top]), "keep .dockerignore simple (see top)"

    def ignored(directory: str, names: list[str]) -> set[str]:
        at_top = Path(directory) == ROOT
        return {
            name
            for name in names
            if any(fnmatch.fnmatch(name, p) for p in anywhere)
            or (at_top and any(fnmatch.fnmatch(name, p) for p in top))
        }

    shutil.copytree(ROOT, dest, ignore=ignored, symlinks=True)
    return dest


# ---- the installed wheel ----------------------------------------------------------------------------------------


@dataclass
class Installed:
    wheel: Path
    venv: Path
    home: Path  # the working directory of every command: outside the checkout, no .env
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    def env(self, **settings: str) -> dict[str, str]:
        """Exactly these settings; the virtualenv first on PATH, as in the image (so `python` is its python)."""
        return {"PATH": f"{self.bin}:/usr/bin:/bin", "HOME": str(self.home), **settings}

    def run(self, argv: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
        assert not (self.home / ".env").exists()
        return subprocess.run(
            argv, env=env, cwd=self.home, capture_output=True, text=True, timeout=timeout, check=False
        )

    def rallybridge(self, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return self.run([str(self.bin / "rallybridge"), *args], env=env)


def _step(seconds: dict[str, float], name: str, argv: list[str], cwd: Path, timeout: float) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    started = time.monotonic()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    seconds[name] = time.monotonic() - started
    assert done.returncode == 0, f"{name} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    tmp = tmp_path_factory.mktemp("new-user")
    assert not tmp.resolve().is_relative_to(ROOT)
    seconds: dict[str, float] = {}
    dist = tmp / "dist"
    context = _build_context(tmp / "context")
    # The Dockerfile's builder stage: `python -m pip wheel --no-deps -w /dist .` in the build context.
    _step(
        seconds, "wheel", [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), "."], context, 300
    )
    (wheel,) = dist.glob("rallybridge-*.whl")
    home = tmp / "home"
    home.mkdir()
    venv = tmp / "venv"
    # The image: `python -m venv /opt/rallybridge && /opt/rallybridge/bin/pip install <wheel>`.
    _step(seconds, "venv", [sys.executable, "-m", "venv", str(venv)], home, 120)
    _step(seconds, "install", [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)], home, 900)
    _step(seconds, "pip check", [str(venv / "bin" / "python"), "-m", "pip", "check"], home, 120)
    print(f"\nwheel test setup: {', '.join(f'{name} {s:.1f}s' for name, s in seconds.items())}")
    return Installed(wheel=wheel, venv=venv, home=home, seconds=seconds)


def _deployment(installed: Installed, database: Path) -> dict[str, str]:
    """What a minimal SQLite deployment sets (docs/configuration.md: What `serve` needs)."""
    return installed.env(
        RALLYBRIDGE_DATABASE_URL=f"sqlite+aiosqlite:///{database}",
        RALLYBRIDGE_HOST="127.0.0.1",
        RALLYBRIDGE_PORT=str(free_port()),
        SLACK_BOT_TOKEN="xoxb-1234-5678-abcdef",
        SLACK_SIGNING_SECRET="8f742231b10e8888abcd99yyyzzz85a5",
        RESPONDENT_API_KEY="key-123",
        RESPONDENT_API_SECRET="secret-456",
        RESPONDENT_WEBHOOK_KEY="webhook-789",
        RALLY_API_TOKEN="rally-token",
        RALLY_WEBHOOK_SECRET="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        SLACK_API_URL=NOWHERE,
        RESPONDENT_API_URL=NOWHERE,
        RALLY_API_URL=NOWHERE,
    )


# ---- the commands -----------------------------------------------------------------------------------------------


def test_the_command_runs_from_the_installed_wheel_and_nothing_from_the_checkout(installed: Installed) -> None:
    where = installed.run(
        [
            str(installed.bin / "python"),
            "-c",
            "import adapters.teams.package as t, playground, rallybridge.cli, storage.migrate as m, asyncpg, aiosqlite;"
            "print(t.__file__); print(playground.__file__); print(rallybridge.cli.__file__); print(m.MIGRATIONS)",
        ],
        env=installed.env(),
    )
    assert where.returncode == 0, where.stderr
    for path in where.stdout.split():
        assert Path(path).is_relative_to(installed.venv) and not Path(path).is_relative_to(ROOT), where.stdout

    result = installed.rallybridge("--help", env=installed.env())
    assert result.returncode == 0, result.stdout + result.stderr
    for command in COMMANDS:
        assert command in result.stdout, result.stdout


def test_the_wheel_carries_every_file_the_commands_read(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
    data = {name for name in names if not name.endswith(".py") and ".dist-info/" not in name}
    assert data == {
        "adapters/teams/app_package/manifest.json",  # teams-package
        "adapters/teams/app_package/color.png",
        "adapters/teams/app_package/outline.png",
        *(f"playground/static/{name}" for name, _ in STATIC.values()),  # demo
    }
    migrations = {p.relative_to(ROOT).as_posix() for p in (ROOT / "storage" / "migrations").rglob("*.py")}
    assert migrations and migrations <= names  # db upgrade


def test_check_config_passes_with_what_a_sqlite_deployment_sets(installed: Installed) -> None:
    env = _deployment(installed, installed.home / "check.sqlite3")
    result = installed.rallybridge("check-config", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Configuration OK" in result.stdout and "sqlite" in result.stdout, result.stdout

    bare = installed.rallybridge("check-config", env=installed.env())
    assert bare.returncode == 2 and "RALLY_API_TOKEN: not set" in bare.stderr, bare.stderr


def test_migrate_then_serve_as_the_container_does(installed: Installed) -> None:
    """compose.yaml's migrate service, then the image's ENTRYPOINT + CMD until its HEALTHCHECK passes."""
    services = _compose()["services"]
    assert services["bridge"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "command" not in services["bridge"]  # the bridge runs the image's CMD
    entrypoint, cmd, healthcheck = _exec_form("ENTRYPOINT"), _exec_form("CMD"), _exec_form("HEALTHCHECK")
    assert entrypoint == ["rallybridge"] and cmd == ["serve"]
    migrate: list[str] = services["migrate"]["command"]
    assert migrate == ["db", "upgrade"]

    database = installed.home / "bridge.sqlite3"
    env = _deployment(installed, database)
    upgraded = installed.run([str(installed.bin / entrypoint[0]), *entrypoint[1:], *migrate], env=env)
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    assert f"revision {head_revision()}" in upgraded.stdout
    with sqlite3.connect(database) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        (revision,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert set(Base.metadata.tables) <= tables and revision == head_revision()

    log = (installed.home / "serve.log").open("w+")
    process = subprocess.Popen(
        [str(installed.bin / entrypoint[0]), *entrypoint[1:], *cmd],
        env=env,
        cwd=installed.home,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while (probe := installed.run(healthcheck, env=env, timeout=10)).returncode != 0:
            assert process.poll() is None, f"serve exited with {process.returncode}:\n{_read(log)}"
            assert time.monotonic() < deadline, f"the HEALTHCHECK never passed:\n{probe.stderr}\n{_read(log)}"
            time.sleep(0.3)
        with urllib.request.urlopen(f"http://127.0.0.1:{env['RALLYBRIDGE_PORT']}/readyz", timeout=5) as response:
            assert json.load(response)["ready"] is True
    finally:
        process.send_signal(signal.SIGTERM)  # what `docker stop` sends
        code = process.wait(timeout=30)
    assert code == 0, _read(log)
    assert "Traceback" not in _read(log)


def test_teams_package_writes_the_app_package(installed: Installed) -> None:
    out = installed.home / "pkg.zip"
    result = installed.rallybridge(
        "teams-package",
        "--app-id",
        APP_ID,
        "--url",
        "https://bridge.example.com",
        "--out",
        str(out),
        env=installed.env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(archive.read("manifest.json"))
        sizes = {name: _png_size(archive.read(name)) for name in ("color.png", "outline.png")}
    assert manifest["id"] == APP_ID and manifest["bots"][0]["botId"] == APP_ID
    assert manifest["webApplicationInfo"]["id"] == APP_ID and manifest["validDomains"] == ["bridge.example.com"]
    assert "00000000-0000" not in json.dumps(manifest)
    assert sizes == {"color.png": (192, 192), "outline.png": (32, 32)}


def test_manifest_writes_the_slack_manifest_to_standard_output(installed: Installed) -> None:
    result = installed.rallybridge("manifest", "--url", "https://bridge.example.com", "--out", "-", env=installed.env())
    assert result.returncode == 0, result.stderr
    assert result.stdout == build_manifest("https://bridge.example.com")
    assert "https://bridge.example.com/slack/events" in result.stdout


def test_the_demo_serves_its_playground_page(installed: Installed) -> None:
    """`rallybridge demo --no-script`: the stand-ins, the bridge and the page, all from the installed packages."""
    process = subprocess.Popen(
        [str(installed.bin / "rallybridge"), "demo", "--no-script", "--playground-port", "0"],
        env=installed.env(),
        cwd=installed.home,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    watchdog = threading.Timer(90, process.kill)  # a demo that hangs silently ends the readline below
    watchdog.start()
    printed: list[str] = []
    try:
        url = None
        while url is None:
            line = process.stdout.readline()
            assert line, "the demo exited before printing the playground's URL:\n" + "".join(printed)
            printed.append(line)
            found = re.search(r"Open (http://127\.0\.0\.1:\d+)/", line)
            url = found.group(1) if found else None
        for path in STATIC:
            with urllib.request.urlopen(url + path, timeout=10) as response:
                assert response.status == 200 and response.read()
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # Ctrl-C
        rest, _ = process.communicate(timeout=30)
    assert process.returncode == 0, "".join(printed) + rest


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _read(log: Any) -> str:
    log.flush()
    log.seek(0)
    text: str = log.read()
    return text[-6000:]
