"""The shared fixtures themselves work: a migrated database, mail over SMTP, a live server."""

from sqlalchemy import select

from core.models import Student
from core.students import create_student


def test_core_database_round_trip(core):
    with core.transaction() as session:
        create_student(session, student_number="24m1001", department="medicine", year=3, now=core.now())
    with core.transaction() as session:
        student = session.scalars(select(Student)).one()
    assert student.student_number == "24M1001"
    assert student.created_at == core.now()


def test_mail_reaches_the_smtp_server(core, inbox):
    core.send_mail(to="someone@example.ac.jp", subject="件名", body="本文です")
    message = inbox.only()
    assert message["Subject"] == "件名"
    assert inbox.body(message).strip() == "本文です"


def test_live_server_answers_health(live_server):
    response = live_server.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
    assert response.headers["referrer-policy"] == "no-referrer"
