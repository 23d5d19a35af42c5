"""``python -m bench [NAME ...] [options]``: run caseloop's benchmarks (all by default).

Each benchmark prints a table of figures, ratios and issue 10's acceptance targets and writes
JSON to bench/results/. The exit status is 1 if any figure missed its target, 2 on an error.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import traceback
from types import ModuleType

from bench import cleanup, dailysummary, fullcase, latency, longcase, memory, portal, webhooks

# name -> module with NAME, add_arguments(parser) and async run(args) -> Report.
BENCHMARKS: dict[str, ModuleType] = {
    module.NAME: module
    for module in (latency, fullcase, memory, longcase, cleanup, portal, webhooks, dailysummary)
}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m bench",
        description="caseloop's benchmarks against a bare Temporal baseline (bench/README.md).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    top.add_argument(
        "names", nargs="*", metavar="NAME", help=f"benchmarks to run: {', '.join(BENCHMARKS)}"
    )
    top.add_argument(
        "--database",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="the read model: a SQLite file, or a throwaway PostgreSQL cluster",
    )
    for name, module in BENCHMARKS.items():
        module.add_arguments(top.add_argument_group(name))
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    names = args.names or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; known: {list(BENCHMARKS)}", file=sys.stderr)
        return 2
    status = 0
    for name in names:
        try:
            report = asyncio.run(BENCHMARKS[name].run(args))
        except Exception:
            traceback.print_exc()
            print(f"bench {name}: ERROR", file=sys.stderr)
            status = 2
            continue
        report.options["database"] = args.database
        report.print()
        print(f"written {report.write()}")
        if status == 0 and any(row.passed is False for row in report.rows):
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
