"""Silencing TensorFlow's native start-up lines never swallows RealCheck's own messages from other threads."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import os, threading
from realcheck.model import quiet_import

stream = quiet_import.VisibleStderr()
with quiet_import.native_stderr_silenced():
    os.write(2, b"native noise\\n")
    other = threading.Thread(target=stream.write, args=("a log line from another thread\\n",))
    other.start()
    other.join()
stream.write("after the import\\n")
os.write(2, b"native again\\n")
"""


def test_log_lines_written_while_descriptor_2_is_silenced_still_reach_stderr():
    # Descriptors are per process: run it in a child of its own, not under pytest's capture.
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "a log line from another thread\nafter the import\nnative again\n"
