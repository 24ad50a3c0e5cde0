"""Real Redis and PostgreSQL for the shared-state tests (no tests here).

The machine's servers (Redis 127.0.0.1:6379, PostgreSQL 127.0.0.1:5432, trust
auth) are shared: each test session uses a fresh randomly named PostgreSQL
database, dropped at the end, and a random Redis key prefix, deleted at the
end. Fault tests start their own ``redis-server`` or PostgreSQL cluster
(``initdb``/``pg_ctl`` in a temporary folder) on a free port, never touching
the shared ones. Without the servers the tests skip, except under ``CI=true``,
where they must run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

REDIS_URL = os.environ.get("WX_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_ADMIN_URL = os.environ.get("WX_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _missing(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI 中必须有 Redis 和 PostgreSQL：{reason}")
    pytest.skip(f"跳过：{reason}（本机没有可用的服务器；CI 中会运行）")


def redis_or_skip(url: str = REDIS_URL):
    try:
        import redis
    except ImportError:
        _missing("没有安装 redis")
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        _missing(f"Redis {url} 不可用：{exc}")
    return client


def postgres_or_skip(url: str = PG_ADMIN_URL):
    try:
        import psycopg
    except ImportError:
        _missing("没有安装 psycopg")
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=2)
    except psycopg.Error as exc:
        _missing(f"PostgreSQL {url} 不可用：{str(exc).strip().splitlines()[0]}")


def with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


class Shared:
    """One fresh PostgreSQL database and Redis prefix: ``env`` for servers, ``urls`` for the library."""

    def __init__(self, redis_url: str, database_url: str, prefix: str):
        self.redis_url, self.database_url, self.prefix = redis_url, database_url, prefix

    @property
    def urls(self) -> tuple[str, str]:
        return self.redis_url, self.database_url

    @property
    def env(self) -> dict[str, str]:
        return {"WX_REDIS_URL": self.redis_url, "WX_DATABASE_URL": self.database_url, "WX_REDIS_PREFIX": self.prefix}

    def pg(self):
        import psycopg

        return psycopg.connect(self.database_url, autocommit=True)

    def count(self, sql: str) -> int:
        with self.pg() as conn:
            return conn.execute(sql).fetchone()[0]


def fresh_database(admin) -> str:
    name = f"wx_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_database(admin, name: str) -> None:
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def drop_prefix(client, prefix: str) -> None:
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)


class RedisServer:
    """A throwaway ``redis-server`` on a free port (for restart tests)."""

    def __init__(self, tmp: Path):
        if shutil.which("redis-server") is None:
            _missing("没有 redis-server")
        self.port = free_port()
        self.tmp = tmp
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.tmp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


class PostgresCluster:
    """A throwaway PostgreSQL cluster (``initdb`` + ``pg_ctl``) in ``tmp`` on a free port."""

    def __init__(self, tmp: Path):
        for tool in ("initdb", "pg_ctl"):
            if shutil.which(tool) is None:
                _missing(f"没有 {tool}")
        self.home = Path(tempfile.mkdtemp(prefix="wx-pg-"))  # reachable by the postgres user (tmp_path is not)
        owner = _postgres_user()
        if owner is not None:
            os.chown(self.home, owner.pw_uid, owner.pw_gid)
        self.data = self.home / "pgdata"
        self.port = free_port()
        self.log = self.home / "pg.log"
        user = "postgres"
        init = subprocess.run(["initdb", "-D", str(self.data), "-U", user, "--auth=trust", "-E", "UTF8",
                               "--no-sync"], capture_output=True, text=True, **_as_postgres())
        if init.returncode:
            _missing(f"initdb 失败：{init.stderr.strip()[-300:]}")
        self.url = f"postgresql://{user}@127.0.0.1:{self.port}/postgres"
        self.start()

    def start(self) -> None:
        subprocess.run(["pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-o",
                        f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                       check=True, capture_output=True, **_as_postgres())

    def stop(self) -> None:
        subprocess.run(["pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop"], capture_output=True,
                       **_as_postgres())

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)


def _postgres_user():
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        _missing("以 root 运行却没有 postgres 用户来运行 initdb")


def _as_postgres() -> dict:
    """initdb and pg_ctl refuse to run as root: run them as the postgres user when we are root."""
    entry = _postgres_user()
    if entry is None:
        return {}

    def demote():
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)

    return {"preexec_fn": demote}


def _wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")
