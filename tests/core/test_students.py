"""Students: number normalization, lookup, creation, the second password and the all-or-nothing CSV import."""

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.enums import Language
from core.errors import WeakSecondPassword
from core.models import Student
from core.passwords import verify_password
from core.students import (
    DEMO_STUDENTS,
    ImportResult,
    StudentImportError,
    create_student,
    find_student,
    import_students_csv,
    load_demo_students,
    normalize_student_number,
    set_second_password,
)

HEADER = "student_number,department,year,name,email,language\n"


def write_csv(tmp_path: Path, text: str, *, name: str = "students.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def import_file(core, path: Path) -> ImportResult:
    with core.transaction() as session:
        return import_students_csv(session, path, core.profile, core.now())


def snapshot(core) -> list[tuple]:
    """Every student row as plain values, to compare the database before and after a failed import."""
    with core.transaction() as session:
        return [
            (s.student_number, s.department, s.year, s.name, s.email, s.email_verified_at, s.preferred_language,
             s.created_at, s.updated_at)
            for s in session.scalars(select(Student).order_by(Student.student_number))
        ]


def student_count(core) -> int:
    with core.transaction() as session:
        return session.scalar(select(func.count()).select_from(Student))


@pytest.fixture
def existing(core):
    """One student already in the database, before any import."""
    with core.transaction() as session:
        create_student(session, student_number="24M1001", department="medicine", year=3, now=core.now(),
                       name="山田 太郎", email="taro@example.ac.jp")
    return snapshot(core)


# --- normalize_student_number --------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "expected"), [
    ("24M1001", "24M1001"),
    ("24m1001", "24M1001"),
    ("２４Ｍ１００１", "24M1001"),      # full-width
    ("２４ｍ１００１", "24M1001"),      # full-width lower case
    ("２４ｍ-1001", "24M1001"),         # the docstring's example
    ("24M-1001", "24M1001"),
    ("２４Ｍ－１００１", "24M1001"),    # full-width hyphen
    ("24 M 1001", "24M1001"),
    (" 24M1001 ", "24M1001"),
    ("24M\u30001001", "24M1001"),       # ideographic space
    ("\u300024m1001\u3000", "24M1001"),
    ("24M\u00a01001", "24M1001"),       # no-break space
    ("", ""),
])
def test_normalize_student_number(raw, expected):
    assert normalize_student_number(raw) == expected


# --- find_student / create_student ---------------------------------------------------------------------------

def test_create_and_find_student(core):
    with core.transaction() as session:
        created = create_student(session, student_number="２４ｍ－１００１", department="medicine", year=3,
                                 now=core.now(), name="山田 太郎", email="taro@example.ac.jp")
        assert created.id is not None
    with core.transaction() as session:
        for query in ("24M1001", "24m1001", "２４Ｍ１００１", "24m-1001", " 24M 1001 "):
            found = find_student(session, query)
            assert found is not None and found.id == created.id, query
        assert find_student(session, "24M1002") is None
        assert find_student(session, "") is None
        student = find_student(session, "24M1001")
        assert student.student_number == "24M1001"
        assert (student.department, student.year, student.name) == ("medicine", 3, "山田 太郎")
        assert student.email == "taro@example.ac.jp"
        assert student.email_verified_at == core.now()  # given by the university: counts as registered
        assert student.preferred_language is Language.JA
        assert student.second_password_hash is None
        assert student.created_at == student.updated_at == core.now()


def test_create_student_without_email_is_unverified(core):
    with core.transaction() as session:
        create_student(session, student_number="22N2002", department="nursing", year=4, now=core.now(),
                       language=Language.EN)
    with core.transaction() as session:
        student = find_student(session, "22n2002")
        assert student.email is None and student.email_verified_at is None
        assert student.preferred_language is Language.EN


# --- set_second_password -------------------------------------------------------------------------------------

def test_set_second_password_stores_only_an_argon2id_hash(core, clock):
    with core.transaction() as session:
        student = create_student(session, student_number="24M1001", department="medicine", year=3, now=core.now())
    later = clock.advance(hours=1)
    with core.transaction() as session:
        student = find_student(session, "24M1001")
        set_second_password(session, student, "Kx7mQp2z", later)
    with core.transaction() as session:
        student = find_student(session, "24M1001")
        assert student.second_password_hash.startswith("$argon2id$")
        assert "Kx7mQp2z" not in student.second_password_hash
        assert verify_password(student.second_password_hash, "Kx7mQp2z")
        assert not verify_password(student.second_password_hash, "Kx7mQp2Z")
        assert student.updated_at == later
        assert student.created_at == later - timedelta(hours=1)
        row_values = [str(getattr(student, column.key)) for column in Student.__table__.columns]
        assert not any("Kx7mQp2z" in value for value in row_values)


@pytest.mark.parametrize(("password", "codes"), [
    ("short1A", ("too_short",)),
    ("Ｋx7mQp2z", ("invalid_char",)),
    ("Password1", ("too_common",)),
    ("Ab24m1001", ("contains_student_number",)),
    ("ab 24m1001", ("no_upper", "invalid_char", "contains_student_number")),
])
def test_set_second_password_refuses_weak_passwords(core, password, codes):
    with core.transaction() as session:
        student = create_student(session, student_number="24M1001", department="medicine", year=3, now=core.now())
        with pytest.raises(WeakSecondPassword) as caught:
            set_second_password(session, student, password, core.now())
        assert caught.value.violations == codes
        assert caught.value.message_args() == {"violations": codes}
        assert student.second_password_hash is None
    with core.transaction() as session:
        assert find_student(session, "24M1001").second_password_hash is None


def test_set_second_password_weak_password_keeps_the_previous_hash(core):
    with core.transaction() as session:
        student = create_student(session, student_number="24M1001", department="medicine", year=3, now=core.now())
        set_second_password(session, student, "Kx7mQp2z", core.now())
        before = student.second_password_hash
        with pytest.raises(WeakSecondPassword):
            set_second_password(session, student, "weak", core.now())
        assert student.second_password_hash == before


# --- import_students_csv: the happy path ---------------------------------------------------------------------

def test_import_creates_students(core, tmp_path):
    path = write_csv(tmp_path, HEADER
                     + "24M1001,medicine,3,山田 太郎,taro@example.ac.jp,ja\n"
                     + "22n-2002,nursing,4,Emily Tanaka,emily@example.ac.jp,en\n"
                     + "２５Ｇ４００１,graduate,1,,,\n")
    assert import_file(core, path) == ImportResult(created=3, updated=0)
    with core.transaction() as session:
        taro = find_student(session, "24M1001")
        assert (taro.department, taro.year, taro.name, taro.email) == ("medicine", 3, "山田 太郎",
                                                                      "taro@example.ac.jp")
        assert taro.preferred_language is Language.JA
        assert taro.email_verified_at == core.now()
        emily = find_student(session, "22N2002")
        assert emily.student_number == "22N2002"
        assert emily.preferred_language is Language.EN
        graduate = find_student(session, "25G4001")
        assert graduate.student_number == "25G4001"
        assert graduate.name is None and graduate.email is None and graduate.email_verified_at is None
        assert graduate.preferred_language is Language.JA  # the default


def test_import_only_required_columns(core, tmp_path):
    path = write_csv(tmp_path, "student_number,department,year\n24M1001,medicine,6\n23H3001,occupational_health,4\n")
    assert import_file(core, path) == ImportResult(created=2, updated=0)
    assert student_count(core) == 2


def test_import_columns_in_any_order_with_spaces(core, tmp_path):
    path = write_csv(tmp_path, " year , student_number ,department\n 2 , 23N2001 , nursing \n")
    assert import_file(core, path) == ImportResult(created=1, updated=0)
    with core.transaction() as session:
        student = find_student(session, "23N2001")
        assert (student.department, student.year) == ("nursing", 2)


def test_import_reads_a_bom(core, tmp_path):
    path = write_csv(tmp_path, HEADER + "24M1001,medicine,3,山田 太郎,,ja\n", encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert import_file(core, path) == ImportResult(created=1, updated=0)
    with core.transaction() as session:
        assert find_student(session, "24M1001").name == "山田 太郎"


def test_import_windows_line_endings(core, tmp_path):
    path = write_csv(tmp_path, (HEADER + "24M1001,medicine,3,山田 太郎,,ja\n").replace("\n", "\r\n"))
    assert import_file(core, path) == ImportResult(created=1, updated=0)


def test_import_skips_blank_lines(core, tmp_path):
    path = write_csv(tmp_path, HEADER + "\n24M1001,medicine,3,,,\n\n,,,,,\n  \n23N2001,nursing,2,,,\n\n")
    assert import_file(core, path) == ImportResult(created=2, updated=0)
    assert student_count(core) == 2


def test_reimport_updates_instead_of_duplicating(core, clock, tmp_path):
    first = write_csv(tmp_path, HEADER + "24M1001,medicine,3,山田 太郎,taro@example.ac.jp,ja\n"
                      + "23N2001,nursing,2,高橋 美咲,misaki@example.ac.jp,ja\n", name="first.csv")
    assert import_file(core, first) == ImportResult(created=2, updated=0)
    created_at = core.now()
    later = clock.advance(days=30)
    second = write_csv(tmp_path, HEADER + "24m1001,medicine,4,,taro.new@example.ac.jp,en\n"
                       + "23N2001,nursing,3,高橋 美咲,,ja\n"
                       + "21M1003,medicine,6,鈴木 一郎,,ja\n", name="second.csv")
    assert import_file(core, second) == ImportResult(created=1, updated=2)
    assert student_count(core) == 3
    with core.transaction() as session:
        taro = find_student(session, "24M1001")
        assert taro.year == 4
        assert taro.name == "山田 太郎"  # a blank name keeps the old one
        assert taro.email == "taro.new@example.ac.jp"
        assert taro.email_verified_at == later
        assert taro.preferred_language is Language.EN
        assert taro.created_at == created_at and taro.updated_at == later
        misaki = find_student(session, "23N2001")
        assert misaki.year == 3
        assert misaki.email == "misaki@example.ac.jp"  # a blank email keeps the old one
        assert misaki.email_verified_at == created_at
        assert find_student(session, "21M1003").created_at == later


def test_reimport_same_email_keeps_verification_time(core, clock, tmp_path):
    path = write_csv(tmp_path, HEADER + "24M1001,medicine,3,,taro@example.ac.jp,ja\n")
    import_file(core, path)
    first = core.now()
    clock.advance(days=1)
    assert import_file(core, path) == ImportResult(created=0, updated=1)
    with core.transaction() as session:
        assert find_student(session, "24M1001").email_verified_at == first


def test_reimport_keeps_second_password(core, tmp_path):
    with core.transaction() as session:
        student = create_student(session, student_number="24M1001", department="medicine", year=3, now=core.now())
        set_second_password(session, student, "Kx7mQp2z", core.now())
    import_file(core, write_csv(tmp_path, HEADER + "24M1001,medicine,4,,,\n"))
    with core.transaction() as session:
        assert verify_password(find_student(session, "24M1001").second_password_hash, "Kx7mQp2z")


# --- import_students_csv: all or nothing ---------------------------------------------------------------------

def assert_import_fails(core, path: Path, *expected: str) -> StudentImportError:
    """The import raises StudentImportError mentioning each expected text; nothing of the file is imported."""
    before = snapshot(core)
    with pytest.raises(StudentImportError) as caught, core.transaction() as session:
        import_students_csv(session, path, core.profile, core.now())
    message = str(caught.value)
    assert str(path) in message
    for text in expected:
        assert text in message, f"{text!r} not in {message!r}"
    assert snapshot(core) == before
    return caught.value


def test_bad_row_in_the_middle_imports_nothing(core, existing, tmp_path):
    path = write_csv(tmp_path, HEADER
                     + "24M1001,medicine,5,山田 太郎,taro.changed@example.ac.jp,en\n"   # line 2: an update
                     + "23N2001,nursing,2,,,\n"                                        # line 3
                     + "22N2002,law,2,,,\n"                                            # line 4: bad department
                     + "21M1003,medicine,6,,,\n")                                      # line 5
    error = assert_import_fails(core, path, "line 4", "law")
    assert [e.line for e in error.errors] == [4]
    assert student_count(core) == 1


def test_bad_last_row_imports_nothing(core, existing, tmp_path):
    path = write_csv(tmp_path, HEADER
                     + "24M1001,medicine,5,,,en\n"
                     + "23N2001,nursing,2,,,\n"
                     + "22N2002,nursing,2,,,\n"
                     + "21M1003,medicine,6,,,\n"
                     + "25G4001,graduate,5,,,\n")                                      # line 6: year 5 > 4
    error = assert_import_fails(core, path, "line 6", "year")
    assert [e.line for e in error.errors] == [6]
    assert student_count(core) == 1


def test_bad_last_row_without_final_newline(core, existing, tmp_path):
    path = write_csv(tmp_path, HEADER + "23N2001,nursing,2,,,\n25G4001,graduate,2,,,fr")
    assert_import_fails(core, path, "line 3", "fr")


def test_every_bad_row_is_reported(core, tmp_path):
    path = write_csv(tmp_path, HEADER
                     + "24M1001,medicine,7,,,\n"          # 2: year
                     + "23N2001,nursing,2,,,\n"           # 3: fine
                     + "2024N2001,nursing,2,,,\n"         # 4: number pattern
                     + "22N2002,nursing,2,,,de\n"         # 5: language
                     + "21M1003,medicine,6,,not-an-address,\n")  # 6: email
    error = assert_import_fails(core, path, "line 2", "line 4", "line 5", "line 6", "2024N2001")
    assert sorted({e.line for e in error.errors}) == [2, 4, 5, 6]
    assert "line 3" not in str(error)
    assert student_count(core) == 0


def test_every_bad_field_of_a_row_is_reported_in_field_order(core, tmp_path):
    path = write_csv(tmp_path, HEADER + "2024N2001,law,0,長" + "長" * 200 + ",a b@example.jp,fr\n")
    error = assert_import_fails(core, path)
    assert [(e.line, e.message) for e in error.errors] == [
        (2, "student_number '2024N2001' does not match [0-9]{2}[A-Z][0-9]{4}"),  # the pattern's braces kept
        (2, "department 'law' is not one of medicine, nursing, occupational_health, graduate"),
        (2, "year '0' is not a whole number from 1 to 10"),  # no known department: its limit is not known
        (2, "email is not a usable address (spaces)"),
        (2, "name is longer than 200 characters"),
        (2, "language 'fr' is not ja or en"),
    ]


def test_a_row_whose_number_is_bad_does_not_count_as_seen(core, tmp_path):
    path = write_csv(tmp_path, HEADER + "24M1001,medicine,9,,,\n24M1001,medicine,3,,,\n")
    error = assert_import_fails(core, path)
    assert [(e.line, e.message) for e in error.errors] == [(2, "year '9' is not a whole number from 1 to 6")]


def test_line_numbers_count_the_blank_lines(core, tmp_path):
    # header = line 1, a row on line 2, blank line 3, a bad row on line 4
    path = write_csv(tmp_path, HEADER + "23N2001,nursing,2,,,\n\n24M1001,medicine,9,,,\n")
    error = assert_import_fails(core, path, "line 4")
    assert [e.line for e in error.errors] == [4]


@pytest.mark.parametrize(("header", "expected"), [
    ("student_number,department\n", ["missing column(s): year"]),
    ("number,department,year\n", ["missing column(s): student_number", "unknown column(s): number"]),
    ("student_number,department,year,phone\n", ["unknown column(s): phone"]),
    ("Student_Number,department,year\n", ["student_number", "Student_Number"]),
    ("", ["missing column(s): student_number, department, year"]),
])
def test_missing_and_unknown_columns(core, tmp_path, header, expected):
    path = write_csv(tmp_path, header + ("24M1001,medicine,3,x\n" if header else ""))
    error = assert_import_fails(core, path, "line 1", *expected)
    assert [e.line for e in error.errors] == [1]


def test_duplicate_number_within_a_file(core, tmp_path):
    path = write_csv(tmp_path, HEADER + "24M1001,medicine,3,,,\n23N2001,nursing,2,,,\n２４ｍ－１００１,medicine,4,,,\n")
    error = assert_import_fails(core, path, "line 4", "24M1001", "line 2")
    assert [e.line for e in error.errors] == [4]


@pytest.mark.parametrize(("department", "year", "line_text"), [
    ("medicine", "7", "from 1 to 6"),
    ("medicine", "6", None),
    ("nursing", "5", "from 1 to 4"),
    ("occupational_health", "5", "from 1 to 4"),
    ("graduate", "5", "from 1 to 4"),
    ("nursing", "0", "year '0'"),
    ("nursing", "-1", "year '-1'"),
    ("nursing", "2.5", "year '2.5'"),
    ("nursing", "two", "year 'two'"),
    ("nursing", "", "year ''"),
    ("nursing", "²", "year"),  # a superscript digit: str.isdigit() says yes, int() says no
])
def test_year_must_fit_the_department(core, tmp_path, department, year, line_text):
    path = write_csv(tmp_path, HEADER + f"24M1001,{department},{year},,,\n")
    if line_text is None:
        assert import_file(core, path) == ImportResult(created=1, updated=0)
    else:
        assert_import_fails(core, path, "line 2", line_text)


@pytest.mark.parametrize("department", ["law", "Medicine", "", "医学科"])
def test_unknown_department(core, tmp_path, department):
    path = write_csv(tmp_path, HEADER + f"24M1001,{department},3,,,\n")
    assert_import_fails(core, path, "line 2", "department", "medicine, nursing, occupational_health, graduate")


@pytest.mark.parametrize("language", ["fr", "english", "日本語"])
def test_bad_language(core, tmp_path, language):
    path = write_csv(tmp_path, HEADER + f"24M1001,medicine,3,,,{language}\n")
    assert_import_fails(core, path, "line 2", f"language {language!r}")


@pytest.mark.parametrize("number", ["24M100", "24MM1001", "X4M1001", "24M10011", "24"])
def test_bad_student_number(core, tmp_path, number):
    path = write_csv(tmp_path, HEADER + f"{number},medicine,3,,,\n")
    assert_import_fails(core, path, "line 2", "student_number")


def test_missing_required_value(core, tmp_path):
    path = write_csv(tmp_path, HEADER + ",medicine,3,,,\n24M1001,,3,,,\n")
    error = assert_import_fails(core, path, "line 2", "line 3")
    assert {e.line for e in error.errors} == {2, 3}


def test_row_with_more_fields_than_the_header_is_reported(core, tmp_path):
    # An unquoted comma in a name shifts the row: "Tanaka" becomes the name and " Emily" has no column.
    path = write_csv(tmp_path, "student_number,department,year,name\n22N2002,nursing,4,Tanaka, Emily\n")
    assert_import_fails(core, path, "line 2")


def test_overlong_name_is_reported_as_a_bad_row(core, tmp_path):
    # students.name is VARCHAR(200): on PostgreSQL a longer name fails at the database, on SQLite it is stored.
    path = write_csv(tmp_path, HEADER + "23N2001,nursing,2,,,\n" + "24M1001,medicine,3," + "長" * 201 + ",,ja\n")
    assert_import_fails(core, path, "line 3", "name")


def test_non_utf8_file_is_reported_as_an_import_error(core, tmp_path):
    # Excel on a Japanese Windows saves "CSV" as Shift_JIS (cp932).
    path = write_csv(tmp_path, HEADER + "24M1001,medicine,3,山田 太郎,,ja\n", encoding="cp932")
    assert_import_fails(core, path)


def test_failed_import_leaves_the_surrounding_transaction_usable(core, existing, tmp_path):
    bad = write_csv(tmp_path, HEADER + "23N2001,nursing,2,,,\n24M1001,medicine,99,,,\n")
    with core.transaction() as session:
        with pytest.raises(StudentImportError):
            import_students_csv(session, bad, core.profile, core.now())
        create_student(session, student_number="21M1003", department="medicine", year=6, now=core.now())
    with core.transaction() as session:
        assert find_student(session, "23N2001") is None
        assert find_student(session, "21M1003") is not None
        assert find_student(session, "24M1001").year == 3


# --- demo students -------------------------------------------------------------------------------------------

def test_load_demo_students(core, clock):
    expected_rows = DEMO_STUDENTS.read_text(encoding="utf-8").strip().splitlines()[1:]
    with core.transaction() as session:
        result = load_demo_students(session, core.profile, core.now())
    assert result == ImportResult(created=len(expected_rows), updated=0)
    assert result.created == 7
    with core.transaction() as session:
        emily = find_student(session, "22N2002")
        assert (emily.department, emily.year, emily.name) == ("nursing", 4, "Emily Tanaka")
        assert emily.preferred_language is Language.EN
        hanako = find_student(session, "25M1002")
        assert hanako.email is None and hanako.email_verified_at is None
        departments = set(session.scalars(select(Student.department)))
        assert departments == {d.code for d in core.profile.departments}
    clock.advance(days=1)
    with core.transaction() as session:
        assert load_demo_students(session, core.profile, core.now()) == ImportResult(created=0, updated=7)
    assert student_count(core) == 7
