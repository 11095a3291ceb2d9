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
_DIE_WITH_PARENT = (
    "import ctypes, os, sys\n"
    "ctypes.CDLL(None).prctl(1, 15)\n"  # PR_SET_PDEATHSIG, SIGTERM
    "if os.getppid() != int(sys.argv[1]): sys.exit(1)\n"  # the parent is already gone
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


def spawn(command: list[str], **popen_options) -> subprocess.Popen:
    """Start `command` in a new process group that dies with this process."""
    if sys.platform.startswith("linux"):
        command = [sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid()), *command]
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
