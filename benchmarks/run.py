"""The benchmark of docs/performance.md: workloads W1-W8 on SQLite and Postgres, each side by
side with DBOS Transact in the same invocation, and the commit floor of the same server.

    python benchmarks/run.py                    # everything (about 10 minutes)
    python benchmarks/run.py --quick            # smaller N (under two minutes)
    python benchmarks/run.py --only W1,W2 --store postgres --json results.json
    python benchmarks/run.py --only W1 --profile prof/    # py-spy the durable side
    python benchmarks/run.py --only W1 --count-queries    # round trips per statement

Postgres: ``--dsn``, else ``$DURABLE_BENCH_DSN``, else the local server; each measurement
gets a fresh schema (durable's) or a fresh system schema (DBOS's) on that server, dropped
afterwards. SQLite: fresh files in a temporary folder. Every measurement runs in its own
child process (``child.py``). See docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg
from _harness import DEFAULT_DSN, HERE, child_env, plain_dsn, with_schema
from floor import postgres_floor, sqlite_floor
from report import print_table

WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8", "W9")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller N: under two minutes")
    parser.add_argument("--only", help="comma-separated workloads, e.g. W1,W2")
    parser.add_argument("--store", choices=("sqlite", "postgres"), help="one store only")
    parser.add_argument(
        "--dsn", help=f"Postgres server (default $DURABLE_BENCH_DSN or {DEFAULT_DSN})"
    )
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    parser.add_argument("--no-dbos", action="store_true", help="durable only")
    parser.add_argument("--profile", metavar="DIR", help="py-spy each durable measurement")
    parser.add_argument("--count-queries", action="store_true", help="count round trips")
    parser.add_argument(
        "--src", metavar="DIR", help="measure the durable package in DIR (another checkout's src)"
    )
    return parser.parse_args(argv)


class Runner:
    def __init__(self, args: argparse.Namespace, tmp: str) -> None:
        self.args = args
        self.tmp = tmp
        self.base = plain_dsn(args.dsn or os.environ.get("DURABLE_BENCH_DSN") or DEFAULT_DSN)
        self.mode = "quick" if args.quick else "full"

    async def config(self, store: str, side: str, wid: str, n: int) -> dict[str, Any]:
        tag = uuid.uuid4().hex[:8]
        config: dict[str, Any] = {"store": store, "n": n, "tmp": self.tmp, "quick": self.args.quick}
        config["base_dsn"] = self.base
        if store == "postgres":
            config["dsn"] = with_schema(self.base, f"bench_{wid.lower()}_{tag}")
            config["dbos_url"] = self.base
            config["dbos_schema"] = f"dbos_{wid.lower()}_{tag}"
        else:
            config["dsn"] = f"sqlite:///{Path(self.tmp) / f'{wid}-{tag}.db'}"
            config["dbos_url"] = f"sqlite:///{Path(self.tmp) / f'{wid}-{tag}-dbos.sqlite'}"
            config["dbos_schema"] = None
        return config

    async def drop(self, config: dict[str, Any]) -> None:
        if config["store"] != "postgres":
            return
        conn = await asyncpg.connect(self.base)
        try:
            schema = config["dsn"].rsplit("schema=", 1)[1]
            for name in (schema, config["dbos_schema"]):
                await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        finally:
            await conn.close()

    def child(self, wid: str, side: str, config: dict[str, Any]) -> dict[str, Any]:
        command = [sys.executable, str(HERE / "child.py"), wid.lower(), side, json.dumps(config)]
        env = child_env()
        if self.args.src:  # before/after comparisons: another checkout's code
            env["PYTHONPATH"] = os.pathsep.join(
                [str(Path(self.args.src).resolve()), env["PYTHONPATH"]]
            )
        if self.args.count_queries and side == "durable":
            env["BENCH_COUNT_QUERIES"] = "1"
        if self.args.profile and side == "durable":
            folder = Path(self.args.profile)
            folder.mkdir(parents=True, exist_ok=True)
            out = folder / f"{wid}-{config['store']}.txt"
            spy = Path(sys.executable).parent / "py-spy"
            command = [
                str(spy),
                "record",
                "--idle",
                "-r",
                "250",
                "-f",
                "raw",
                "-o",
                str(out),
                "--",
                *command,
            ]
        timeout = 900 if self.mode == "full" else 120
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
        for line in done.stdout.splitlines():
            if line.startswith("RESULT "):
                result: dict[str, Any] = json.loads(line[len("RESULT ") :])
                return result
        tail = (done.stderr or done.stdout).strip().splitlines()[-15:]
        raise RuntimeError(f"{wid} {side} on {config['store']} failed:\n" + "\n".join(tail))

    async def measure(self, wid: str, store: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
        module = importlib.import_module(f"workloads.{wid.lower()}")
        results: dict[str, dict[str, Any] | None] = {"durable": None, "dbos": None}
        sides = ["durable"]
        if hasattr(module, "dbos") and not self.args.no_dbos:
            sides.append("dbos")
        for side in sides:
            size = getattr(module, "PEER_SIZE", module.SIZE) if side == "dbos" else module.SIZE
            config = await self.config(store, side, wid, size[self.mode])
            started = time.monotonic()
            try:
                results[side] = await asyncio.to_thread(self.child, wid, side, config)
            except Exception as exc:  # one failed measurement does not end the run
                print(f"  {exc}", file=sys.stderr)
                results[side] = {"error": str(exc).splitlines()[0]}
            finally:
                await self.drop(config)
            took = time.monotonic() - started
            print(f"{wid} {store:8} {side:7} {took:5.1f} s  {results[side]}", file=sys.stderr)
        ours = results["durable"]
        assert ours is not None
        return ours, results["dbos"]

    async def floors(self, stores: list[str]) -> dict[str, float]:
        floors: dict[str, float] = {}
        seconds = 1.5 if self.args.quick else 3.0
        if "postgres" in stores:
            floors["postgres_1"] = await postgres_floor(self.base, 1, seconds)
            floors["postgres_16"] = await postgres_floor(self.base, 16, seconds)
        if "sqlite" in stores:
            floors["sqlite_full"] = sqlite_floor(Path(self.tmp), "FULL")
            floors["sqlite_normal"] = sqlite_floor(Path(self.tmp), "NORMAL", 20000)
        return floors


async def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    only = [w.strip().upper() for w in args.only.split(",")] if args.only else list(WORKLOADS)
    unknown = set(only) - set(WORKLOADS)
    if unknown:
        print(f"run.py: unknown workloads {sorted(unknown)}; choose from {WORKLOADS}")
        return 2
    stores = [args.store] if args.store else ["sqlite", "postgres"]
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="durable-bench-") as tmp:
        runner = Runner(args, tmp)
        floors = await runner.floors(stores)
        context: dict[str, Any] = {"floors": floors, "results": {}}
        rows: list[dict[str, Any]] = []
        for wid in only:
            module = importlib.import_module(f"workloads.{wid.lower()}")
            for store in (s for s in stores if s in module.STORES):
                ours, peer = await runner.measure(wid, store)
                context["results"][(wid, store)] = (ours, peer)
                if "error" in ours:
                    rows.append({"workload": wid, "store": store, "figure": "failed",
                                 "durable": ours["error"][:60], "dbos": "", "ratio": "",
                                 "target": "", "holds": False})  # fmt: skip
                    continue
                usable = peer if peer is not None and "error" not in peer else None
                rows.extend(module.rows(store, ours, usable, context))
    elapsed = time.monotonic() - began
    print_table(rows, floors, elapsed, "quick" if args.quick else "full")
    if args.json:
        results = [
            {"workload": w, "store": s, "durable": o, "dbos": p}
            for (w, s), (o, p) in context["results"].items()
        ]
        document = {"mode": runner.mode, "floors": floors, "rows": rows, "results": results}
        Path(args.json).write_text(json.dumps(document, indent=2))  # noqa: ASYNC240
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    raise SystemExit(asyncio.run(main()))
