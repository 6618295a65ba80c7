"""Run one side of one workload in this process and print its result.

    python benchmarks/child.py w1 durable '{"store": "postgres", "dsn": ..., "n": 200}'

``run.py`` starts one of these per measurement. ``BENCH_COUNT_QUERIES=1`` counts the
durable store's database round trips by statement and adds them to the result.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import emit


def main() -> None:
    workload, side, config = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    module = importlib.import_module(f"workloads.{workload}")
    counter = None
    if side == "durable" and os.environ.get("BENCH_COUNT_QUERIES"):
        from roundtrips import install

        counter = install()
    result = asyncio.run(getattr(module, side)(config))
    if counter is not None:
        result["round_trips"] = counter.report()
    emit(result)


if __name__ == "__main__":
    main()
