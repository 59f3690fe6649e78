"""PostgreSQL for the suite: fresh databases on the shared server, and a private cluster that may be restarted."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import asyncpg

SHARED_URL = os.environ.get("RALLYBRIDGE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg", "postgresql")


async def shared_problem() -> str | None:
    try:
        conn = await asyncpg.connect(_plain(SHARED_URL), timeout=3)
        await conn.close()
    except Exception as exc:
        return f"PostgreSQL not reachable at {SHARED_URL}: {type(exc).__name__}"
    return None


async def fresh_database(admin_url: str = SHARED_URL) -> tuple[str, str]:
    """A new, empty database next to ``admin_url``'s: (SQLAlchemy URL, name)."""
    name = f"rb_rel_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(_plain(admin_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"{admin_url.rsplit('/', 1)[0]}/{name}", name


async def drop_database(name: str, admin_url: str = SHARED_URL) -> None:
    conn = await asyncpg.connect(_plain(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


class PrivateCluster:
    """A throw-away PostgreSQL cluster on its own port, run as the ``postgres`` OS user (never the shared one)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix="rb-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"

    @property
    def admin_url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    @staticmethod
    def problem() -> str | None:
        """Why a private cluster cannot run here, or None."""
        if _bin("initdb") is None or _bin("pg_ctl") is None:
            return "no initdb/pg_ctl under /usr/lib/postgresql/*/bin"
        if os.geteuid() != 0 or shutil.which("runuser") is None:
            return "needs root and runuser to start PostgreSQL as the postgres OS user"
        return None

    def _as_postgres(self, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True, timeout=60)

    async def init(self) -> None:
        shutil.chown(self.dir, user="postgres")
        initdb = _bin("initdb")
        assert initdb is not None
        await asyncio.to_thread(
            self._as_postgres, initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"
        )
        await self.start()

    async def start(self) -> None:
        pg_ctl = _bin("pg_ctl")
        assert pg_ctl is not None
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        await asyncio.to_thread(
            self._as_postgres, pg_ctl, "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start"
        )

    async def stop(self, mode: str = "fast") -> None:
        pg_ctl = _bin("pg_ctl")
        assert pg_ctl is not None
        await asyncio.to_thread(self._as_postgres, pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop")

    async def destroy(self) -> None:
        with contextlib.suppress(Exception):
            await self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)
