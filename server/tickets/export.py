"""Tickets as a spreadsheet: CSV (UTF-8 with a BOM, so Excel reads the names right) or
XLSX (openpyxl), with the same filters as the list. Times are the helpdesk's local time.

Text a reporter wrote is data, never a formula: in CSV a cell starting with = + - @ gets
a leading apostrophe (OWASP's advice for CSV injection); in XLSX every text cell is typed
as a string, so openpyxl does not turn ``=HYPERLINK(…)`` into a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from server.auth.principal import Principal
from server.errors import KabarError
from server.models import Ticket, db
from server.tickets import lifecycle, staff
from server.tickets.queries import filtered, zone

MAX_ROWS = 50_000
FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class ExportTooLarge(KabarError):
    status = 422
    code = "export_too_large"


def _local(moment: datetime | None) -> datetime | None:
    return moment.astimezone(zone()).replace(tzinfo=None) if moment else None


def _hours(seconds: int | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 2)


def _last_note(ticket: Ticket) -> str:
    event = lifecycle.last_update(ticket)
    return event.note if event else ""


COLUMNS: tuple[tuple[str, Callable[[Ticket], Any], int], ...] = (
    ("Number", lambda t: t.number, 14),
    ("Reported", lambda t: _local(t.created_at), 19),
    ("Category", lambda t: t.category, 10),
    ("Status", lambda t: t.status, 11),
    ("Reporter", lambda t: t.reporter_name, 22),
    ("Phone", lambda t: t.reporter_phone or "", 15),
    ("Person id", lambda t: t.person_id or "", 12),
    ("Department", lambda t: t.person.department if t.person else "", 16),
    ("Unit", lambda t: t.person.unit if t.person else "", 16),
    ("Report", lambda t: t.text, 50),
    ("Assignee", lambda t: staff.display_name(t.assignee), 20),
    ("Assigned", lambda t: _local(t.assigned_at), 19),
    ("Started", lambda t: _local(t.started_at), 19),
    ("Finished", lambda t: _local(t.finished_at), 19),
    ("Confirmed", lambda t: _local(t.confirmed_at), 19),
    ("Duration (hours)", lambda t: _hours(t.duration_seconds), 10),
    ("Last update", _last_note, 40),
)
_TIMES = {"Reported", "Assigned", "Started", "Finished", "Confirmed"}


def tickets(principal: Principal, args: dict[str, Any]) -> list[Ticket]:
    query = filtered(principal, args)
    count = db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
    if count > MAX_ROWS:
        raise ExportTooLarge(
            f"{count} tickets match; an export holds at most {MAX_ROWS}. "
            "Narrow it with from/to or status."
        )
    return list(
        db.session.scalars(query.options(selectinload(Ticket.events)).order_by(Ticket.id)).unique()
    )


def _rows(rows: list[Ticket]) -> Iterator[list[Any]]:
    for ticket in rows:
        yield [value(ticket) for _, value, _ in COLUMNS]


def _csv_cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def to_csv(rows: list[Ticket]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [f"{title} ({zone().key})" if title in _TIMES else title for title, _, _ in COLUMNS]
    )
    for row in _rows(rows):
        writer.writerow([_csv_cell(value) for value in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(rows: list[Ticket]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Tickets")
    sheet.freeze_panes = "A2"
    for index, (_, _, width) in enumerate(COLUMNS, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    header = []
    for title, _, _ in COLUMNS:
        cell = WriteOnlyCell(sheet, value=f"{title} ({zone().key})" if title in _TIMES else title)
        cell.font = Font(bold=True)
        header.append(cell)
    sheet.append(header)
    for row in _rows(rows):
        cells = []
        for value in row:
            cell = WriteOnlyCell(sheet, value=value)
            if isinstance(value, str):
                cell.data_type = "s"  # text stays text, even "=1+1"
            elif isinstance(value, datetime):
                cell.number_format = "yyyy-mm-dd hh:mm:ss"
            cells.append(cell)
        sheet.append(cells)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def export(principal: Principal, args: dict[str, Any], fmt: str) -> tuple[bytes, str, str]:
    """The file's bytes, its MIME type and a file name such as tickets-20240916.xlsx."""
    rows = tickets(principal, args)
    data = to_xlsx(rows) if fmt == "xlsx" else to_csv(rows)
    stamp = datetime.now(zone()).strftime("%Y%m%d-%H%M")
    return data, FORMATS[fmt], f"tickets-{stamp}.{fmt}"
