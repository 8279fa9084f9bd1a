"""Fixtures for the nodes package: a standing clock, a LocalContext, a fresh registry."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from nodes import LocalContext, registry

MONDAY_9_WIB = datetime(2025, 1, 6, 2, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fresh_registry():
    """Each test finds the built-ins and plugins anew (some tests fake plugins)."""
    registry.reset()
    yield
    registry.reset()


@pytest.fixture
def ctx():
    return LocalContext(now=MONDAY_9_WIB)
