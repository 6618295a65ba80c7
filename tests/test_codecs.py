"""Payload codecs (App(codec=)): Fernet encryption with key rotation, Compress, both stores."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import asyncpg
import pytest
from cryptography.fernet import Fernet as FernetKey

import codec_app
import durable
from durable.codecs import Chain, Compress, Fernet, decode_text, encode_text

pytestmark = pytest.mark.anyio

MARK = "PLAINTEXT-MARKER"
K1, K2 = codec_app.K1, FernetKey.generate_key()


class Declined(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@durable.activity(name="codec.lookup")
async def lookup(secret: str) -> dict[str, str]:
    return {"card": f"{secret}-card"}


@durable.activity(name="codec.charge", retry=durable.RetryPolicy(max_attempts=1))
async def charge(secret: str) -> None:
    raise Declined(f"{MARK}-code", f"{secret} declined")


@durable.activity(name="codec.flow-step")
async def flow_step(task: dict[str, Any]) -> dict[str, Any]:
    return {"out": f"{MARK}-flow-output", "seen": task["variables"]["input"]}


@durable.workflow(name="codec.child")
async def child(ctx: durable.Context, secret: str) -> str:
    return f"{secret}-child-result"


@durable.workflow(name="codec.order")
async def order(ctx: durable.Context, secret: str) -> dict[str, Any]:
    card = await lookup(secret)
    ctx.set_event("progress", {"stage": f"{MARK}-event"})
    try:
        await charge(secret)
        code = ""
    except Declined as e:
        code = e.code
    from_child = await ctx.child(child, secret, id=f"{ctx.info.run_id}-child")
    note = await ctx.wait_signal("note")
    return {"card": card, "code": code, "child": from_child, "note": note}


@pytest.fixture
async def sealed(dsn: str) -> AsyncIterator[durable.App]:
    async with durable.App(dsn, codec=[Compress(threshold=64), Fernet(K1)]) as app:
        yield app


async def _stored_text(dsn: str) -> str:
    """Every row of every table of the store, as text."""
    if dsn.startswith("sqlite"):
        con = sqlite3.connect(urlsplit(dsn).path[1:])
        try:
            return "\n".join(con.iterdump())
        finally:
            con.close()
    parts = urlsplit(dsn)
    schema = parse_qs(parts.query)["schema"][0]
    conn = await asyncpg.connect(parts._replace(query="").geturl())
    try:
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema
        )
        rows = []
        for table in tables:
            name = f'"{schema}"."{table["table_name"]}"'
            rows += [r[0] for r in await conn.fetch(f"SELECT t::text FROM {name} t")]
        return "\n".join(rows)
    finally:
        await conn.close()


async def _wait_child_ended(handle: durable.Handle[Any]) -> None:
    with anyio.fail_after(20):
        while not any(e.kind == "child" and e.event == "result" for e in await handle.history()):
            await anyio.sleep(0.05)


async def test_no_stored_payload_holds_the_plaintext_and_runs_survive_a_key_rotation(
    sealed: durable.App, dsn: str
) -> None:
    async with sealed.worker():
        handle = await sealed.start(order, f"{MARK}-arg", id="sealed-1")
        await _wait_child_ended(handle)
        assert await handle.get_event("progress") == {"stage": f"{MARK}-event"}
    # rotate: the new key encrypts from now on, the old one still decrypts
    async with (
        durable.App(dsn, codec=[Compress(threshold=64), Fernet([K2, K1])]) as rotated,
        rotated.worker(),
    ):
        again = rotated.handle("sealed-1")
        await again.signal("note", f"{MARK}-signal")
        result = await again.result(timeout=20)
        history = await again.history()
        assert (await again.describe()).result == result  # describe decodes what it reads
    assert result == {
        "card": {"card": f"{MARK}-arg-card"},
        "code": f"{MARK}-code",
        "child": f"{MARK}-arg-child-result",
        "note": f"{MARK}-signal",
    }
    assert any(e.event == "error" and e.payload["type"] == "Declined" for e in history)
    stored = await _stored_text(dsn)
    assert "sealed-1" in stored  # the scan reads the rows
    assert MARK not in stored
    # what the new key wrote cannot be read with the old key alone
    async with durable.App(dsn, codec=[Compress(threshold=64), Fernet(K1)]) as old:
        with pytest.raises(durable.SerializationError, match="cannot be decoded"):
            await old.handle("sealed-1").describe()


async def test_a_json_flow_sees_decoded_variables(sealed: durable.App, dsn: str) -> None:
    await sealed.definitions.upload(
        {
            "id": "CODEC::flow",
            "name": "Codec flow",
            "steps": [
                {"id": "a", "name": "A", "type": "SERVICE_TASK", "jobType": "codec.flow-step",
                 "nextStep": "route"},
                {"id": "route", "name": "Route", "type": "DECISION",
                 "conditionalNextSteps": {"seen == input": "done", "true": "bad"}},
                {"id": "bad", "name": "Bad", "type": "END"},
                {"id": "done", "name": "Done", "type": "END"},
            ],
        }
    )  # fmt: skip
    async with sealed.worker(poll_interval=0.2):
        handle = await sealed.start_flow("CODEC::flow", variables={"input": f"{MARK}-in"})
        result = await handle.result(timeout=20)
    assert result == {"input": f"{MARK}-in", "out": f"{MARK}-flow-output", "seen": f"{MARK}-in"}
    assert [s.step_id for s in await handle.steps()][-1] == "done"
    assert MARK not in await _stored_text(dsn)


async def test_readers_without_the_codec_show_encoded(sealed: durable.App, dsn: str) -> None:
    async with sealed.worker():
        handle = await sealed.start(child, f"{MARK}-x", id="sealed-plain")
        assert await handle.result(timeout=20) == f"{MARK}-x-child-result"
    async with durable.App(dsn) as plain:
        desc = await plain.handle("sealed-plain").describe()
    assert desc.result == "encoded"
    done = await anyio.to_thread.run_sync(_cli, "runs", "show", "sealed-plain", "--dsn", dsn)
    assert done.returncode == 0, done.stderr
    assert "encoded" in done.stdout and MARK not in done.stdout
    env = {"DURABLE_APP": "codec_app:app", "PYTHONPATH": str(Path(__file__).parent)}
    done = await anyio.to_thread.run_sync(
        lambda: _cli("runs", "show", "sealed-plain", "--dsn", dsn, "--json", **env)
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["run"]["result"] == f"{MARK}-x-child-result"


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "durable.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


def test_compress_only_above_its_threshold_and_chains_in_order() -> None:
    small, large = "x" * 10, "y" * 10_000
    squeeze = Compress(level=9, threshold=100)
    assert decode_text(squeeze, encode_text(squeeze, small)) == small
    packed = encode_text(squeeze, large)
    assert len(packed) < 200 and decode_text(squeeze, packed) == large
    assert squeeze.encode(small.encode())[:1] == b"\x00"  # stored as it is
    both = Chain(Compress(threshold=0), Fernet(K1))
    text = encode_text(both, large)
    assert len(text) < 500 and decode_text(both, text) == large
    assert decode_text(both, '{"plain":1}') == '{"plain":1}'  # unencoded text reads as is


def test_fernet_refuses_bad_keys_and_foreign_payloads() -> None:
    with pytest.raises(durable.ConfigurationError, match="key 0 is not a Fernet key"):
        Fernet("not a key")
    with pytest.raises(durable.ConfigurationError, match="at least one key"):
        Fernet([])
    with pytest.raises(durable.ConfigurationError, match=r"encode\(bytes\)"):
        durable.App("sqlite:///:memory:", codec=object())  # type: ignore[arg-type]
    text = encode_text(Fernet(K1), "secret")
    with pytest.raises(durable.SerializationError, match="not encrypted with any"):
        decode_text(Fernet(K2), text)
    assert decode_text(Fernet([K2, K1]), text) == "secret"


async def test_a_fork_of_an_encoded_run_stays_encoded(sealed: durable.App, dsn: str) -> None:
    async with sealed.worker():
        handle = await sealed.start(child, f"{MARK}-a", id="sealed-origin")
        await handle.result(timeout=20)
        forked = await handle.fork(args=[f"{MARK}-b"], id="sealed-fork")
        assert await forked.result(timeout=20) == f"{MARK}-b-child-result"
    assert MARK not in await _stored_text(dsn)
