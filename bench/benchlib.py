"""What every benchmark under ``bench/`` shares: latency summaries, a timing loop, the report header and
writing the JSON report. Benchmarks measure and report; nothing here asserts on timings."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil


def summarize(samples: list[float], wall: float | None = None) -> dict[str, float]:
    """``samples`` in seconds -> ``{n, p50_ms, p95_ms, mean_ms}`` (milliseconds, 2 decimals); with ``wall`` (the
    seconds the samples took together) also ``requests_per_s``."""
    ms = sorted(x * 1000 for x in samples)
    cuts = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else [ms[0]] * 99
    summary = {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p95_ms": round(cuts[94], 2),
        "mean_ms": round(statistics.fmean(ms), 2),
    }
    if wall is not None:
        summary["requests_per_s"] = round(len(ms) / wall, 1)
    return summary


async def timed(coro_factory: Callable[[int], Awaitable[Any]], n: int) -> list[float]:
    """Await ``coro_factory(i)`` for ``i`` in ``range(n)``, one after another; the seconds each took."""
    samples = []
    for i in range(n):
        start = time.perf_counter()
        await coro_factory(i)
        samples.append(time.perf_counter() - start)
    return samples


def _cpu_seconds_by_pid(pid: int) -> dict[int, float]:
    """User + system CPU seconds of ``pid`` and each of its descendants, by pid (threads included)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return {}
    seconds = {}
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        seconds[process.pid] = times.user + times.system
    return seconds


def _owned_cpu_seconds(processes: dict[str, int]) -> dict[str, dict[int, float]]:
    """Each named process's tree, a process that is in several (a named child of another named process, such as
    a server the benchmark started) counted for the innermost one only."""
    trees = {name: _cpu_seconds_by_pid(pid) for name, pid in processes.items()}
    for name, tree in trees.items():
        inner = [other for other, pid in processes.items() if other != name and pid in tree]
        for other in inner:
            for pid in trees[other]:
                tree.pop(pid, None)
    return trees


@contextmanager
def cpu_used(processes: dict[str, int | None]) -> Iterator[dict[str, float]]:
    """CPU seconds (user + system) that each named process and its descendants spend inside the block: the
    yielded dict is filled in on exit. A None pid (an external server) is skipped; a descendant that is itself
    named counts for its own name only; a descendant that exits inside the block is not counted (PostgreSQL
    backends of a pool live on)."""
    named = {name: pid for name, pid in processes.items() if pid}
    before = _owned_cpu_seconds(named)
    used: dict[str, float] = {}
    yield used
    after = _owned_cpu_seconds(named)
    for name, tree in after.items():
        used[name] = round(sum(seconds - before[name].get(pid, 0.0) for pid, seconds in tree.items()), 3)


def stack_pids(stack: Any) -> dict[str, int | None]:
    """The pids of an embedded ``psa.devstack.DevStack``'s components by name (``postgres``, ``temporal``,
    ``worker``; None when not running or external), or ``{}`` without a stack (external servers)."""
    return {component.name: component.pid for component in stack.status()} if stack else {}


def per_item_ms(cpu_seconds: dict[str, float], items: int) -> dict[str, float]:
    """``cpu_used`` seconds as milliseconds per item (request, provisioning), with their ``total``."""
    per = {name: round(seconds / items * 1000, 2) for name, seconds in cpu_seconds.items()}
    return {**per, "total": round(sum(per.values()), 2)}


def header(benchmark: str) -> dict[str, Any]:
    """The first keys of every report: the benchmark's name, the UTC date and the machine."""
    return {
        "benchmark": benchmark,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
    }


def write_report(report: dict[str, Any], out: Path, shown: Iterable[str]) -> Path:
    """Write ``report`` as indented JSON to ``out`` (folders created), print its ``shown`` keys and the path."""
    out = out.expanduser().resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in shown}, indent=2))
    print(f"written to {out}")
    return out
