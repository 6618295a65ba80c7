"""Kept for old habits: the same as ``python benchmarks/run.py --quick`` (any other
options of ``run.py`` pass through, e.g. ``--store postgres --only W1,W2``)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import main

if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(["--quick", *sys.argv[1:]])))
