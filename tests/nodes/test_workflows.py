"""Workflow behaviour, one JSON fixture per case (see harness.py for the format)."""

from __future__ import annotations

import pytest

from tests.nodes.harness import FIXTURES, fixture_ids, run_fixture


@pytest.mark.parametrize("name", fixture_ids(FIXTURES))
def test_fixture(name):
    run_fixture(name)
