"""Import TensorFlow without its C++ start-up lines on stderr.

TensorFlow 2.21 logs "oneDNN custom operations are on" and "All log messages before absl::InitializeLog()"
from native code while it loads, before `TF_CPP_MIN_LOG_LEVEL` is read, so every command would start with
four lines of noise. The finder below silences file descriptor 2 while the `tensorflow` package itself
executes, and only then; an import error is still raised (and reported) as usual.

File descriptors are per process, so while the server's loader thread imports TensorFlow every other thread's
stderr would vanish too: RealCheck's log handler writes through `VisibleStderr`, which goes to the saved real
stderr while descriptor 2 is silenced.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import io
import os
import sys
import threading

QUIET_PACKAGES = frozenset({"tensorflow"})
_silence_lock = threading.Lock()
_real_stderr_fd: int | None = None  # the real stderr, while descriptor 2 points at /dev/null


@contextlib.contextmanager
def native_stderr_silenced():
    """Point file descriptor 2 at /dev/null (native libraries write there directly), then restore it."""
    global _real_stderr_fd
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with _silence_lock, open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            _real_stderr_fd = saved
        yield
    finally:
        sys.stderr.flush()
        with _silence_lock:
            _real_stderr_fd = None
            os.dup2(saved, 2)
        os.close(saved)


class VisibleStderr(io.TextIOBase):
    """`sys.stderr`, except while a TensorFlow import silences descriptor 2: then the real stderr."""

    def write(self, text: str) -> int:
        with _silence_lock:
            if _real_stderr_fd is not None:
                os.write(_real_stderr_fd, text.encode("utf-8", "replace"))
                return len(text)
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        with native_stderr_silenced():
            self.loader.exec_module(module)


class _QuietFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in QUIET_PACKAGES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def install() -> None:
    """Make later `import tensorflow` (direct, or through Keras) quiet; idempotent, imports nothing now."""
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietFinder())
