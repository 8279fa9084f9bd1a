"""/api/v1/staff: a user's helpdesk profile: WhatsApp phone, level, status."""

from __future__ import annotations

URL = "/api/v1/staff"


def test_make_change_list_and_remove_staff(client, make_user, login):
    op = login(make_user("operator"))
    siswanto = make_user("field", username="siswanto", display_name="Siswanto")
    made = client.put(
        f"{URL}/{siswanto.id}",
        headers=op,
        json={"phone": "0821-2460-3757", "level": "TBO", "notes": "Teknisi"},
    )
    assert made.status_code == 200, made.json
    assert {
        k: made.json[k]
        for k in ("username", "name", "group", "phone", "level", "level_label", "status")
    } == {
        "username": "siswanto",
        "name": "Siswanto",
        "group": "field",
        "phone": "6282124603757",
        "level": "tbo",
        "level_label": "TBO",
        "status": "active",
    }
    nikolai = make_user("operator", username="nikolai")
    taken = client.put(
        f"{URL}/{nikolai.id}", headers=op, json={"phone": "+62 821 2460 3757", "level": "staf"}
    )
    assert (taken.status_code, taken.json["code"]) == (409, "phone_taken")
    bad = client.put(
        f"{URL}/{nikolai.id}", headers=op, json={"phone": "0821-1147-0069", "level": "boss"}
    )
    assert bad.status_code == 422 and "level" in bad.json["errors"]
    assert (
        client.put(
            f"{URL}/{nikolai.id}", headers=op, json={"phone": "0821-1147-0069", "level": "Staf"}
        ).json["level"]
        == "staff"
    )
    changed = client.put(
        f"{URL}/{siswanto.id}",
        headers=op,
        json={"phone": "0821-2460-3757", "level": "tbo", "status": "inactive"},
    )
    assert changed.json["status"] == "inactive"
    assert [s["username"] for s in client.get(f"{URL}?level=tbo", headers=op).json["items"]] == [
        "siswanto"
    ]
    assert [
        s["username"] for s in client.get(f"{URL}?status=active", headers=op).json["items"]
    ] == ["nikolai"]
    assert client.delete(f"{URL}/{siswanto.id}", headers=op).status_code == 204
    gone = client.get(f"{URL}/{siswanto.id}", headers=op)
    assert (gone.status_code, gone.json["code"]) == (404, "staff_not_found")
    nobody = client.put(f"{URL}/999999", headers=op, json={"phone": "0811", "level": "tbo"})
    assert (nobody.status_code, nobody.json["code"]) == (404, "user_not_found")


def test_field_officers_cannot_list_or_edit_staff(client, make_user, login):
    field = make_user("field")
    headers = login(field)
    assert client.get(URL, headers=headers).status_code == 403
    assert (
        client.put(
            f"{URL}/{field.id}", headers=headers, json={"phone": "0811", "level": "tbo"}
        ).status_code
        == 403
    )
