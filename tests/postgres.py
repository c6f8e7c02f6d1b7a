"""A throwaway PostgreSQL server for tests: Debian's `postgresql` binaries, a cluster in a
temporary folder listening on a unix socket there, stopped and removed after. As root the
server runs as the `postgres` user (initdb refuses root)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from contextlib import contextmanager


def _bin() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


@contextmanager
def postgres_server():
    """Yields a postgresql:// URL to an empty database; raises RuntimeError saying why none could start."""
    where = _bin()
    if where is None:
        raise RuntimeError("no PostgreSQL server binaries (install Debian's 'postgresql' package)")
    as_user: list[str] = []
    folder = tempfile.mkdtemp(prefix="cvaekit-pg-")
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise RuntimeError("running as root and there is no 'postgres' user to run the server as") from None
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data = os.path.join(folder, "data")
    try:
        run = lambda *cmd: subprocess.run([*as_user, *cmd], capture_output=True, text=True, timeout=120)
        done = run(f"{where}/initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
        if done.returncode:
            raise RuntimeError(f"initdb failed: {done.stderr.strip()[-300:]}")
        options = f"-c listen_addresses='' -k {folder} -p 5432 -c fsync=off"
        done = run(f"{where}/pg_ctl", "-D", data, "-o", options, "-l", os.path.join(folder, "log"), "-w", "start")
        if done.returncode:
            raise RuntimeError(f"the server did not start: {done.stderr.strip()[-300:]}")
        try:
            done = run(f"{where}/createdb", "-h", folder, "-p", "5432", "-U", "postgres", "tune")
            if done.returncode:
                raise RuntimeError(f"createdb failed: {done.stderr.strip()[-300:]}")
            yield f"postgresql://postgres@/tune?host={folder}&port=5432"
        finally:
            run(f"{where}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
