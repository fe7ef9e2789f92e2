"""Shared bits of the benchmarks: results with a same-run baseline, a table, JSON output, machine facts."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

PG_URL = os.environ.get("IMI_BENCH_PG_URL", "postgresql://root@127.0.0.1:5432/test")


@dataclass(frozen=True)
class Result:
    bench: str
    metric: str
    value: float
    unit: str
    baseline: float | None = None  # the same metric for the baseline, measured in the same run
    baseline_name: str = ""
    target: str = ""

    @property
    def ratio(self) -> float | None:
        return None if not self.baseline else self.value / self.baseline


def machine() -> dict[str, object]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }


def percentile(samples: Sequence[float], p: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def print_table(results: Sequence[Result]) -> None:
    header = f"{'bench':<10} {'metric':<46} {'value':>14} {'unit':<9} {'baseline':>12} {'ratio':>7}  target"
    print(header)
    print("-" * len(header))
    for r in results:
        base = f"{r.baseline:,.1f}" if r.baseline is not None else ""
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else ""
        print(f"{r.bench:<10} {r.metric:<46} {r.value:>14,.2f} {r.unit:<9} {base:>12} {ratio:>7}  {r.target}")
        if r.baseline_name:
            print(f"{'':<10}   baseline: {r.baseline_name}")


def write_json(results: Sequence[Result], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine(), "results": [asdict(r) for r in results]}, indent=2))
