"""Cron schedules through the client API: create, update, pause, delete, and what fires."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import anyio
import pytest

import durable

pytestmark = pytest.mark.anyio


@durable.workflow(name="sched-echo")
async def echo(ctx: durable.Context, label: str, times: int = 1) -> str:
    return label * times


@durable.workflow(name="sched-queued", queue="sched-q")
async def queued(ctx: durable.Context, label: str) -> str:
    return label


def midnights(since: datetime, until: datetime) -> list[str]:
    """The ids of a daily schedule ``s``'s runs for the midnights (UTC) in [since, until]."""
    day = since.replace(hour=0, minute=0, second=0, microsecond=0)
    found = []
    while day <= until:
        if day >= since:
            found.append(f"s@{day:%Y-%m-%dT%H:%M:%SZ}")
        day += timedelta(days=1)
    return found


async def runs_of(app: durable.App, prefix: str) -> list[durable.RunDescription]:
    runs = await app.list_runs(workflow="sched-echo", limit=10_000)
    return sorted((r for r in runs if r.run_id.startswith(prefix)), key=lambda r: r.run_id)


async def wait_runs(app: durable.App, prefix: str, count: int, timeout: float = 30.0) -> None:
    """Wait until ``count`` runs of the schedule have completed."""
    with anyio.fail_after(timeout):
        while True:
            done = [r for r in await runs_of(app, prefix) if r.status is durable.Status.COMPLETED]
            if len(done) >= count:
                return
            await anyio.sleep(0.05)


async def test_create_get_list_pause_resume_delete(app):
    before = datetime.now(UTC)
    info = await app.schedule(
        echo, cron="*/5 * * * *", id="b-every-5", args=("x",), kwargs={"times": 2}
    )
    assert info == await app.schedules.get("b-every-5")
    assert (info.id, info.workflow, info.cron, info.timezone) == (
        "b-every-5",
        "sched-echo",
        "*/5 * * * *",
        "UTC",
    )
    assert info.args == {"label": "x", "times": 2}
    assert (info.paused, info.missed, info.last_fire_at) == (False, "skip", None)
    assert before < info.next_fire_at <= before + timedelta(minutes=5)
    assert info.next_fire_at.minute % 5 == 0 and info.next_fire_at.second == 0
    assert before - timedelta(seconds=5) < info.created_at <= datetime.now(UTC)

    await app.schedule("sched-echo", cron="0 7 * * mon-fri", id="a-weekdays", args=["y"])
    assert [s.id for s in await app.schedules.list()] == ["a-weekdays", "b-every-5"]

    paused = await app.schedules.pause("b-every-5")
    assert paused.paused and (await app.schedules.get("b-every-5")).paused
    assert await app.schedules.pause("b-every-5") == paused  # pausing twice changes nothing
    resumed = await app.schedules.resume("b-every-5")
    assert not resumed.paused
    assert resumed.next_fire_at > datetime.now(UTC) - timedelta(seconds=1)

    await app.schedules.delete("b-every-5")
    assert [s.id for s in await app.schedules.list()] == ["a-weekdays"]
    for call in (
        app.schedules.get,
        app.schedules.pause,
        app.schedules.resume,
        app.schedules.delete,
    ):
        with pytest.raises(durable.ScheduleNotFoundError, match="b-every-5"):
            await call("b-every-5")


async def test_creating_again_updates_the_schedule(app):
    past = datetime.now(UTC) - timedelta(days=3)
    first = await app.schedule(echo, cron="0 0 * * *", id="s", args=("a",), start_at=past)
    assert first.next_fire_at < datetime.now(UTC)  # ticks since start_at count as missed
    await app.schedules.pause("s")

    # The same cron again (an app re-declaring its schedules at start-up): the next tick
    # stays where it was, so ticks missed meanwhile are still handled by the policy.
    again = await app.schedule(echo, cron="0  0 * * *", id="s", args=("b",), missed="catch_up")
    assert again.next_fire_at == first.next_fire_at
    assert (again.args, again.missed, again.cron) == ({"label": "b"}, "catch_up", "0 0 * * *")
    assert again.paused  # an update does not resume a paused schedule
    assert again.created_at == first.created_at

    # A new cron or time zone moves the next tick to the new expression's next one.
    moved = await app.schedule(echo, cron="30 6 * * *", id="s", args=("c",), timezone="Asia/Tokyo")
    assert moved.timezone == "Asia/Tokyo" and moved.cron == "30 6 * * *"
    assert moved.next_fire_at > datetime.now(UTC)
    assert moved.next_fire_at.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%H:%M") == "06:30"
    assert [s.id for s in await app.schedules.list()] == ["s"]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "* * * *"}, "cron"),
        ({"cron": ""}, "cron"),
        ({"cron": "every minute"}, "cron"),
        ({"cron": "0 0 1 1 * 0 2030"}, "cron"),  # croniter's 7th (year) field is not offered
        ({"cron": "0 0 31 2 *"}, "cron"),  # February 31st never comes
        ({"cron": 5}, "cron"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"timezone": "../etc/passwd"}, "timezone"),
        ({"timezone": ""}, "timezone"),
        ({"missed": "run_all"}, "missed"),
        ({"id": ""}, "id"),
        ({"args": "abc"}, "args"),
        ({"kwargs": ["times", 2]}, "kwargs"),
        ({"start_at": "yesterday"}, "start_at"),
        ({"queue": ""}, "queue"),
        ({"priority": "high"}, "priority"),
    ],
)
async def test_invalid_options_name_the_schedule_and_field(app, options, field):
    call = {"cron": "* * * * *", "id": "bad-one", "args": ("x",), **options}
    with pytest.raises(durable.InvalidScheduleError) as caught:
        await app.schedule(echo, **call)
    assert isinstance(caught.value, ValueError)
    assert caught.value.field == field
    assert f"schedule {call['id']!r}: {field} " in str(caught.value)
    assert await app.schedules.list() == []


async def test_unknown_workflow_and_bad_arguments_are_refused(app):
    with pytest.raises(durable.NotRegisteredError, match="no-such-workflow"):
        await app.schedule("no-such-workflow", cron="* * * * *", id="x")
    with pytest.raises(durable.SerializationError, match="times"):
        await app.schedule(echo, cron="* * * * *", id="x", args=("a",), kwargs={"times": "z"})
    assert await app.schedules.list() == []


async def test_ticks_start_runs_of_the_workflow_with_its_arguments(app):
    async with app.worker():
        await app.schedule(echo, cron="* * * * * *", id="live", args=("ab",), kwargs={"times": 2})
        await wait_runs(app, "live@", 2)
    runs = await runs_of(app, "live@")
    for run in runs:
        assert run.result == "abab"
        tick = datetime.strptime(run.run_id, "live@%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert tick.microsecond == 0
    info = await app.schedules.get("live")
    assert info.last_fire_at is not None
    assert info.last_fire_at >= max(
        datetime.strptime(r.run_id, "live@%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) for r in runs
    )
    assert info.next_fire_at > info.last_fire_at


async def test_a_paused_schedule_does_not_fire_and_resuming_does_not_back_fill(app):
    await app.schedule(echo, cron="* * * * * *", id="held", args=("h",), missed="catch_up")
    await app.schedules.pause("held")
    async with app.worker():
        await app.schedule(echo, cron="* * * * * *", id="other", args=("o",))
        await wait_runs(app, "other@", 3)  # the worker has been firing for 2 s and more
        assert await runs_of(app, "held@") == []

        resumed_at = time.time()
        await app.schedules.resume("held")
        await wait_runs(app, "held@", 1)
    for run in await runs_of(app, "held@"):  # no run for a tick from the paused time
        tick = datetime.strptime(run.run_id, "held@%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert tick.timestamp() > resumed_at - 1


async def test_missed_ticks_skip_starts_only_the_latest(app):
    start = datetime.now(UTC) - timedelta(days=10, hours=1)
    info = await app.schedule(echo, cron="0 0 * * *", id="s", args=("d",), start_at=start)
    assert info.next_fire_at < datetime.now(UTC) - timedelta(days=9)
    async with app.worker():
        await wait_runs(app, "s@", 1)
        await anyio.sleep(0.5)  # nothing else follows
    expected = midnights(start, datetime.now(UTC))[-1:]
    assert [r.run_id for r in await runs_of(app, "s@")] == expected
    info = await app.schedules.get("s")
    assert info.last_fire_at is not None
    assert f"s@{info.last_fire_at:%Y-%m-%dT%H:%M:%SZ}" == expected[0]
    assert info.next_fire_at > datetime.now(UTC)


async def test_missed_ticks_catch_up_starts_one_run_per_tick(app):
    start = datetime.now(UTC) - timedelta(days=5, hours=1)
    await app.schedule(
        echo, cron="0 0 * * *", id="s", args=("d",), missed="catch_up", start_at=start
    )
    expected = midnights(start, datetime.now(UTC))
    assert len(expected) in (5, 6)
    async with app.worker():
        await wait_runs(app, "s@", len(expected))
        await anyio.sleep(0.5)
    runs = await runs_of(app, "s@")
    assert [r.run_id for r in runs] == expected
    assert {r.result for r in runs} == {"d"}
    assert (await app.schedules.get("s")).next_fire_at > datetime.now(UTC)


async def test_catch_up_starts_at_most_the_latest_hundred_ticks(app):
    start = datetime.now(UTC) - timedelta(days=150)
    await app.schedule(
        echo, cron="0 0 * * *", id="s", args=("d",), missed="catch_up", start_at=start
    )
    expected = midnights(start, datetime.now(UTC))[-100:]
    async with app.worker():
        await wait_runs(app, "s@", 100)
        await anyio.sleep(0.5)
    assert [r.run_id for r in await runs_of(app, "s@")] == expected


async def test_a_deleted_schedule_stops_firing(app):
    async with app.worker():
        await app.schedule(echo, cron="* * * * * *", id="gone", args=("g",))
        await wait_runs(app, "gone@", 1)
        await app.schedules.delete("gone")
        count = len(await runs_of(app, "gone@"))
        await anyio.sleep(1.5)
        assert len(await runs_of(app, "gone@")) == count


async def test_runs_go_to_the_workflows_queue_unless_the_schedule_names_one(app):
    own = await app.schedule(queued, cron="* * * * * *", id="own", args=("a",))
    assert (own.queue, own.priority) == ("sched-q", 0)
    named = await app.schedule(
        queued, cron="* * * * * *", id="named", args=("b",), queue="other-q", priority=7
    )
    assert (named.queue, named.priority) == ("other-q", 7)
    async with app.worker():
        with anyio.fail_after(30):
            while True:
                runs = await app.list_runs(workflow="sched-queued", limit=1000)
                if {r.run_id.split("@")[0] for r in runs} == {"own", "named"}:
                    break
                await anyio.sleep(0.05)
    for run in runs:
        record = await app.store.get_run(run.run_id)
        assert record is not None
        expected = ("sched-q", 0) if run.run_id.startswith("own@") else ("other-q", 7)
        assert (record.queue, record.priority) == expected
