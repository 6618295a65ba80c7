"""Summarize a py-spy ``--format raw`` profile (``run.py --profile DIR`` writes them).

    python benchmarks/profile_summary.py prof/W1-postgres.txt

Prints where the samples of the measured process's main thread (its event loop) went,
by the package of the innermost
frame (self time: waiting in epoll, socket syscalls, asyncpg, asyncio, durable's
runtime/worker/store, serde, ...), and the inclusive share of durable's main functions.
Import-time samples (module loading before the measurement) are left out.
"""

from __future__ import annotations

import re
import sys
from collections import Counter

# innermost frame -> category; the first pattern that matches the file wins
SELF = (
    ("waiting in epoll (round trips, idle)", r"selectors\.py"),
    ("socket send/recv syscalls", r"asyncio/selector_events\.py"),
    ("asyncpg driver", r"asyncpg/"),
    ("sqlite3 + threads", r"sqlite|threading\.py|concurrent/|anyio/"),
    ("serde: json / pydantic / hashing", r"json/|pydantic|durable/serde\.py|hashlib"),
    ("asyncio machinery (tasks, futures, timeouts)", r"asyncio/|contextlib|_weakrefset|abc>"),
    ("durable runtime (executor, dispatch, scheduler)", r"durable/runtime/"),
    ("durable worker", r"durable/worker/"),
    ("durable store (Python side)", r"durable/store/"),
    ("durable flow interpreter", r"durable/flow/"),
    ("durable client (app, handle)", r"durable/(app|handle|registry)\.py"),
    ("benchmark driver", r"workloads/|bench_app"),
)
INCLUSIVE = (
    ("Handle.result (client waiting)", "Handle.result"),
    ("App.start / create_run (client)", "App.start"),
    ("Worker claim loop", "Worker._claim_loop"),
    ("RunExecutor.execute (whole run)", "RunExecutor.execute"),
    ("  executor commits (Writer.commit)", "Writer.commit"),
    ("  store.commit", "Store.commit"),
    ("  activity attempts (_run_attempt)", "Dispatch._run_attempt"),
    ("  codec (CallCodec.*)", "CallCodec."),
    ("  stepping the workflow (Scheduler)", "Scheduler.run_until_blocked"),
    ("flow interpreter (FlowRun.*)", "FlowRun."),
)


def _file(frame: str) -> str:
    match = re.search(r"\(([^:()]*)(?::\d+)?\)\s*$", frame)
    return match.group(1) if match else frame


def summarize(path: str, top: int = 12) -> str:
    selfs: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = skipped = 0
    for line in open(path):  # noqa: SIM115
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        if any("_find_and_load" in f or "_call_with_frames_removed" in f for f in frames):
            skipped += n
            continue
        if not frames[0].startswith("<module>"):  # another thread (SQLite's, anyio's)
            busy = not any(re.search(r"Condition\.wait|_worker \(concurrent", f) for f in frames)
            threads["busy" if busy else "idle"] += n
            continue
        total += n
        leaves[frames[-1]] += n
        for frame in reversed(frames):
            file = _file(frame)
            label = next((name for name, pat in SELF if re.search(pat, file)), None)
            if label is not None:
                selfs[label] += n
                break
        else:
            selfs["other"] += n
        joined = ";".join(frames)
        for name, needle in INCLUSIVE:
            if needle in joined.replace("PostgresStore.commit", "Store.commit").replace(
                "SqliteStore.commit", "Store.commit"
            ):
                inclusive[name] += n
    lines = [
        f"{path}: {total} samples of the main thread ({skipped} at import left out)",
        f"other threads: {threads['busy']} samples busy, {threads['idle']} idle",
        "main thread, self time by package:",
    ]
    for name, n in selfs.most_common():
        lines.append(f"  {n / total:6.1%}  {name}")
    lines.append("inclusive:")
    for name, _ in INCLUSIVE:
        if inclusive[name]:
            lines.append(f"  {inclusive[name] / total:6.1%}  {name}")
    lines.append(f"top {top} leaf frames:")
    for frame, n in leaves.most_common(top):
        lines.append(f"  {n / total:6.1%}  {frame}")
    return "\n".join(lines)


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(summarize(arg))
        print()
