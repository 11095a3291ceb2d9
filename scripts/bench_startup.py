#!/usr/bin/env python
"""Time `realcheck serve` from launch to ready, and its memory then, with an empty cache each time.

Each run starts the server on a free port with a fresh `--cache-dir` (what a first start on a new machine
meets), polls /readyz, and reads the resident memory of the server's whole process tree (children
included) at the moment it is ready and once more after `--after-s` seconds. Prints one JSON object.

    python scripts/bench_startup.py --runs 3
    python scripts/bench_startup.py --model runs/my-artifact --runs 1
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")


def tree_rss_bytes(root: int) -> int:
    """Resident bytes of `root` and all its descendants (Linux /proc)."""
    parents, rss = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            pages = int((entry / "statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents[int(entry.name)] = int(stat[1])
        rss[int(entry.name)] = pages * PAGE
    members, frontier = {root}, [root]
    while frontier:
        current = frontier.pop()
        children = [pid for pid, parent in parents.items() if parent == current and pid not in members]
        members.update(children)
        frontier.extend(children)
    return sum(rss.get(pid, 0) for pid in members)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def one_start(command: list[str], after_s: float, timeout_s: float) -> dict:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="realcheck-cache-") as cache:
        started = time.perf_counter()
        process = subprocess.Popen(
            [*command, "--port", str(port), "--cache-dir", cache],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        peak = 0
        try:
            while True:
                peak = max(peak, tree_rss_bytes(process.pid))
                if process.poll() is not None:
                    raise SystemExit(f"the server exited with {process.returncode} before it was ready")
                if time.perf_counter() - started > timeout_s:
                    raise SystemExit(f"the server was not ready after {timeout_s} s")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
                        if answer.status == 200:
                            break
                except (urllib.error.URLError, OSError):
                    pass
                time.sleep(0.1)
            ready_s = time.perf_counter() - started
            at_ready = tree_rss_bytes(process.pid)
            time.sleep(after_s)
            settled = tree_rss_bytes(process.pid)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                status = process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                status = process.wait()
    return {
        "ready_s": round(ready_s, 2),
        "rss_at_ready_mb": round(at_ready / 2**20),
        "rss_settled_mb": round(settled / 2**20),
        "peak_rss_while_starting_mb": round(max(peak, at_ready) / 2**20),
        "exit_status": status,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="artifact folder (default: the bundled model)")
    parser.add_argument("--runs", type=int, default=3, help="starts to measure (default 3)")
    parser.add_argument("--after-s", type=float, default=5.0, help="second reading this long after ready")
    parser.add_argument("--timeout-s", type=float, default=600.0, help="give up on a start after this long")
    args = parser.parse_args()
    command = [sys.executable, "-m", "realcheck", "-q", "serve"]
    if args.model:
        command += ["--model", args.model]
    runs = [one_start(command, args.after_s, args.timeout_s) for _ in range(args.runs)]
    summary = {
        "model": args.model or "bundled",
        "runs": runs,
        "median_ready_s": statistics.median(run["ready_s"] for run in runs),
        "max_peak_rss_mb": max(run["peak_rss_while_starting_mb"] for run in runs),
        "cpu_count": os.cpu_count(),
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
