"""setup.cfg and requirements.lock agree: every dependency the package declares is pinned in
the lock at a version the declaration allows, with hashes (`make lock` regenerates it after
a change to setup.cfg), and the developer's tools are pinned exactly."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def _options(name: str) -> list[Requirement]:
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    section = "options" if name == "install_requires" else "options.extras_require"
    lines = setup[section][name].strip().splitlines()
    return [Requirement(line) for line in lines if line.strip()]


def _locked() -> dict[str, list[tuple[Version, str]]]:
    """Each locked name with its versions (one per marker) and the text of its entry."""
    entries = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / "requirements.lock").read_text())
    locked: dict[str, list[tuple[Version, str]]] = {}
    for entry in entries:
        pin = re.match(r"([A-Za-z0-9._-]+)==([^\s;\\]+)", entry)
        if pin:
            locked.setdefault(canonicalize_name(pin[1]), []).append((Version(pin[2]), entry))
    return locked


def test_every_declared_dependency_is_locked_at_an_allowed_version_with_hashes():
    locked = _locked()
    assert len(locked) > len(_options("install_requires")), "dependencies of dependencies too"
    for entry in (entry for pins in locked.values() for _, entry in pins):
        assert "--hash=sha256:" in entry, f"no hash: {entry.splitlines()[0]}"
    for requirement in _options("install_requires"):
        pins = locked.get(canonicalize_name(requirement.name))
        assert pins, f"{requirement} is not in requirements.lock: run `make lock`"
        for version, _ in pins:
            assert version in requirement.specifier, (
                f"requirements.lock pins {requirement.name}=={version}, outside {requirement}: "
                "run `make lock`"
            )


def test_the_developer_tools_are_pinned_exactly():
    for requirement in _options("dev"):
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{requirement}: pin it (==) in setup.cfg's dev extra"
