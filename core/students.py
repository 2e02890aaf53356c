"""Students: lookup by student number, creation, CSV import, demo data and the second password."""

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.enums import Language
from core.errors import InvalidEmailAddress, WeakSecondPassword
from core.identifiers import normalize_email, normalize_student_number
from core.models import Student
from core.passwords import check_second_password, hash_password
from core.profile import Department, UniversityProfile

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


class _RowContext(NamedTuple):
    """What a row is checked against: the profile's departments and pattern, and the numbers seen so far."""

    profile: UniversityProfile
    departments: Mapping[str, Department]
    seen: Mapping[str, int]  # student number -> the line it was first imported from


def _problem(message: str) -> PydanticCustomError:
    """A validation error whose message is exactly `message` (pydantic would otherwise prefix 'Value error, ')."""
    # The message goes in as context, not as the template, so braces in it (a regex's {4}) are kept as they are.
    return PydanticCustomError("student_row", "{problem}", {"problem": message})


def _context(info: ValidationInfo) -> _RowContext:
    """The row context `_StudentRow.model_validate` was given."""
    if not isinstance(info.context, _RowContext):
        raise TypeError("_StudentRow is validated with a _RowContext")
    return info.context


class _StudentRow(BaseModel):
    """One CSV row, stripped, checked against the profile and the rows before it.

    The fields are checked in the order they are declared here, each bad one adding its own message; blank
    optional values mean "not given".
    """

    model_config = ConfigDict(frozen=True)

    student_number: str
    department: str
    year: int
    email: str | None = None
    name: str | None = None
    language: Language = Language.JA

    @field_validator("student_number", mode="before")
    @classmethod
    def _known_shape_and_new(cls, value: str, info: ValidationInfo) -> str:
        context = _context(info)
        number = normalize_student_number(value)
        if not context.profile.student_number_regex.match(number):
            raise _problem(f"student_number {number!r} does not match {context.profile.student_number_pattern}")
        if number in context.seen:
            raise _problem(f"student_number {number} already on line {context.seen[number]}")
        return number

    @field_validator("department", mode="before")
    @classmethod
    def _a_profile_department(cls, value: str, info: ValidationInfo) -> str:
        departments = _context(info).departments
        if value not in departments:
            raise _problem(f"department {value!r} is not one of {', '.join(departments)}")
        return value

    @field_validator("year", mode="before")
    @classmethod
    def _within_the_department(cls, value: str, info: ValidationInfo) -> int:
        # One or two ASCII digits: int() alone would also take "+3", "1_0" or "٣" (an Arabic-Indic three).
        year = int(value) if re.fullmatch(r"[0-9]{1,2}", value) else 0
        # Without a valid department (already reported) only the lower bound is checked.
        department = _context(info).departments.get(info.data.get("department", ""))
        if year < 1 or (department and year > department.years):
            limit = department.years if department else 10
            raise _problem(f"year {value!r} is not a whole number from 1 to {limit}")
        return year

    @field_validator("email", mode="before")
    @classmethod
    def _usable_address(cls, value: str) -> str | None:
        try:
            return normalize_email(value) if value else None
        except InvalidEmailAddress as bad:
            raise _problem(f"email is not a usable address ({bad.reason})") from bad

    @field_validator("name", mode="before")
    @classmethod
    def _fits_the_column(cls, value: str) -> str | None:
        if len(value) > MAX_NAME:
            raise _problem(f"name is longer than {MAX_NAME} characters")
        return value or None

    @field_validator("language", mode="before")
    @classmethod
    def _ja_or_en(cls, value: str) -> str:
        language = value or Language.JA.value
        if language not in {lang.value for lang in Language}:
            raise _problem(f"language {language!r} is not ja or en")
        return language


@dataclass(frozen=True)
class ImportResult:
    """How many students an import added and updated."""

    created: int
    updated: int


def _decoded(path: Path) -> str:
    """The file's text, without Excel's byte-order mark.

    Raises:
        StudentImportError: on the line of the first byte that is not UTF-8.
    """
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")  # Excel writes a BOM
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise StudentImportError(str(path), [RowError(line, "not UTF-8 text; save the file as 'CSV UTF-8'")]) from exc


def _check_header(path: Path, fieldnames: Sequence[str] | None) -> None:
    """Refuse a header without the required columns or with columns the import does not know.

    Raises:
        StudentImportError: on line 1, naming the missing and the unknown columns.
    """
    header = [column.strip() for column in fieldnames or []]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    unknown = [c for c in header if c not in CSV_COLUMNS]
    problems = ([f"missing column(s): {', '.join(missing)}"] if missing else []) + (
        [f"unknown column(s): {', '.join(unknown)}"] if unknown else [])
    if problems:
        raise StudentImportError(str(path), [RowError(1, "; ".join(problems))])


def _row_errors(line: int, invalid: ValidationError) -> list[RowError]:
    """One RowError per bad field, in the order _StudentRow declares its fields."""
    return [RowError(line, error["msg"]) for error in invalid.errors()]


def _read_rows(path: Path, profile: UniversityProfile) -> list[_StudentRow]:
    """Every non-blank row of the file, checked.

    Raises:
        StudentImportError: naming each bad line (every bad field of it), or the bad header or encoding.
    """
    text = _decoded(path)
    reader = csv.DictReader(io.StringIO(text))
    _check_header(path, reader.fieldnames)
    rows: list[_StudentRow] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    context = _RowContext(profile, {department.code: department for department in profile.departments}, seen)
    for raw in reader:
        line = reader.line_num - text_lines_in(raw) + 1  # the row's first line, counting blank lines
        if None in raw:  # csv files surplus values under the key None
            errors.append(RowError(line, "more fields than the header (an unquoted comma?)"))
            continue
        values = {key.strip(): (value or "").strip() for key, value in raw.items() if key}
        if not any(values.values()):
            continue  # a line of empty fields
        try:
            row = _StudentRow.model_validate(values, context=context)
        except ValidationError as invalid:
            errors.extend(_row_errors(line, invalid))
            continue
        seen[row.student_number] = line
        rows.append(row)
    if errors:
        raise StudentImportError(str(path), errors)
    return rows


def _store(session: Session, row: _StudentRow, now: datetime) -> bool:
    """Create the row's student or update the known one; True if it was created."""
    student = find_student(session, row.student_number)
    if student is None:
        create_student(session, student_number=row.student_number, department=row.department,
                       year=row.year, name=row.name, email=row.email, language=row.language, now=now)
        return True
    student.department, student.year = row.department, row.year
    student.name = row.name or student.name
    student.preferred_language = row.language
    if row.email and row.email != student.email:
        student.email, student.email_verified_at = row.email, now
    student.updated_at = now
    return False


def import_students_csv(session: Session, path: Path, profile: UniversityProfile, now: datetime) -> ImportResult:
    """Import or update students from a UTF-8 CSV with a header row; all rows or none.

    Columns: student_number, department (a profile department code), year, and optionally name,
    email and language (ja or en). A row for a known student number updates that student.

    Args:
        session: the transaction the students are written in.
        path: the CSV file.
        profile: the university profile whose departments and student-number pattern the rows must fit.
        now: the time stamped on created and updated students.

    Returns:
        How many students were created and how many updated.

    Raises:
        StudentImportError: naming each bad line; the session is left unchanged.
    """
    rows = _read_rows(path, profile)
    created = 0
    with session.begin_nested():  # one savepoint: a database error leaves nothing half-imported
        for row in rows:
            created += _store(session, row, now)
    return ImportResult(created=created, updated=len(rows) - created)


DEMO_STUDENTS = Path(__file__).parent / "data" / "demo_students.csv"


def load_demo_students(session: Session, profile: UniversityProfile, now: datetime) -> ImportResult:
    """Import the shipped demo students (used on first run so a new user can try everything)."""
    return import_students_csv(session, DEMO_STUDENTS, profile, now)
