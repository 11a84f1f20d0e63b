"""Run a command with a PostgreSQL the test suite can use (`make test` runs pytest through this).

    python scripts/with_postgres.py COMMAND [ARG...]

1. If the server named by CME_TEST_ADMIN_DSN (default postgresql://postgres@127.0.0.1:5432/postgres)
   answers, run COMMAND as it is.
2. Otherwise start a throwaway cluster: `initdb` into a temporary directory, `pg_ctl start` on a free
   loopback port, trust authentication, no fsync. The server binaries are looked for in CME_PG_BIN, then
   on PATH, then `pg_config --bindir`, then /usr/lib/postgresql/*/bin and /usr/local/pgsql/bin. Run as
   root, the cluster is owned by the `postgres` user (initdb refuses to run as root). COMMAND runs with
   CME_TEST_ADMIN_DSN pointing at it; the server is stopped and the directory removed afterwards,
   whatever COMMAND's outcome.
3. With neither, say in one line how to get one and exit 3.

The exit status is COMMAND's. Standard library only: it runs before anything else is known to work.
"""

from __future__ import annotations

import glob
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
CLUSTER_OWNER = "postgres"  # who runs initdb and the server when this script runs as root


def say(message: str) -> None:
    print(f"with_postgres: {message}", file=sys.stderr, flush=True)


def reachable(dsn: str, timeout: float = 3.0) -> bool:
    """Whether a PostgreSQL server accepts a connection at `dsn` (psycopg when installed, else a TCP probe)."""
    try:
        import psycopg
    except ImportError:
        from urllib.parse import urlsplit

        parts = urlsplit(dsn)
        try:
            with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), timeout):
                return True
        except OSError:
            return False
    try:
        with psycopg.connect(dsn, connect_timeout=max(1, int(timeout))):
            return True
    except psycopg.Error:
        return False


def server_bindir() -> Path | None:
    """A directory holding `initdb`, `pg_ctl` and `postgres`, or None."""
    candidates: list[str] = []
    if os.environ.get("CME_PG_BIN"):
        candidates.append(os.environ["CME_PG_BIN"])
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if result.returncode == 0:
            candidates.append(result.stdout.strip())

    def version(path: str) -> tuple[int, ...]:
        digits = Path(path).parent.name
        return tuple(int(p) for p in digits.split(".") if p.isdigit()) or (0,)

    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    candidates.append("/usr/local/pgsql/bin")
    for candidate in candidates:
        path = Path(candidate)
        if all((path / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return path
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_owner(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", CLUSTER_OWNER, "--", *argv]
    return ["su", CLUSTER_OWNER, "-s", "/bin/sh", "-c", shlex.join(argv)]


@contextmanager
def throwaway_cluster(bindir: Path) -> Iterator[str]:
    """A fresh cluster on a free loopback port; yields its admin DSN; stops it and removes it afterwards."""
    root = Path(tempfile.mkdtemp(prefix="cme-pg-"))
    data = root / "data"
    port = free_port()
    try:
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam(CLUSTER_OWNER)
            except KeyError:
                raise SystemExit(
                    f"with_postgres: initdb refuses to run as root and there is no `{CLUSTER_OWNER}` user; "
                    "run `make test` as another user or set CME_TEST_ADMIN_DSN."
                ) from None
            os.chown(root, owner.pw_uid, owner.pw_gid)
        initdb = [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        init = subprocess.run(
            _as_owner([*initdb, "--no-sync", "--no-instructions"]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        if init.returncode != 0:
            last = (init.stderr.strip().splitlines() or ["no message"])[-1]
            raise SystemExit(f"with_postgres: initdb failed: {last}")
        options = (
            f"-p {port} -c listen_addresses=127.0.0.1 -k {root} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        pg_ctl = [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-o", options]
        start = subprocess.run(
            _as_owner([*pg_ctl, "-w", "-t", "60", "start"]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        if start.returncode != 0:
            log = (root / "server.log").read_text(errors="replace") if (root / "server.log").exists() else ""
            raise SystemExit(f"with_postgres: the throwaway server did not start: {log.strip()[-500:]}")
        say(
            f"no PostgreSQL answered; started a throwaway one in {root} on 127.0.0.1:{port} (removed afterwards)"
        )
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                _as_owner([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
        shutil.rmtree(root, ignore_errors=True)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the cluster's clean-up


def run(command: Sequence[str]) -> int:
    if not command:
        print(__doc__, file=sys.stderr)
        return 2
    dsn = os.environ.get("CME_TEST_ADMIN_DSN", DEFAULT_DSN)
    if reachable(dsn):
        return subprocess.call(list(command), env={**os.environ, "CME_TEST_ADMIN_DSN": dsn})
    bindir = server_bindir()
    if bindir is None:
        say(
            f"no PostgreSQL at {dsn} and no server binaries (initdb) to start one: install PostgreSQL "
            "(Debian: apt-get install postgresql), or run `docker run -d -p 5432:5432 "
            "-e POSTGRES_HOST_AUTH_METHOD=trust postgres:15`, or set CME_TEST_ADMIN_DSN."
        )
        return 3
    signal.signal(signal.SIGTERM, _terminate)
    with throwaway_cluster(bindir) as admin_dsn:
        return subprocess.call(list(command), env={**os.environ, "CME_TEST_ADMIN_DSN": admin_dsn})


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
