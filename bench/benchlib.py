"""What every benchmark under ``bench/`` shares: latency summaries, a timing loop, the report header and
writing the JSON report. Benchmarks measure and report; nothing here asserts on timings."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any


def summarize(samples: list[float], wall: float | None = None) -> dict[str, float]:
    """``samples`` in seconds -> ``{n, p50_ms, p95_ms, mean_ms}`` (milliseconds, 2 decimals); with ``wall`` (the
    seconds the samples took together) also ``requests_per_s``."""
    ms = sorted(x * 1000 for x in samples)
    cuts = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else [ms[0]] * 99
    summary = {"n": len(ms), "p50_ms": round(statistics.median(ms), 2), "p95_ms": round(cuts[94], 2),
               "mean_ms": round(statistics.fmean(ms), 2)}  # fmt: skip
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
