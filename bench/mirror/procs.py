"""CPU time of a process tree from /proc (psutil is not installed here, and /proc is all
that is needed): utime + stime of the process and every live descendant, in seconds."""
from __future__ import annotations

import os
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text.rsplit(")", 1)[1].split()  # fields from 3 (state) on; comm may hold spaces


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int(_stat_fields(int(entry.name))[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out: list[int] = []
    todo = [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


def cpu_seconds(pid: int, tree: bool = True) -> float:
    """utime+stime (fields 14 and 15 of /proc/PID/stat) of pid and its live descendants."""
    total = 0
    for p in [pid, *(descendants(pid) if tree else [])]:
        try:
            f = _stat_fields(p)
        except OSError:
            continue
        total += int(f[11]) + int(f[12])
    return total / _TICK
