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


def tree_members(root: int) -> dict[int, int]:
    """pid -> resident bytes for `root` and all its descendants."""
    table = process_table()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    members, stack = {}, [root]
    while stack:
        pid = stack.pop()
        if pid in table:
            members[pid] = table[pid][1]
        stack.extend(children.get(pid, []))
    return members


def largest(members: dict[int, int], count: int = 4) -> list[list]:
    """The `count` largest processes as [pid, name, MB]: which part of the tree holds the memory."""
    rows = []
    for pid, rss in sorted(members.items(), key=lambda item: -item[1])[:count]:
        try:
            name = (
                Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:80]
            )
        except OSError:
            name = "?"
        rows.append([pid, name, round(rss / 1e6)])
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between samples")
    parser.add_argument(
        "--timeline",
        type=Path,
        default=None,
        help="also write each sample (time, total, largest processes) as JSON lines",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give a command after --")
    started = time.perf_counter()
    process = subprocess.Popen(command)
    peak, peak_processes = 0, 0
    timeline = open(args.timeline, "w", encoding="utf-8") if args.timeline else None  # noqa: SIM115
    while process.poll() is None:
        members = tree_members(process.pid)
        total, count = sum(members.values()), len(members)
        if total > peak:
            peak, peak_processes = total, count
        if timeline:
            sample = {"t": round(time.time(), 1), "gb": round(total / 1e9, 2), "largest": largest(members)}
            timeline.write(json.dumps(sample) + "\n")
        time.sleep(args.interval)
    if timeline:
        timeline.close()
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
