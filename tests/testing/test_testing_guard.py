"""Determinism guard rails: what breaks replay in workflow code is reported with its fix."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import secrets
import socket
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import durable
from durable.testing import TestEnv, strict_determinism

pytestmark = pytest.mark.anyio


@pytest.fixture
async def env() -> AsyncIterator[TestEnv]:
    async with TestEnv() as env:
        yield env


def _refused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _connect() -> None:
    with socket.socket() as sock, pytest.raises(OSError):
        sock.connect(("127.0.0.1", _refused_port()))


FORBIDDEN: dict[str, tuple[Callable[[], Any], str]] = {
    "time.time": (time.time, r"called time\.time\(\).*ctx\.now\(\)"),
    "time.time_ns": (time.time_ns, r"called time\.time_ns\(\).*ctx\.now\(\)"),
    "datetime.now": (dt.datetime.now, r"called datetime\.now\(\).*ctx\.now\(\)"),
    "datetime.utcnow": (dt.datetime.utcnow, r"datetime\.utcnow\(\).*ctx\.now\(\)"),
    "date.today": (dt.date.today, r"called date\.today\(\).*ctx\.now\(\)"),
    "random.random": (random.random, r"called random\.random\(\).*ctx\.random\(\)"),
    "random.randint": (lambda: random.randint(1, 6), r"random\.randint\(\).*ctx\.random\(\)"),
    "random.choice": (lambda: random.choice("abc"), r"random\.choice\(\).*ctx\.random\(\)"),
    "uuid.uuid4": (uuid.uuid4, r"called uuid\.uuid4\(\).*ctx\.uuid4\(\)"),
    "os.urandom": (lambda: __import__("os").urandom(4), r"os\.urandom\(\).*ctx\.uuid4\(\)"),
    "secrets": (lambda: secrets.token_hex(4), r"secrets\.token_hex\(\).*ctx\.random\(\)"),
    "time.sleep": (lambda: time.sleep(0.001), r"called time\.sleep\(\).*ctx\.sleep\(\)"),
    "network": (_connect, r"network I/O \(socket\.connect.*into an activity"),
    "name lookup": (lambda: socket.getaddrinfo("localhost", 80), r"getaddrinfo.*activity"),
}

calls: dict[str, Callable[[], Any]] = {}


@durable.workflow(name="testing.guard.forbidden")
async def forbidden(ctx: durable.Context, what: str) -> str:
    calls[what]()
    return "done"


@pytest.mark.parametrize("what", sorted(FORBIDDEN))
async def test_each_forbidden_call_is_reported_with_its_replacement(env: TestEnv, what: str):
    call, message = FORBIDDEN[what]
    calls[what] = call
    with pytest.warns(durable.DeterminismWarning, match=message) as caught:
        assert await env.run(forbidden, what) == "done"
    assert all(w.filename == __file__ for w in caught if w.category is durable.DeterminismWarning)
    assert "testing.guard.forbidden" in str(caught[0].message)


@durable.workflow(name="testing.guard.asyncio-sleep")
async def asyncio_sleeper(ctx: durable.Context) -> str:
    await asyncio.sleep(1)
    return "slept"


async def test_asyncio_sleep_is_reported_and_fails_the_run(env: TestEnv):
    warned = pytest.warns(durable.DeterminismWarning, match=r"asyncio\.sleep\(\).*ctx\.sleep")
    with warned, pytest.raises(durable.WorkflowFailed, match=r"ctx\.sleep"):
        await env.run(asyncio_sleeper)


@durable.activity(name="testing.guard.free")
def free_activity() -> float:
    _connect()
    return time.time() + random.random() + uuid.uuid4().int + dt.datetime.now().timestamp()


@durable.workflow(name="testing.guard.clean")
async def clean(ctx: durable.Context) -> str:
    seeded = random.Random(7)  # a generator of the workflow's own is deterministic
    parts = [ctx.now().isoformat(), str(ctx.random()), str(ctx.uuid4()), str(seeded.random())]
    await ctx.sleep(60)
    await free_activity()
    return " ".join(parts)


async def test_replacements_activities_and_durable_itself_are_not_reported(env: TestEnv):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert await env.run(clean)
    assert [w for w in caught if issubclass(w.category, durable.DeterminismWarning)] == []


async def test_as_an_error_the_warning_fails_the_run(env: TestEnv):
    calls["error"] = time.time
    with warnings.catch_warnings():
        warnings.simplefilter("error", durable.DeterminismWarning)
        with pytest.raises(durable.WorkflowFailed, match=r"DeterminismWarning.*ctx\.now\(\)"):
            await env.run(forbidden, "error")


async def test_outside_a_test_env_only_network_io_is_reported(tmp_path: Path):
    calls["net"], calls["clock"] = _connect, time.time
    async with durable.App(f"sqlite:///{tmp_path / 'plain.db'}") as app, app.worker():
        with pytest.warns(durable.DeterminismWarning, match="network I/O"):
            await (await app.start(forbidden, "net")).result(timeout=10)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            await (await app.start(forbidden, "clock")).result(timeout=10)
        assert [w for w in caught if issubclass(w.category, durable.DeterminismWarning)] == []
        with strict_determinism(), pytest.warns(durable.DeterminismWarning, match="ctx.now"):
            await (await app.start(forbidden, "clock")).result(timeout=10)
