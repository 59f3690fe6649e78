"""The bridge's own HTTP answers: health, readiness, and the routes of a chat platform this bridge does not run.
Each platform's inbound route is its adapter's (``adapters/{slack,teams,respondent,rally}``); ``bot/app.py`` mounts
them all on one server."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web
from sqlalchemy import text

from adapters.web import Handler
from bot.settings import PLATFORM_NAMES
from storage.db import Database
from storage.migrate import schema_problem


def ready_route(db: Database, platforms: Sequence[str] = ()) -> Handler:
    """Ready when the database answers and its schema is the one this version needs. Every answer names the chat
    platforms this bridge runs (``platforms``: "slack", "teams")."""
    active = list(platforms)

    async def handle(_request: web.Request) -> web.StreamResponse:
        try:
            problem = await schema_problem(db)
        except Exception as exc:
            return web.json_response({"ready": False, "database": type(exc).__name__, "platforms": active}, status=503)
        if problem is not None:
            return web.json_response({"ready": False, "schema": problem, "platforms": active}, status=503)
        return web.json_response({"ready": True, "platforms": active})

    return handle


def not_configured_route(platform: str) -> Handler:
    """What a route of a chat platform this bridge does not run answers: 404, saying so. Nothing is read or stored."""
    body = {
        "error": "platform_not_configured",
        "platform": platform,
        "message": f"{PLATFORM_NAMES.get(platform, platform)} is not configured on this bridge",
    }

    async def handle(_request: web.Request) -> web.StreamResponse:
        return web.json_response(body, status=404)

    return handle


def add_not_configured(web_app: web.Application, platform: str, paths: Sequence[str]) -> None:
    """Answer every method on ``paths`` with :func:`not_configured_route`."""
    handler = not_configured_route(platform)
    for path in paths:
        web_app.router.add_route("*", path, handler)


def health_route(db: Database) -> Handler:
    async def handle(_request: web.Request) -> web.StreamResponse:
        try:
            async with db.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:
            return web.json_response({"status": "unhealthy", "database": type(exc).__name__}, status=503)
        return web.json_response({"status": "ok"})

    return handle
