"""docs/deploy.md shows the files in deploy/ as they are."""

from __future__ import annotations

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_deploy_docs_show_the_shipped_files_verbatim():
    docs = (ROOT / "docs" / "deploy.md").read_text()
    for name in ("kabar.service", "kabar.env", "nginx.conf"):
        text = (ROOT / "deploy" / name).read_text().rstrip()
        assert text in docs, f"docs/deploy.md no longer shows deploy/{name} as it is"


def test_the_systemd_unit_runs_kabar_on_its_state_directory():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(ROOT / "deploy" / "kabar.service")
    service = unit["Service"]
    assert service["ExecStart"].endswith("/bin/kabar run")
    assert service["StateDirectory"] == "kabar"
    assert service["Environment"] == "KABAR_INSTANCE_PATH=/var/lib/kabar"
    assert "/var/lib/kabar" in service["ReadWritePaths"]
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_the_proxy_passes_event_streams_unbuffered():
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    events = nginx.split("location ~ ^/(api/v1/)?events", 1)[1]
    assert "proxy_buffering off;" in events and "proxy_read_timeout" in events
