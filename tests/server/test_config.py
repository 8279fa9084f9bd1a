"""Settings from KABAR_* variables, and the documentation that lists them."""

from __future__ import annotations

from pathlib import Path

import pytest

from server import config


def test_environment_then_overrides(monkeypatch):
    monkeypatch.setenv("KABAR_PORT", "8080")
    monkeypatch.setenv("KABAR_LOG_JSON", "yes")
    monkeypatch.setenv("KABAR_FETCH_ALLOW", "10.0.0.0/8, files.internal")
    values = config.load({"PORT": 9000})
    assert values["PORT"] == 9000  # overrides win
    assert values["LOG_JSON"] is True
    assert values["FETCH_ALLOW"] == ["10.0.0.0/8", "files.internal"]
    assert values["PHONE_REGION"] == "ID"  # the documented default


def test_a_bad_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("KABAR_PORT", "eighty")
    with pytest.raises(config.ConfigError, match="KABAR_PORT='eighty' is not valid"):
        config.load()


def test_postgresql_urls_use_psycopg_3(tmp_path):
    values = config.load({"DATABASE_URL": "postgresql://kabar@db/kabar"})
    flask = config.flask_config(values, tmp_path)
    assert flask["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://kabar@db/kabar"
    default = config.flask_config(config.load(), tmp_path)
    assert default["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'kabar.db'}"


def test_docs_list_every_setting():
    docs = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text()
    assert config.render_markdown() in docs, "regenerate docs/configuration.md's table"


def test_helpdesk_settings_are_checked(monkeypatch):
    monkeypatch.setenv("KABAR_HELPDESK_PREFIX", " mon ")
    monkeypatch.setenv("KABAR_HELPDESK_GUESTS", "no")
    monkeypatch.setenv("KABAR_HELPDESK_TIMEZONE", "Asia/Makassar")
    values = config.load()
    assert (values["HELPDESK_PREFIX"], values["HELPDESK_GUESTS"], values["HELPDESK_TIMEZONE"]) == (
        "MON",
        False,
        "Asia/Makassar",
    )
    monkeypatch.setenv("KABAR_HELPDESK_PREFIX", "BRT-1")
    with pytest.raises(config.ConfigError, match="use 1-12 letters"):
        config.load()
    monkeypatch.setenv("KABAR_HELPDESK_PREFIX", "BRT")
    monkeypatch.setenv("KABAR_HELPDESK_TIMEZONE", "Jakarta")
    with pytest.raises(config.ConfigError, match="KABAR_HELPDESK_TIMEZONE='Jakarta'"):
        config.load()


def test_the_instance_is_found_the_way_services_find_theirs(tmp_path, monkeypatch):
    work, system, xdg = tmp_path / "work", tmp_path / "var-lib-kabar", tmp_path / "xdg"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("KABAR_INSTANCE_PATH", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(xdg))
    monkeypatch.setattr(config, "SYSTEM_INSTANCE", system)
    checkout = config.source_checkout()
    assert checkout is not None  # the tests run from one
    # A checkout keeps its instance beside the code, from whatever folder.
    assert config.instance_path(config.load()) == checkout / "instance"

    # An installed package: the XDG data folder, or /var/lib/kabar made for a service.
    monkeypatch.setattr(config, "source_checkout", lambda: None)
    assert config.instance_path(config.load()) == xdg / "kabar"
    system.mkdir()
    assert config.instance_path(config.load()) == system
    # ./instance only when it holds an instance; an empty folder of that name is not one.
    (work / "instance").mkdir()
    assert config.instance_path(config.load()) == system
    (work / "instance" / "secret_key").write_text("x")
    assert config.instance_path(config.load()) == work / "instance"
    # The setting wins over all of them.
    assert (
        config.instance_path(config.load({"INSTANCE_PATH": str(tmp_path / "set")}))
        == tmp_path / "set"
    )
