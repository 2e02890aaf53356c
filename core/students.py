"""Students: lookup by student number, creation, CSV import, demo data and the second password."""

import csv
import io
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.enums import Language
from core.errors import InvalidEmailAddress, WeakSecondPassword
from core.identifiers import normalize_email, normalize_student_number
from core.models import Student
from core.passwords import check_second_password, hash_password
from core.profile import UniversityProfile

MAX_NAME = 200  # the column size of core.models.Student.name
CSV_COLUMNS = ("student_number", "department", "year", "name", "email", "language")
REQUIRED_COLUMNS = ("student_number", "department", "year")


def find_student(session: Session, student_number: str) -> Student | None:
    """The student with this number (normalized first), or None."""
    number = normalize_student_number(student_number)
    return session.scalars(select(Student).where(Student.student_number == number)).one_or_none()


def create_student(session: Session, *, student_number: str, department: str, year: int, now: datetime,
                   name: str | None = None, email: str | None = None,
                   language: Language = Language.JA) -> Student:
    """Add a student; an email given here counts as registered by the university."""
    student = Student(
        student_number=normalize_student_number(student_number), department=department, year=year,
        name=name, email=email, email_verified_at=now if email else None, preferred_language=language,
        created_at=now, updated_at=now,
    )
    session.add(student)
    session.flush()
    return student


def set_second_password(session: Session, student: Student, password: str, now: datetime) -> None:
    """Check the rules and store only the argon2 hash.

    Raises:
        WeakSecondPassword: with the broken rule codes, when the password breaks any rule.
    """
    violations = check_second_password(password, student.student_number)
    if violations:
        raise WeakSecondPassword(tuple(violations))
    student.second_password_hash = hash_password(password)
    student.updated_at = now


def text_lines_in(row: dict[str | None, object]) -> int:
    """How many physical lines a parsed row spans (quoted fields may hold newlines)."""
    return 1 + sum(str(value).count("\n") for value in row.values() if isinstance(value, str))


@dataclass(frozen=True)
class RowError:
    """One bad line of an import file."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class StudentImportError(Exception):
    """An import file has bad rows; nothing of it was imported."""

    def __init__(self, source: str, errors: list[RowError]) -> None:
        self.source, self.errors = source, errors
        super().__init__(f"{source}: nothing imported; " + "; ".join(str(e) for e in errors))


@dataclass(frozen=True)
class _StudentRow:
    student_number: str
    department: str
    year: int
    name: str | None
    email: str | None
    language: Language


@dataclass(frozen=True)
class ImportResult:
    """How many students an import added and updated."""

    created: int
    updated: int


def import_students_csv(session: Session, path: Path, profile: UniversityProfile, now: datetime) -> ImportResult:
    """Import or update students from a UTF-8 CSV with a header row; all rows or none.

    Columns: student_number, department (a profile department code), year, and optionally name,
    email and language (ja or en). A row for a known student number updates that student.

    Raises:
        StudentImportError: naming each bad line; the session is left unchanged.
    """
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")  # Excel writes a BOM
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise StudentImportError(str(path), [RowError(line, "not UTF-8 text; save the file as 'CSV UTF-8'")]) from exc
    reader = csv.DictReader(io.StringIO(text))
    header = [column.strip() for column in reader.fieldnames or []]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if missing or unknown:
        problems = ([f"missing column(s): {', '.join(missing)}"] if missing else []) + (
            [f"unknown column(s): {', '.join(unknown)}"] if unknown else [])
        raise StudentImportError(str(path), [RowError(1, "; ".join(problems))])

    rows: list[_StudentRow] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    departments = {department.code: department for department in profile.departments}
    for raw in reader:
        line = reader.line_num - text_lines_in(raw) + 1  # the row's first line, counting blank lines
        if None in raw:  # csv files surplus values under the key None
            errors.append(RowError(line, "more fields than the header (an unquoted comma?)"))
            continue
        row = {key.strip(): (value or "").strip() for key, value in raw.items() if key}
        if not any(row.values()):
            continue  # a line of empty fields
        problems = []
        number = normalize_student_number(row.get("student_number", ""))
        if not profile.student_number_regex.match(number):
            problems.append(f"student_number {number!r} does not match {profile.student_number_pattern}")
        elif number in seen:
            problems.append(f"student_number {number} already on line {seen[number]}")
        department = departments.get(row.get("department", ""))
        if department is None:
            problems.append(f"department {row.get('department')!r} is not one of {', '.join(departments)}")
        year_text = row.get("year", "")
        year = int(year_text) if re.fullmatch(r"[0-9]{1,2}", year_text) else 0
        if year < 1 or (department and year > department.years):
            limit = department.years if department else 10
            problems.append(f"year {year_text!r} is not a whole number from 1 to {limit}")
        email = row.get("email") or None
        try:
            email = normalize_email(email) if email else None
        except InvalidEmailAddress as bad:
            problems.append(f"email is not a usable address ({bad.reason})")
        if len(row.get("name") or "") > MAX_NAME:
            problems.append(f"name is longer than {MAX_NAME} characters")
        language = row.get("language") or "ja"
        if language not in {lang.value for lang in Language}:
            problems.append(f"language {language!r} is not ja or en")
        if problems:
            errors.extend(RowError(line, problem) for problem in problems)
            continue
        seen[number] = line
        rows.append(_StudentRow(number, row["department"], year, row.get("name") or None, email,
                                Language(language)))
    if errors:
        raise StudentImportError(str(path), errors)

    created = updated = 0
    with session.begin_nested():  # one savepoint: a database error leaves nothing half-imported
        for row in rows:
            student = find_student(session, row.student_number)
            if student is None:
                create_student(session, student_number=row.student_number, department=row.department,
                               year=row.year, name=row.name, email=row.email, language=row.language, now=now)
                created += 1
                continue
            student.department, student.year = row.department, row.year
            student.name = row.name or student.name
            student.preferred_language = row.language
            if row.email and row.email != student.email:
                student.email, student.email_verified_at = row.email, now
            student.updated_at = now
            updated += 1
    return ImportResult(created=created, updated=updated)


DEMO_STUDENTS = Path(__file__).parent / "data" / "demo_students.csv"


def load_demo_students(session: Session, profile: UniversityProfile, now: datetime) -> ImportResult:
    """Import the shipped demo students (used on first run so a new user can try everything)."""
    return import_students_csv(session, DEMO_STUDENTS, profile, now)
