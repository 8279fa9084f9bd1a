"""Invariant: only ``server/whatsapp/neonize/`` imports neonize, and the web app never
loads it (neonize's import loads an 18 MB Go library and configures the root logger)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
PACKAGE = ROOT / "server" / "whatsapp" / "neonize"


def _imports_neonize(path: Path) -> bool:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            if any(a.name == "neonize" or a.name.startswith("neonize.") for a in node.names):
                return True
        elif (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and node.module
            and (node.module == "neonize" or node.module.startswith("neonize."))
        ):
            return True
    return False


def test_only_the_neonize_package_imports_neonize():
    importers = {
        p.relative_to(ROOT).as_posix()
        for folder in ("server", "nodes", "bench")
        for p in (ROOT / folder).rglob("*.py")
        if _imports_neonize(p)
    }
    outside = {p for p in importers if not p.startswith("server/whatsapp/neonize/")}
    assert not outside, f"neonize imported outside server/whatsapp/neonize/: {outside}"
    assert importers == {"server/whatsapp/neonize/loader.py"}  # and there, in one place


def test_create_app_never_loads_neonize(tmp_path):
    script = f"""
import sys
from server import create_app
app = create_app({{"INSTANCE_PATH": {str(tmp_path)!r},
                  "DATABASE_URL": "sqlite:///{tmp_path}/k.db",
                  "SECRET_KEY": "x" * 40}})
app.test_client().get("/api/v1/health")
import server.whatsapp  # the transport factory module, without calling it
loaded = sorted(m for m in sys.modules if m == "neonize" or m.startswith("neonize.")
                or m.startswith("server.whatsapp.neonize"))
print(loaded)
"""
    answer = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip().splitlines()[-1] == "[]"


def test_a_session_process_loads_only_what_the_session_needs():
    """A neonize session's process (session_host, the transport, neonize itself) loads
    neither the web app nor the database layer, nor the modules neonize imports for code
    Kabar never runs (about 12 MB a process; docs/benchmarks.md); these still load when
    something asks for them."""
    script = """
import json, sys
from server.runtime import session_host
session_host.load_factory("server.whatsapp.neonize:NeonizeTransport")
from server.whatsapp.neonize.loader import _nz
_nz()
unwanted = ("flask", "sqlalchemy", "werkzeug", "linkpreview", "bs4", "soupsieve",
            "requests", "httpx", "urllib3", "click", "pygments", "tqdm", "segno", "unittest")
print(json.dumps(sorted(name for name in unwanted if name in sys.modules)))
import neonize.client, neonize.events, neonize.utils.iofile
import requests, segno
print(neonize.utils.iofile.requests.get is requests.get,
      neonize.events.segno.make_qr is segno.make_qr, callable(neonize.client.link_preview))
"""
    answer = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert answer.returncode == 0, answer.stderr
    loaded, resolved = answer.stdout.strip().splitlines()[-2:]
    assert loaded == "[]"
    assert resolved == "True True True"
