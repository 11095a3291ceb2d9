#!/usr/bin/env python
"""Run a command and report the peak memory of its whole process tree (the sum of every descendant's RSS).

`/usr/bin/time -v` gives the largest single process; a test suite that starts servers and browsers needs
the sum. Samples /proc every `--interval` seconds (Linux only), prints one JSON line on stderr at the end and
exits with the command's status.

    python scripts/peak_memory.py -- bash scripts/test.sh
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")


def process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, resident bytes) for every process we can read."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            pages = int((entry / "statm").read_text().split()[1])
        except (OSError, ValueError, IndexError):
            continue  # the process ended while we looked
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        table[int(entry.name)] = (parent, pages * PAGE)
    return table


def tree_rss(root: int) -> tuple[int, int]:
    """(total resident bytes, process count) of `root` and all its descendants."""
    table = process_table()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    total, count, stack = 0, 0, [root]
    while stack:
        pid = stack.pop()
        if pid in table:
            total += table[pid][1]
            count += 1
        stack.extend(children.get(pid, []))
    return total, count


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between samples")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give a command after --")
    started = time.perf_counter()
    process = subprocess.Popen(command)
    peak, peak_processes = 0, 0
    while process.poll() is None:
        total, count = tree_rss(process.pid)
        if total > peak:
            peak, peak_processes = total, count
        time.sleep(args.interval)
    report = {
        "command": " ".join(command),
        "exit_status": process.returncode,
        "seconds": round(time.perf_counter() - started, 1),
        "peak_tree_rss_gb": round(peak / 1e9, 2),
        "processes_at_peak": peak_processes,
    }
    print(json.dumps(report), file=sys.stderr)
    return process.returncode


if __name__ == "__main__":
    sys.exit(main())
