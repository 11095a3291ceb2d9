"""Real databases for the tests: SQLite files, a throwaway PostgreSQL cluster and a Redis server started here.

The cluster is Debian's `postgresql` package (scripts/test.sh installs it when run as root): initdb in a
temporary folder, then `postgres` itself on a free loopback port, in its own process group and dying with
the test run (tests/processes.py). PostgreSQL refuses to run as root, so under root it runs as the
`postgres` user (or `nobody`). Each test gets a fresh database in it.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import processes
from serving import free_port

STARTUP_TIMEOUT_S = 60
SUPERUSER = "realcheck"
_names = itertools.count()


def postgres_bin_dir() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian keeps them in /usr/lib/postgresql/N/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _account() -> tuple[int, int] | None:
    """Whom the cluster runs as: this user, or (as root) `postgres`, else `nobody`."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    raise RuntimeError("running as root, and there is no postgres or nobody user to run PostgreSQL as")


def wait_until_serving(name: str, process, probe, refused: type[Exception], log) -> None:
    """Until `probe()` stops raising `refused`; a RuntimeError with the server's log if it exits or takes
    longer than STARTUP_TIMEOUT_S."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}: {log()}")
        try:
            probe()
            return
        except refused:
            time.sleep(0.1)
    raise RuntimeError(f"{name} did not answer in {STARTUP_TIMEOUT_S} s: {log()}")


class PostgresCluster:
    """A PostgreSQL server of its own: `url(database)` for SQLAlchemy, `new_database()` for each test."""

    def __init__(self, bin_dir: Path):
        self.bin_dir = bin_dir
        self.port = free_port()
        self.account = _account()
        # Not under pytest's tmp folder: that one is private to root, and the cluster may run as postgres.
        self.root = Path(tempfile.mkdtemp(prefix="realcheck-pg-"))
        self.data = self.root / "data"
        if self.account:
            os.chown(self.root, *self.account)
        self._log = open(self.root / "postgres.log", "wb")  # noqa: SIM115  closed in stop()
        initdb = [
            str(bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "-E",
            "UTF8",
        ]
        result = processes.spawn(initdb, run_as=self.account, stdout=self._log, stderr=subprocess.STDOUT)
        if result.wait(timeout=120) != 0:
            raise RuntimeError(f"initdb failed: {self.log()}")
        command = [
            str(bin_dir / "postgres"),
            "-D", str(self.data),
            "-p", str(self.port),
            "-k", str(self.root),  # its Unix socket stays in our folder, away from /var/run
            "-c", "listen_addresses=127.0.0.1",
            "-c", "max_connections=60",
            "-c", "shared_buffers=16MB",
        ]  # fmt: skip
        self.process = processes.spawn(
            command, run_as=self.account, stdout=self._log, stderr=subprocess.STDOUT
        )
        self._wait_ready()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _wait_ready(self) -> None:
        import psycopg

        wait_until_serving(
            "postgres",
            self.process,
            lambda: psycopg.connect(self.url(), connect_timeout=2).close(),
            psycopg.OperationalError,
            self.log,
        )

    def new_database(self) -> str:
        """A fresh, empty database; its SQLAlchemy URL."""
        import psycopg

        name = f"feedback_{os.getpid()}_{next(_names)}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return (self.root / "postgres.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        """Fast shutdown (SIGINT: open sessions are ended, not waited for), then remove the cluster."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=30)
        processes.stop(self.process)
        self._log.close()
        shutil.rmtree(self.root, ignore_errors=True)


class RedisServer:
    """A Redis server of its own on a free loopback port, in memory only (no snapshots, no append log)."""

    def __init__(self, executable: str):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.root = Path(tempfile.mkdtemp(prefix="realcheck-redis-"))
        self._log = open(self.root / "redis.log", "wb")  # noqa: SIM115  closed in stop()
        command = [
            executable,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        command += ["--dir", str(self.root)]
        self.process = processes.spawn(command, stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self) -> None:
        import redis

        wait_until_serving(
            "redis-server",
            self.process,
            lambda: redis.Redis.from_url(self.url, socket_timeout=2).ping(),
            redis.ConnectionError,
            self.log,
        )

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return (self.root / "redis.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        processes.stop(self.process)
        self._log.close()
        shutil.rmtree(self.root, ignore_errors=True)
