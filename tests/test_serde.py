"""Arguments and results round-trip through their type hints; bad values fail early."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import typing
import uuid
from decimal import Decimal

import pydantic
import pytest

import durable
from durable.serde import CallCodec

pytestmark = pytest.mark.anyio


class Item(pydantic.BaseModel):
    sku: str
    qty: int


@dataclasses.dataclass
class Address:
    city: str
    zip: str


@durable.activity
async def describe_item(item: Item, when: dt.datetime, ref: uuid.UUID) -> Item:
    assert isinstance(item, Item) and isinstance(when, dt.datetime)
    assert isinstance(ref, uuid.UUID)
    return Item(sku=item.sku.upper(), qty=item.qty * 2)


@durable.workflow(name="serde-types")
async def typed(
    ctx: durable.Context, item: Item, address: Address, when: dt.datetime, price: Decimal
) -> dict[str, object]:
    assert isinstance(item, Item) and isinstance(address, Address)
    assert isinstance(when, dt.datetime) and isinstance(price, Decimal)
    bigger = await describe_item(item, when, ctx.uuid4())
    assert isinstance(bigger, Item)
    return {"item": bigger, "city": address.city, "when": when, "price": price}


async def test_models_dataclasses_datetimes_round_trip(app):
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    async with app.worker():
        handle = await app.start(
            typed, Item(sku="ab", qty=2), Address("Oslo", "0150"), when, Decimal("9.99")
        )
        result = await handle.result(timeout=10)
    assert result["item"] == {"sku": "AB", "qty": 4}
    assert result["city"] == "Oslo" and result["price"] == "9.99"


@durable.workflow(name="serde-model-result")
async def model_result(ctx: durable.Context, sku: str) -> Item:
    return Item(sku=sku, qty=1)


async def test_result_is_converted_to_the_return_type(app):
    async with app.worker():
        handle = await app.start(model_result, "zz")
        assert await handle.result(timeout=10) == Item(sku="zz", qty=1)
        # a handle made from the id alone converts through the registered workflow too
        assert await app.handle(handle.run_id).result(timeout=10) == Item(sku="zz", qty=1)


async def test_unstorable_argument_is_refused_before_anything_runs(app):
    with pytest.raises(durable.SerializationError, match="argument 'item'"):
        await app.start(typed, object(), Address("a", "b"), dt.datetime.now(dt.UTC), Decimal(1))
    with pytest.raises(durable.SerializationError, match="argument 'qty'|argument 'item'"):
        await app.start(typed, {"sku": "a", "qty": "many"}, Address("a", "b"), "2026-01-01", 1)
    assert await app.list_runs() == []


@durable.activity
async def takes_anything(value: object) -> None:
    return None


@durable.workflow(name="serde-bad-activity-arg")
async def bad_activity_arg(ctx: durable.Context) -> str:
    try:
        await takes_anything(object())
    except durable.SerializationError as exc:
        return str(exc)
    return "no error"


async def test_unstorable_activity_argument_names_activity_and_argument(app):
    async with app.worker():
        message = await (await app.start(bad_activity_arg)).result(timeout=10)
    assert "takes_anything" in message and "argument 'value'" in message


@durable.workflow(name="serde-bad-result")
async def bad_result(ctx: durable.Context) -> object:
    return object()


async def test_unstorable_result_fails_the_run_with_a_clear_error(app):
    async with app.worker():
        handle = await app.start(bad_result)
        with pytest.raises(durable.WorkflowFailed, match="serde-bad-result.*result"):
            await handle.result(timeout=10)


def _plain_args(i: int, s: str, b: bool, a: typing.Any, f: float) -> typing.Any:
    return None


def test_plain_values_are_stored_as_pydantic_would_store_them():
    """Values passed past pydantic keep the exact stored text (and so the fingerprints
    that journals written before compare against)."""
    codec = CallCodec(_plain_args, "activity 'fn'", skip_first=False)
    cases = [
        (0, "", False, None, 0.5),
        (-5, "é", True, 7, 1.0),
        (10**20, "x\ud800", False, "text", -2.5),
        (3, "s", True, True, 3.0),
    ]
    for args in cases:
        reference: dict[str, typing.Any] = {}
        for (name, hint), value in zip(
            typing.get_type_hints(_plain_args).items(), args, strict=False
        ):
            adapter: typing.Any = pydantic.TypeAdapter(hint)
            reference[name] = adapter.dump_python(adapter.validate_python(value), mode="json")
        text = codec.encode_args(args, {})
        assert json.loads(text) == reference
        assert text == codec.encode_args((), dict(zip("isbaf", args, strict=True)))
        assert codec.decode_args(text) == (args, {})
    assert codec.encode_result(5) == "5" and codec.decode_result("5") == 5
    assert codec.encode_result(None) == "null" and codec.encode_result(True) == "true"
