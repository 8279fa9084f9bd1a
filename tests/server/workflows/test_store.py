"""The workflows folder: a reload that meets a concurrent SQLite write reads again."""

from __future__ import annotations

import shutil

import pytest
import sqlalchemy as sa

from server.workflows import store
from tests.server.workflows.conftest import WORKFLOWS


def test_a_reload_that_meets_a_locked_database_reads_again(app, tmp_path, monkeypatch):
    shutil.copy(WORKFLOWS / "survey.json", tmp_path / "survey.json")
    real, calls = store._reload, []

    def locked_once(directory):
        calls.append(directory)
        if len(calls) == 1:
            raise sa.exc.OperationalError("INSERT", {}, Exception("database is locked"))
        return real(directory)

    monkeypatch.setattr(store, "_reload", locked_once)
    report = store.reload(tmp_path)
    assert [item["name"] for item in report["added"]] == ["survey"] and len(calls) == 2

    calls.clear()
    monkeypatch.setattr(
        store,
        "_reload",
        lambda directory: (_ for _ in ()).throw(
            sa.exc.OperationalError("SELECT", {}, Exception("no such table: workflows"))
        ),
    )
    with pytest.raises(sa.exc.OperationalError):  # other errors are not retried
        store.reload(tmp_path)
