"""The bridge's own HTTP answers: health and readiness. Each platform's inbound route is its adapter's
(``adapters/{slack,teams,respondent,rally}``); ``bot/app.py`` mounts them all on one server."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import text

from adapters.web import Handler
from storage.db import Database
from storage.migrate import schema_problem


def ready_route(db: Database) -> Handler:
    """Ready when the database answers and its schema is the one this version needs."""

    async def handle(_request: web.Request) -> web.StreamResponse:
        try:
            problem = await schema_problem(db)
        except Exception as exc:
            return web.json_response({"ready": False, "database": type(exc).__name__}, status=503)
        if problem is not None:
            return web.json_response({"ready": False, "schema": problem}, status=503)
        return web.json_response({"ready": True})

    return handle


def health_route(db: Database) -> Handler:
    async def handle(_request: web.Request) -> web.StreamResponse:
        try:
            async with db.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:
            return web.json_response({"status": "unhealthy", "database": type(exc).__name__}, status=503)
        return web.json_response({"status": "ok"})

    return handle
