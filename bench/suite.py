"""Run every benchmark (``bench/run``): one table with the same-run baselines, JSON in bench/results/latest.json.

Each module ``bench/<name>.py`` exposes ``run(quick: bool) -> list[Result]`` (see ``call_run`` for the one that
does not); modules that are not there yet are skipped. A module that fails is reported (and the exit status is
1) while the others still run; so is a load run with errors.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from types import ModuleType
from typing import Any, cast

from bench.common import Result, machine, print_table

BENCH = Path(__file__).resolve().parent
MODULES = ("ledger", "issue", "verify", "wallet", "consent", "load")
LATEST = BENCH / "results" / "latest.json"


def call_run(module: ModuleType, *, quick: bool) -> list[Result]:
    """``module.run(quick=...)``; a module whose ``run`` takes an ``Options`` instead (bench/consent.py today)
    gets its defaults, or the 5 s per measurement its own ``--quick`` means."""
    run = cast(Callable[..., list[Result]], module.run)
    if "quick" in inspect.signature(run).parameters:
        return run(quick=quick)
    options = getattr(module, "Options", None)
    if options is None:
        raise TypeError(f"{module.__name__}.run takes neither quick nor Options")
    return run(options(seconds=5.0) if quick else options())


def run_all(names: Sequence[str], *, quick: bool) -> tuple[list[Result], dict[str, dict[str, Any]]]:
    results: list[Result] = []
    runs: dict[str, dict[str, Any]] = {}
    for name in names:
        if not (BENCH / f"{name}.py").exists():
            runs[name] = {"skipped": "no such module yet"}
            continue
        print(f"== bench.{name} ({'quick' if quick else 'full'})", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            found = call_run(importlib.import_module(f"bench.{name}"), quick=quick)
        except Exception as exc:  # one broken benchmark must not hide the others
            traceback.print_exc()
            runs[name] = {"seconds": round(time.perf_counter() - started, 1), "error": repr(exc)}
            continue
        results += found
        runs[name] = {"seconds": round(time.perf_counter() - started, 1), "results": len(found)}
    return results, runs


def load_errors(results: Sequence[Result]) -> int:
    return int(sum(r.value for r in results if r.bench == "load" and r.metric.startswith("errors")))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the short form of every benchmark")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(MODULES)}")
    parser.add_argument("--json", type=Path, default=LATEST, help=f"where to write the results ({LATEST})")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",")] if args.only else list(MODULES)
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    started = time.perf_counter()
    results, runs = run_all(names, quick=args.quick)
    print()
    print_table(results)
    total = time.perf_counter() - started
    print(
        f"\n({'quick' if args.quick else 'full'} run, {total:.0f} s: "
        + ", ".join(
            f"{n} {r['seconds']:.0f} s" if "seconds" in r else f"{n} skipped" for n, r in runs.items()
        )
        + ")"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "machine": machine(),
                "quick": args.quick,
                "seconds": round(total, 1),
                "runs": runs,
                "results": [asdict(r) for r in results],
            },
            indent=2,
            ensure_ascii=False,
        )
    )
    print(f"wrote {args.json}")
    failed = [n for n, r in runs.items() if "error" in r]
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
    if load_errors(results):
        print("FAILED: the load run had errors", file=sys.stderr)
    return 1 if failed or load_errors(results) else 0


if __name__ == "__main__":
    sys.exit(main())
