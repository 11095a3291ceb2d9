"""Processes started by tests: each in its own process group, and killed by the kernel if pytest dies.

A fixture's `finally` does not run when pytest itself is killed (the OOM killer, a CI timeout); the
parent-death signal and the process group make sure no server outlives the run that started it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

# Linux: PR_SET_PDEATHSIG survives exec, so the real command inherits it; elsewhere the command runs as is.
# A change of user clears it, so the wrapper switches user (argv[2], "uid:gid" or "") before setting it.
_DIE_WITH_PARENT = (
    "import ctypes, os, sys\n"
    "if sys.argv[2]:\n"
    "    uid, gid = map(int, sys.argv[2].split(':')); os.setgroups([]); os.setgid(gid); os.setuid(uid)\n"
    "ctypes.CDLL(None).prctl(1, 15)\n"  # PR_SET_PDEATHSIG, SIGTERM
    "if os.getppid() != int(sys.argv[1]): sys.exit(1)\n"  # the parent is already gone
    "os.execvp(sys.argv[3], sys.argv[3:])\n"
)


def spawn(command: list[str], run_as: tuple[int, int] | None = None, **popen_options) -> subprocess.Popen:
    """Start `command` in a new process group that dies with this process; `run_as` (uid, gid) as another
    user (PostgreSQL refuses to run as root)."""
    if sys.platform.startswith("linux"):
        user = f"{run_as[0]}:{run_as[1]}" if run_as else ""
        command = [sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid()), user, *command]
    elif run_as:
        popen_options |= {"user": run_as[0], "group": run_as[1], "extra_groups": []}
    return subprocess.Popen(command, start_new_session=True, **popen_options)


def stop(process: subprocess.Popen, timeout_s: float = 30) -> int:
    """SIGTERM to the process (a clean shutdown is part of what is tested), then SIGKILL to its whole group."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is already gone
        os.killpg(process.pid, signal.SIGKILL)  # anything it started and left behind
    return process.returncode
