"""The book's whole helpdesk flow over WhatsApp, through the sandbox and the shipped
workflows in workflows/helpdesk/: report -> number -> assign -> the field officer starts,
reports with a photo and finishes -> the reporter checks (cek, track) and confirms; and
every error path answers with its warning."""

from __future__ import annotations

import base64
import re
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from server.models import Ticket, db
from tests.server.conftest import unpaced, wait_for
from tests.server.workflows.conftest import WORKFLOWS, received

REPORTER = "6281234567890"
OFFICER = "6282124603757"
STRANGER = "6289876543210"
PHOTO = base64.b64encode(b"\xff\xd8\xff\xe0 a small jpeg").decode()


@pytest.fixture
def sandbox_session(sandbox_session):
    return unpaced(sandbox_session)


@pytest.fixture
def helpdesk(
    app, client, admin_headers, operator_headers, sandbox_session, make_user, tmp_path, monkeypatch
):
    """The helpdesk workflows enabled on a sandbox session, a registered reporter and a
    field officer with a phone."""
    folder = tmp_path / "workflows"
    shutil.copytree(WORKFLOWS / "helpdesk", folder / "helpdesk")
    monkeypatch.setitem(app.config["KABAR"], "WORKFLOWS_DIR", str(folder))
    report = client.post("/api/v1/workflows/reload", headers=admin_headers).json
    assert not report["errors"], report["errors"]
    for item in report["added"]:
        enabled = client.post(f"/api/v1/workflows/{item['name']}/enable", headers=admin_headers)
        assert enabled.status_code == 200, enabled.json
    person = client.post(
        "/api/v1/people",
        headers=admin_headers,
        json={
            "name": "R Marta Dinata",
            "phone": "0812-3456-7890",
            "department": "Teknik",
            "unit": "TIF IT",
        },
    )
    assert person.status_code == 201, person.json
    officer = make_user("field", username="siswanto")
    staffed = client.put(
        f"/api/v1/staff/{officer.id}",
        headers=admin_headers,
        json={"phone": OFFICER, "level": "tbo", "status": "active"},
    )
    assert staffed.status_code == 200, staffed.json
    return {"session": sandbox_session, "officer": officer}


def _texts_to(session_id, phone):
    return received(session_id, to=phone)


def _wait_text(session_id, phone, fragment, what):
    return wait_for(
        lambda: next((t for t in _texts_to(session_id, phone) if fragment in t), None),
        timeout=20,
        what=what,
    )


def test_the_whole_flow(client, admin_headers, operator_headers, helpdesk, say):
    sid = helpdesk["session"]
    say(operator_headers, sid, "#request lampu kelas B201 mati", sender=REPORTER)
    thanks = _wait_text(sid, REPORTER, "Nomor Tracking", "the tracking number")
    number = db.session.scalar(sa.select(Ticket.number))
    db.session.rollback()
    assert f"*{number}*" in thanks and "R Marta Dinata" in thanks and "(TIF IT)" in thanks
    assert number.startswith("BRT") and number.endswith("001")

    assigned = client.post(
        f"/api/v1/tickets/{number}/assign",
        headers=admin_headers,
        json={"assignee": helpdesk["officer"].id, "note": "segera diperiksa"},
    )
    assert assigned.status_code == 200, assigned.json
    task = _wait_text(sid, OFFICER, "Tugas baru", "the officer's assignment")
    assert number in task and "segera diperiksa" in task
    _wait_text(sid, REPORTER, "sudah ditugaskan", "the reporter told of the assignment")

    say(operator_headers, sid, "#job", sender=OFFICER)
    jobs = _wait_text(sid, OFFICER, "Tugas Anda", "#job")
    assert number in jobs and "lampu kelas B201 mati" in jobs

    say(operator_headers, sid, f"#start {number}", sender=OFFICER)
    _wait_text(sid, OFFICER, "mulai dikerjakan", "#start confirmed")
    _wait_text(sid, REPORTER, "sedang dikerjakan", "the reporter told of the start")

    say(
        operator_headers,
        sid,
        f"#report {number} lampu sudah diganti",
        sender=OFFICER,
        media={"data": PHOTO, "mimetype": "image/jpeg", "filename": "bukti.jpg"},
    )
    _wait_text(sid, OFFICER, "Laporan perkembangan", "#report confirmed")
    _wait_text(sid, REPORTER, "lampu sudah diganti", "the reporter told of progress")
    detail = client.get(f"/api/v1/tickets/{number}", headers=admin_headers).json
    progress = [e for e in detail["events"] if e["kind"] == "progress"]
    assert progress and progress[0]["photo"], detail["events"]

    say(operator_headers, sid, f"#finish {number}", sender=OFFICER)
    _wait_text(sid, REPORTER, f"#selesai {number}", "the reporter asked to confirm")

    say(operator_headers, sid, f"cek {number}", sender=REPORTER)
    latest = _wait_text(sid, REPORTER, "Hingga", "cek")
    assert "selesai dikerjakan" in latest
    say(operator_headers, sid, f"track {number.lower()}", sender=REPORTER)
    history = _wait_text(sid, REPORTER, "riwayat aduan", "track")
    assert "1. " in history and "lampu sudah diganti" in history

    say(operator_headers, sid, f"#selesai {number}", sender=REPORTER)
    _wait_text(sid, REPORTER, "kami tutup", "the confirmation")
    assert (
        client.get(f"/api/v1/tickets/{number}", headers=admin_headers).json["status"] == "confirmed"
    )


def test_every_error_path_answers(client, admin_headers, operator_headers, helpdesk, say):
    sid = helpdesk["session"]
    say(operator_headers, sid, "#request pintu rusak", sender=REPORTER)
    _wait_text(sid, REPORTER, "Nomor Tracking", "a ticket")
    number = db.session.scalar(sa.select(Ticket.number))
    db.session.rollback()

    say(operator_headers, sid, "cek BRT9999999", sender=REPORTER)
    warning = _wait_text(sid, REPORTER, "tidak ditemukan", "an unknown number's warning")
    assert "Periksa kembali nomornya" in warning
    say(operator_headers, sid, "track", sender=REPORTER)
    _wait_text(sid, REPORTER, "belum ditulis", "a missing number's warning")

    say(operator_headers, sid, f"cek {number}", sender=STRANGER)
    _wait_text(sid, STRANGER, "bukan aduan Anda", "someone else's ticket, not disclosed")
    assert not any("pintu rusak" in t for t in _texts_to(sid, STRANGER))

    say(operator_headers, sid, "halo, apa kabar?", sender=STRANGER)
    _wait_text(sid, STRANGER, "Gunakan pola pesan", "the command help")
    say(operator_headers, sid, "#help", sender=STRANGER)
    assert len([t for t in _wait_for_two(sid, STRANGER)]) >= 2

    say(operator_headers, sid, "#job", sender=STRANGER)
    _wait_text(sid, STRANGER, "hanya untuk petugas", "#job from a non-officer")

    say(operator_headers, sid, "#start BRT0000000", sender=OFFICER)
    _wait_text(sid, OFFICER, "Tugas *BRT0000000* tidak ditemukan", "a wrong task number")
    say(operator_headers, sid, f"#start {number}", sender=OFFICER)
    _wait_text(sid, OFFICER, "bukan tugas Anda", "someone else's task")
    say(operator_headers, sid, "#help2", sender=OFFICER)
    _wait_text(sid, OFFICER, "Perintah petugas", "#help2")

    say(operator_headers, sid, f"#selesai {number}", sender=REPORTER)
    _wait_text(sid, REPORTER, "belum dapat dikonfirmasi", "confirming an open ticket")


# Words of the English refusals and status codes that used to leak into the replies.
ENGLISH = re.compile(r"\b([Tt]icket|is|only|when|can|be|the|assigned|in_progress|done|new)\b")


def test_every_reply_is_in_indonesian_and_says_what_to_do(
    client, admin_headers, operator_headers, helpdesk, say
):
    sid = helpdesk["session"]
    said = []

    def ask(text, sender, fragment, what):
        say(operator_headers, sid, text, sender=sender)
        answer = _wait_text(sid, sender, fragment, what)
        said.append(answer)
        return answer

    ask("#request proyektor mati", REPORTER, "Nomor Tracking", "a ticket")
    number = db.session.scalar(sa.select(Ticket.number))
    db.session.rollback()

    early = ask(f"#selesai {number}", REPORTER, "belum dapat dikonfirmasi", "#selesai early")
    assert "belum ditugaskan" in early and f"cek {number}" in early
    assert "tidak dapat Anda konfirmasi" in ask(
        f"#selesai {number}", STRANGER, "bukan aduan Anda", "someone else's #selesai"
    )
    # A well-formed number that matches nothing, and a mistyped one, are told apart.
    unknown = ask("cek BRT9999999", REPORTER, "tidak ditemukan", "an unknown number")
    assert "Periksa kembali" in unknown
    mistyped = ask("cek 12ab", REPORTER, "bukan nomor aduan", "a mistyped number")
    assert "contoh: cek BRT2409001" in mistyped

    client.post(
        f"/api/v1/tickets/{number}/assign",
        headers=admin_headers,
        json={"assignee": helpdesk["officer"].id},
    )
    jobs = ask("#job", OFFICER, "Tugas Anda", "#job")
    assert f"*{number}* (belum dimulai)" in jobs
    ask(f"#report {number}", OFFICER, "Tulis apa yang sudah dikerjakan", "#report, no note")
    ask(f"#finish {number}", OFFICER, "tercatat selesai", "#finish")
    again = ask(f"#finish {number}", OFFICER, "tidak dapat diselesaikan", "#finish twice")
    assert "menunggu konfirmasi pelapor" in again and "Tidak ada yang perlu" in again
    ask(f"#start {number}", OFFICER, "tidak dapat dimulai", "#start on a finished task")
    track = ask(f"track {number}", REPORTER, "riwayat aduan", "track")
    assert "ditugaskan" in track

    for answer in said:
        text = answer.replace(number, "").replace("#request", "").replace("#report", "")
        assert not ENGLISH.search(text), answer


def _wait_for_two(sid, phone):
    return wait_for(
        lambda: (
            [t for t in _texts_to(sid, phone) if "Gunakan pola pesan" in t]
            if len([t for t in _texts_to(sid, phone) if "Gunakan pola pesan" in t]) >= 2
            else None
        ),
        timeout=20,
        what="help twice",
    )


def test_the_shipped_helpdesk_workflows_validate():
    from nodes import Workflow

    for path in sorted(Path(WORKFLOWS, "helpdesk").glob("*.json")):
        Workflow.load(path)


def test_the_daily_summary_reaches_the_admins(
    client, admin_headers, operator_headers, helpdesk, say
):
    sid = helpdesk["session"]
    say(operator_headers, sid, "#request wastafel bocor", sender=REPORTER)
    _wait_text(sid, REPORTER, "Nomor Tracking", "a ticket")
    number = db.session.scalar(sa.select(Ticket.number))
    db.session.rollback()
    run = client.post(
        "/api/v1/workflows/helpdesk-daily-summary/runs",
        headers=admin_headers,
        json={"vars": {"admins": "0821-5555-0001|Bu Rina"}, "session": sid},
    )
    assert run.status_code == 201 and run.json["status"] == "completed", run.json
    summary = _wait_text(sid, "6282155550001", "ringkasan helpdesk", "the summary")
    assert "Yth Bu Rina" in summary and "1 aduan terbuka" in summary and number in summary
