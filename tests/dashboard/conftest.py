"""Browser fixtures: the system Chromium driven by Playwright, against a real server on
SQLite and on Postgres. Skipped, saying why, only when no Chromium is installed."""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

from dashboard_helpers import dashboard_server, drop_schema, in_thread

CHROMIUM = os.environ.get("DURABLE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def _chromium() -> str:
    if not Path(CHROMIUM).exists():
        pytest.skip(
            f"no Chromium at {CHROMIUM}: install it (apt-get install -y chromium) or set "
            "DURABLE_CHROMIUM; the browser tests never download one"
        )
    return CHROMIUM


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Per module: Playwright's sync API holds an event loop while it runs, which the
    async tests of other folders must not find still running."""
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=executable)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    yield opened
    context.close()
    assert not errors, f"script errors on the page: {errors}"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def store_dsn(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One store per module and backend, shared by the servers the module starts."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('dash') / 'durable.db'}"
        return
    base = request.getfixturevalue("postgres_dsn")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield f"{base}{'&' if '?' in base else '?'}schema={schema}"
    in_thread(lambda: drop_schema(base, schema))


@pytest.fixture(scope="module")
def server(store_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A plain ``durable serve`` (no token, read-write) with a worker."""
    with dashboard_server(store_dsn, tmp_path_factory.mktemp("serve")) as base:
        yield base
