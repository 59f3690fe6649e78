"""The `rallybridge` command."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

import typer
from aiohttp import web

from bot.config_check import active_platforms, database_lines, load_settings, platform_lines, problems_for_serve
from bot.settings import PLATFORM_NAMES, Settings
from bridge import logs

cli = typer.Typer(
    help="Rally Bridge: Respondent participant chat in your Slack or Microsoft Teams channels.", no_args_is_help=True
)
db_cli = typer.Typer(help="Database schema commands.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
log = logging.getLogger("rallybridge")


def _settings_or_exit(*, for_serve: bool) -> Settings:
    settings, problems = load_settings()
    if settings is not None and for_serve:
        problems = problems_for_serve(settings)
    if settings is None or problems:
        typer.echo("Rally Bridge is not configured correctly:", err=True)
        for problem in problems:
            typer.echo(f"  - {problem}", err=True)
        typer.echo("Set these in the environment or in a .env file (see README: Configuration).", err=True)
        raise typer.Exit(code=2)
    return settings


@cli.command("check-config")
def check_config() -> None:
    """Name every missing or invalid setting and exit non-zero if there is one; say which chat platforms are on."""
    settings = _settings_or_exit(for_serve=True)
    on = " and ".join(PLATFORM_NAMES[p] for p in active_platforms(settings))
    typer.echo(
        f"Configuration OK: chat on {on}; HTTP on {settings.host}:{settings.port}; "
        f"database {settings.database_url.split('://')[0]}."
    )
    for line in platform_lines(settings) + database_lines(settings):
        typer.echo(line)


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema to the newest version (Alembic head)."""
    from storage.migrate import head_revision, upgrade

    settings, problems = load_settings()
    if settings is None:
        for problem in problems:
            typer.echo(f"  - {problem}", err=True)
        raise typer.Exit(code=2)
    upgrade(settings.database_url)
    typer.echo(f"Database schema is at revision {head_revision()} (newest).")


@cli.command()
def serve(
    socket_mode: bool = typer.Option(
        False, "--socket-mode", help="Receive Slack over Socket Mode (needs SLACK_APP_TOKEN)."
    ),
) -> None:
    """Run the bridge: every HTTP route on one aiohttp server, plus the workers."""
    settings = _settings_or_exit(for_serve=True)
    logs.configure(settings.log_level, json=logs.wants_json(settings.log_format))
    if socket_mode and (settings.slack_app_token is None or not settings.slack_enabled):
        typer.echo("--socket-mode needs Slack with SLACK_APP_TOKEN (an xapp- app-level token).", err=True)
        raise typer.Exit(code=2)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(settings, socket_mode=socket_mode or settings.socket_mode))


async def _serve(settings: Settings, *, socket_mode: bool) -> None:
    from bot.app import SchemaOutOfDate, build_bridge

    bridge = build_bridge(settings, http_slack=not socket_mode)  # only the configured chat platforms
    runner = web.AppRunner(bridge.web_app, access_log=None)
    try:
        await runner.setup()
    except SchemaOutOfDate as exc:
        typer.echo(f"Refusing to start: {exc}", err=True)
        await bridge.db.dispose()
        raise typer.Exit(code=3) from exc
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    handler = None
    if socket_mode and bridge.bolt is not None:
        from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

        assert settings.slack_app_token is not None
        handler = AsyncSocketModeHandler(bridge.bolt, settings.slack_app_token.get_secret_value())
        await handler.connect_async()
    platforms = {"slack": f"Slack over {'Socket Mode' if socket_mode else 'HTTP'}", "teams": "Teams"}
    log.info(
        "Rally Bridge listening on %s:%s (%s)",
        settings.host,
        settings.port,
        ", ".join(platforms[p] for p in bridge.services.chats),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # SIGTERM (what systemd, Docker and Kubernetes send) stops as cleanly as Ctrl-C: claimed work is finished or
    # released by the workers' shutdown instead of waiting out its lease in another replica.
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
        log.info("Rally Bridge stopping (signal received)")
    finally:
        if handler is not None:
            await handler.close_async()
        await runner.cleanup()


@cli.command()
def demo(
    port: int = typer.Option(0, help="Port for the bridge (0: any free port)."),
    database: str = typer.Option("", help="Database URL (default: a fresh SQLite file in ./.demo/)."),
    pace: float = typer.Option(0.6, help="Seconds between the demo's steps (0 for as fast as possible)."),
    script: bool = typer.Option(True, "--script/--no-script", help="Play the scripted study first."),
    playground: bool = typer.Option(
        True,
        "--playground/--no-playground",
        help="Then keep everything running and serve the playground page in your browser (Ctrl-C stops).",
    ),
    playground_port: int = typer.Option(8765, help="Port for the playground page (taken or 0: any free port)."),
) -> None:
    """Play a realistic study on local stand-ins of Slack, Respondent and Rally, then let you play it yourself
    in your browser. No account, no network."""
    from playground.demo import run_demo

    if not script and not playground:
        typer.echo("Nothing to do: --no-script and --no-playground together leave neither.", err=True)
        raise typer.Exit(code=2)
    logs.configure("WARNING")
    code = asyncio.run(
        run_demo(
            port=port,
            database_url=database or None,
            pace=pace,
            script=script,
            playground_port=playground_port if playground else None,
        )
    )
    raise typer.Exit(code=code)


@cli.command()
def manifest(
    url: str = typer.Option(..., "--url", help="The bridge's public https:// URL, e.g. https://bridge.example.com."),
    out: str = typer.Option("manifest.yml", "--out", help="Where to write the manifest ('-': standard output)."),
    name: str = typer.Option("Rally Bridge", "--name", help="The app's name (and bot's display name) in Slack."),
) -> None:
    """Write the Slack app manifest: this bridge's request and OAuth redirect URLs, the scopes and events it uses."""
    from adapters.slack.manifest import ManifestError, build_manifest

    try:
        text = build_manifest(url, name=name)
    except ManifestError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=2) from exc
    if out == "-":
        typer.echo(text, nl=False)
        return
    Path(out).write_text(text, encoding="utf-8")
    typer.echo(f"Wrote {out}: paste it at https://api.slack.com/apps (Create New App -> From an app manifest).")


@cli.command("teams-package")
def teams_package(
    app_id: str = typer.Option(..., "--app-id", help="The bot's Microsoft App ID (MICROSOFT_APP_ID)."),
    url: str = typer.Option(..., "--url", help="The bridge's public https:// URL (Teams posts to <url>/api/messages)."),
    out: str = typer.Option("rallybridge-teams.zip", "--out", help="Where to write the zip."),
) -> None:
    """Write the Teams app package (manifest + icons) to upload in Teams or the Developer Portal."""
    from adapters.teams.package import PackageError, write_package

    try:
        written = write_package(app_id, url, Path(out))
    except PackageError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=2) from exc
    typer.echo(f"Wrote {written}: upload it in Teams (Apps -> Manage your apps -> Upload an app).")


def main() -> None:
    cli()
