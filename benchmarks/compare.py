"""Before/after: the durable side of some workloads, alternating two versions of the code.

    python benchmarks/compare.py --before /tmp/base/src --only W1,W2 --store postgres

Runs each workload ``--rounds`` times per version, alternating (before, after, before,
...), so that both see the same noise of a shared machine, and prints the median and the
spread of each figure. ``--before`` and ``--after`` name a checkout's ``src`` folder; the
installed package is the default of each.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import Runner, parse_args

FIGURES = {
    "W1": ("ms_per_step", "ms/step"),
    "W2": ("steps_per_s", "steps/s"),
    "W3": ("seconds", "s"),
    "W4": ("p50_ms", "p50 ms"),
    "W5": ("ms", "ms"),
    "W8": ("steps_per_s", "steps/s"),
    "W9": ("p50_s", "p50 s"),
}


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="src folder of the code before (default: installed)")
    parser.add_argument("--after", help="src folder of the code after (default: installed)")
    parser.add_argument("--only", default="W1,W2")
    parser.add_argument("--store", default="postgres", choices=("sqlite", "postgres"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    values: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="durable-compare-") as tmp:
        for _ in range(args.rounds):
            for wid in args.only.upper().split(","):
                for side, src in (("before", args.before), ("after", args.after)):
                    argv = ["--no-dbos", "--store", args.store]
                    argv += ["--quick"] if args.quick else []
                    argv += ["--src", src] if src else []
                    runner = Runner(parse_args(argv), tmp)
                    ours, _ = await runner.measure(wid, args.store)
                    key = FIGURES[wid][0]
                    if key in ours:
                        values.setdefault((wid, side), []).append(float(ours[key]))
    for wid in args.only.upper().split(","):
        unit = FIGURES[wid][1]
        line = [f"{wid} {args.store} ({unit}):"]
        for side in ("before", "after"):
            got = values.get((wid, side), [])
            if got:
                spread = ", ".join(f"{v:.3g}" for v in got)
                line.append(f"{side} {statistics.median(got):.4g} [{spread}]")
        print("  ".join(line))
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
