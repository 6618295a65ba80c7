"""Tick arithmetic of cron schedules: seconds, time zones, clock changes, missed ticks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import durable
from durable._cron import CATCH_UP_LIMIT, CronSpec, cron_spec
from durable._start import run_id_for
from durable.store import ScheduleRecord
from durable.worker._schedule_loop import plan


def at(text: str) -> float:
    """Seconds since the epoch of an ISO-8601 time with an offset."""
    return datetime.fromisoformat(text).timestamp()


def iso(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ticks(spec: CronSpec, after: str, count: int) -> list[str]:
    found = []
    for tick in spec.ticks_after(at(after)):
        found.append(iso(tick))
        if len(found) == count:
            return found
    raise AssertionError("unreachable")


def record(cron: str, next_fire: float, missed: str = "skip", zone: str = "UTC") -> ScheduleRecord:
    return ScheduleRecord(
        "s", "wf", cron, zone, "{}", missed, False, next_fire, None, next_fire, next_fire
    )


def test_a_sixth_field_is_seconds():
    spec = cron_spec("s", "* * * * * */20", "UTC")
    assert ticks(spec, "2024-01-01T00:00:00+00:00", 4) == [
        "2024-01-01T00:00:20Z",
        "2024-01-01T00:00:40Z",
        "2024-01-01T00:01:00Z",
        "2024-01-01T00:01:20Z",
    ]
    every = cron_spec("s", "* * * * * *", "UTC")
    assert ticks(every, "2024-01-01T00:00:00.500+00:00", 2) == [
        "2024-01-01T00:00:01Z",
        "2024-01-01T00:00:02Z",
    ]


def test_ticks_are_read_in_the_schedules_time_zone():
    spec = cron_spec("s", "0 9 * * mon-fri", "America/New_York")
    # Friday 2024-01-05 and Monday 2024-01-08, 09:00 EST (UTC-5)
    assert ticks(spec, "2024-01-05T00:00:00+00:00", 2) == [
        "2024-01-05T14:00:00Z",
        "2024-01-08T14:00:00Z",
    ]
    daily = cron_spec("s", "@daily", "Asia/Kolkata")
    assert ticks(daily, "2024-01-01T00:00:00+00:00", 1) == ["2024-01-01T18:30:00Z"]


def test_clocks_forward_a_fixed_time_in_the_gap_runs_at_the_jump():
    # Europe/Berlin, 2024-03-31: 02:00 CET becomes 03:00 CEST (01:00Z).
    spec = cron_spec("s", "30 2 * * *", "Europe/Berlin")
    assert ticks(spec, "2024-03-30T12:00:00+00:00", 2) == [
        "2024-03-31T01:00:00Z",  # 03:00 CEST: once, as the clocks jump
        "2024-04-01T00:30:00Z",  # 02:30 CEST
    ]
    hourly = cron_spec("s", "0 * * * *", "Europe/Berlin")
    assert ticks(hourly, "2024-03-30T23:30:00+00:00", 3) == [
        "2024-03-31T00:00:00Z",  # 01:00 CET
        "2024-03-31T01:00:00Z",  # 03:00 CEST: 02:00 does not exist that day
        "2024-03-31T02:00:00Z",
    ]


def test_clocks_back_a_fixed_time_runs_once_and_wildcards_follow_real_time():
    # Europe/Berlin, 2024-10-27: 03:00 CEST becomes 02:00 CET (01:00Z); 02:xx happens twice.
    spec = cron_spec("s", "30 2 * * *", "Europe/Berlin")
    assert ticks(spec, "2024-10-26T12:00:00+00:00", 2) == [
        "2024-10-27T00:30:00Z",  # 02:30 CEST, the first pass only
        "2024-10-28T01:30:00Z",  # 02:30 CET the next day
    ]
    hourly = cron_spec("s", "0 * * * *", "Europe/Berlin")
    assert ticks(hourly, "2024-10-26T23:30:00+00:00", 3) == [
        "2024-10-27T00:00:00Z",  # 02:00 CEST
        "2024-10-27T01:00:00Z",  # 02:00 CET: an hour later in real time
        "2024-10-27T02:00:00Z",  # 03:00 CET
    ]


def test_latest_ticks_of_a_range():
    spec = cron_spec("s", "*/10 * * * *", "UTC")
    start, end = at("2024-01-01T00:00:00+00:00"), at("2024-01-01T01:05:00+00:00")
    assert [iso(t) for t in spec.latest(start, end, 1)] == ["2024-01-01T01:00:00Z"]
    assert [iso(t) for t in spec.latest(start, end, 3)] == [
        "2024-01-01T00:40:00Z",
        "2024-01-01T00:50:00Z",
        "2024-01-01T01:00:00Z",
    ]
    assert len(spec.latest(start, end, 100)) == 7  # the start itself is a tick
    assert spec.latest(end, start, 5) == []
    assert [iso(t) for t in spec.latest(end - 300, end - 300, 5)] == ["2024-01-01T01:00:00Z"]


def test_a_long_outage_is_cheap_to_plan():
    # A per-second schedule down for a year: planning walks ~100 ticks, not 31 million.
    now = at("2025-01-01T00:00:00.250+00:00")
    firing = plan(record("* * * * * *", now - 365 * 86400, "catch_up"), now)
    assert len(firing.run_ids) == CATCH_UP_LIMIT
    assert firing.run_ids[-1] == "s@2025-01-01T00:00:00Z"
    assert firing.run_ids[0] == "s@2024-12-31T23:58:21Z"
    assert firing.last_fire_at == at("2025-01-01T00:00:00+00:00")
    assert iso(firing.next_fire_at) == "2025-01-01T00:00:01Z"


def test_plan_skip_and_catch_up():
    now = at("2024-01-01T12:34:56+00:00")
    missed_since = at("2024-01-01T09:00:00+00:00")
    skip = plan(record("0 * * * *", missed_since), now)
    assert skip.run_ids == ("s@2024-01-01T12:00:00Z",)
    catch_up = plan(record("0 * * * *", missed_since, "catch_up"), now)
    assert catch_up.run_ids == tuple(f"s@2024-01-01T{h:02d}:00:00Z" for h in (9, 10, 11, 12))
    for firing in (skip, catch_up):
        assert iso(firing.next_fire_at) == "2024-01-01T13:00:00Z"
    on_time = plan(record("0 * * * *", at("2024-01-01T12:00:00+00:00")), now)
    assert on_time.run_ids == ("s@2024-01-01T12:00:00Z",)


def test_plan_never_raises_for_a_schedule_it_cannot_read():
    firing = plan(record("not a cron", 0.0), 1000.0)
    assert firing.run_ids == () and firing.last_fire_at is None
    assert firing.next_fire_at > 1000.0


def test_run_ids_name_the_schedule_and_the_tick_in_utc():
    tick = datetime(2024, 5, 1, 2, 30, tzinfo=UTC) + timedelta(seconds=7)
    assert run_id_for("nightly", tick.timestamp()) == "nightly@2024-05-01T02:30:07Z"


@pytest.mark.parametrize(
    ("cron", "zone", "field"),
    [
        ("*/0 * * * *", "UTC", "cron"),
        ("* * * * * * * *", "UTC", "cron"),
        ("H * * * *", "UTC", "cron"),
        ("* * * * *", "Not/AZone", "timezone"),
        ("* * * * *", None, "timezone"),
    ],
)
def test_invalid_specs(cron, zone, field):
    with pytest.raises(durable.InvalidScheduleError) as caught:
        cron_spec("nightly", cron, zone)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"schedule 'nightly': {field} ")


def brute_force(spec: CronSpec, start: float, end: float) -> list[float]:
    found = []
    for tick in spec.ticks_after(start - 1):
        if tick > end:
            return found
        found.append(tick)
    raise AssertionError("unreachable")


@settings(max_examples=500, deadline=None)
@given(
    cron=st.sampled_from(["30 2 * * *", "0 * * * *", "*/20 * * * *", "15 1-3 * * *", "@daily"]),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]),
    # around the clock changes of 2024 in Europe, the US and on Lord Howe Island
    around=st.sampled_from(
        [
            "2024-03-31T01:00:00+00:00",
            "2024-10-27T01:00:00+00:00",
            "2024-03-10T07:00:00+00:00",
            "2024-11-03T06:00:00+00:00",
            "2024-04-06T15:00:00+00:00",
            "2024-10-05T15:30:00+00:00",
        ]
    ),
    start_offset=st.integers(-3 * 86400, 86400),
    length=st.integers(0, 3 * 86400),
    count=st.sampled_from([1, 2, 5, 100]),
)
def test_latest_matches_walking_forward_across_clock_changes(
    cron, zone, around, start_offset, length, count
):
    spec = cron_spec("s", cron, zone)
    start = spec.next_after(at(around) + start_offset)  # a schedule's next_fire_at is a tick
    end = start + length + 0.25
    assert spec.latest(start, end, count) == brute_force(spec, start, end)[-count:]
