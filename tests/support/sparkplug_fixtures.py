"""Fixtures the Sparkplug tests share: a fresh group id per test and our host client on it.

Import them into a test module (``from tests.support.sparkplug_fixtures import group, host``).
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from tests.support.sparkplug_host import SparkplugHost


@pytest.fixture
def group() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def host(group):
    h = await SparkplugHost(group).start()
    yield h
    await h.stop()


async def until(predicate, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)
