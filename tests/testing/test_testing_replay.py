"""durable.testing.replay: new code against a history recorded on a real store."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import durable
from durable.testing import History, replay

pytestmark = pytest.mark.anyio

ran: Counter[str] = Counter()
NAME = "testing.replay.order"


@durable.activity(name="testing.replay.reserve")
async def reserve(order_id: str) -> str:
    ran["reserve"] += 1
    return f"r-{order_id}"


@durable.activity(name="testing.replay.charge")
async def charge(order_id: str) -> str:
    ran["charge"] += 1
    return f"c-{order_id}"


@durable.activity(name="testing.replay.ship")
async def ship(order_id: str) -> str:
    ran["ship"] += 1
    return f"s-{order_id}"


@durable.workflow(name=NAME)
async def order(ctx: durable.Context, order_id: str, wait: bool = False) -> str:
    ref = await reserve(order_id)
    receipt = await charge(order_id)
    if wait:
        await ctx.wait_signal("shipped")
    return f"{ref}/{receipt}"


def variant(fn: Any) -> durable.Workflow[..., Any]:
    """Changed code under the same workflow name (not registered)."""
    return durable.Workflow(fn, NAME, None)


async def _reordered(ctx: durable.Context, order_id: str, wait: bool = False) -> str:
    receipt = await charge(order_id)
    ref = await reserve(order_id)
    return f"{ref}/{receipt}"


async def _other_argument(ctx: durable.Context, order_id: str, wait: bool = False) -> str:
    ref = await reserve(order_id + "-x")
    return ref + await charge(order_id)


async def _shorter(ctx: durable.Context, order_id: str, wait: bool = False) -> str:
    return await reserve(order_id)


async def _longer(ctx: durable.Context, order_id: str, wait: bool = False) -> str:
    done = await _same_calls(ctx, order_id)
    return done + await ship(order_id)


async def _same_calls(ctx: durable.Context, order_id: str) -> str:
    return await reserve(order_id) + await charge(order_id)


async def _reads_the_clock(ctx: durable.Context, order_id: str, wait: bool = False) -> str:
    stamp = time.time()
    return f"{await reserve(order_id)}{await charge(order_id)}{stamp > 0}"


async def _recorded(app: durable.App, run_id: str, wait: bool = False) -> History:
    async with app.worker():
        handle = await app.start(order, "o-1", wait, id=run_id)
        if wait:
            while (await handle.describe()).status is not durable.Status.WAITING:
                await asyncio.sleep(0.01)
        else:
            await handle.result(timeout=15)
    ran.clear()
    return await History.fetch(app, run_id)


async def test_unchanged_code_replays_and_runs_nothing(app: durable.App):
    history = await _recorded(app, "rec-1")
    result = replay(order, history)
    assert (result.run_id, result.records, result.outcome) == ("rec-1", 2, "returned")
    assert ran == Counter()  # no activity ran


async def test_reordered_calls_are_flagged_at_the_first_divergence(app: durable.App):
    history = await _recorded(app, "rec-2")
    with pytest.raises(durable.NonDeterminismError) as caught:
        replay(variant(_reordered), history)
    error = caught.value
    assert error.seq == 1
    assert error.recorded.startswith("activity 'testing.replay.reserve' (arguments ")
    assert error.requested.startswith("activity 'testing.replay.charge' (arguments ")
    assert "would park the run" in str(error) and "rec-2" in str(error)
    assert ran == Counter()


async def test_a_changed_argument_is_flagged(app: durable.App):
    history = await _recorded(app, "rec-3")
    with pytest.raises(durable.NonDeterminismError) as caught:
        replay(variant(_other_argument), history)
    assert caught.value.seq == 1
    assert caught.value.recorded != caught.value.requested
    assert "testing.replay.reserve" in caught.value.requested


async def test_records_the_code_never_reaches_are_flagged(app: durable.App):
    history = await _recorded(app, "rec-4")
    with pytest.raises(durable.NonDeterminismError) as caught:
        replay(variant(_shorter), history)
    assert caught.value.seq == 2
    assert caught.value.requested == "nothing more (the workflow returned)"


async def test_code_that_goes_on_where_the_run_ended_is_flagged(app: durable.App):
    history = await _recorded(app, "rec-5")
    with pytest.raises(durable.NonDeterminismError) as caught:
        replay(variant(_longer), history)
    assert caught.value.seq == 3
    assert caught.value.recorded == "nothing more (the run ended COMPLETED)"
    assert caught.value.requested.startswith("activity 'testing.replay.ship'")


async def test_a_run_in_flight_replays_up_to_where_it_waits(app: durable.App):
    history = await _recorded(app, "rec-6", wait=True)
    assert history.status is durable.Status.WAITING
    assert replay(order, history).outcome == "waiting"
    with pytest.raises(durable.NonDeterminismError):
        replay(variant(_reordered), history)


async def test_history_events_file_and_run_id_forms(app: durable.App, tmp_path: Path):
    history = await _recorded(app, "rec-7")
    events = await app.handle("rec-7").history()
    assert replay(order, events, args=["o-1"]).outcome == "returned"
    with pytest.raises(durable.NonDeterminismError):
        replay(order, events, args=["o-2"])  # other arguments, other fingerprints
    history.save(tmp_path / "rec-7.json")
    assert History.load(tmp_path / "rec-7.json") == history
    assert replay(order, str(tmp_path / "rec-7.json")).outcome == "returned"
    with pytest.raises(durable.NonDeterminismError):
        replay(variant(_reordered), tmp_path / "rec-7.json")


async def test_replay_reports_determinism_problems_of_the_code(app: durable.App):
    history = await _recorded(app, "rec-8")
    with pytest.warns(durable.DeterminismWarning, match=r"time\.time\(\).*ctx\.now\(\)"):
        assert replay(variant(_reads_the_clock), history).outcome == "returned"


async def test_what_cannot_be_replayed_is_refused_clearly(app: durable.App, tmp_path: Path):
    history = await _recorded(app, "rec-9")
    other = durable.Workflow(_reordered, "testing.replay.other", None)
    with pytest.raises(durable.DurableError, match="not of 'testing.replay.other'"):
        replay(other, history)
    with pytest.raises(durable.DurableError, match="JSON flow"):
        replay(order, dataclasses.replace(history, flow_version=1))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(durable.DurableError, match="not a run history export"):
        History.load(bad)
    bad.write_text("{not json")
    with pytest.raises(durable.DurableError, match="cannot read the history file"):
        History.load(bad)
    with pytest.raises(durable.RunNotFoundError):
        await History.fetch(app, "no-such-run")
