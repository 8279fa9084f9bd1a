"""Every text of the dashboard has an Indonesian translation, and the compiled catalogue
(committed, so a fresh clone needs no build step) matches its source."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

UI = Path(__file__).parents[3] / "server" / "ui"
CATALOGUE = UI / "translations" / "id" / "LC_MESSAGES"
METHODS = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None}


def _source_texts() -> set:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        UI, METHODS, keywords=KEYWORDS
    ):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def _read(name: str, reader):
    with (CATALOGUE / name).open("rb") as handle:
        return reader(handle)


def test_every_text_has_an_indonesian_translation():
    po = _read("messages.po", read_po)
    translated = {
        (m.id[0] if isinstance(m.id, tuple) else m.id)
        for m in po
        if m.id and all(m.string if isinstance(m.string, tuple) else [m.string])
    }
    missing = sorted(_source_texts() - translated)
    assert not missing, f"translate these in messages.po, then `make translations`: {missing}"


def test_the_compiled_catalogue_matches_its_source():
    po, mo = _read("messages.po", read_po), _read("messages.mo", read_mo)

    def texts(catalogue) -> dict:
        def same(value):
            return tuple(value) if isinstance(value, (list, tuple)) else value

        return {same(m.id): same(m.string) for m in catalogue if m.id}

    assert texts(po) == texts(mo), "messages.mo is stale: run `make translations`"
