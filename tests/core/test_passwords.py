"""Second-password rules (the guide's five plus ours), their messages, and argon2id hashing."""

import pytest

from core.i18n import t
from core.passwords import (
    MAX_LENGTH,
    MIN_LENGTH,
    RULES,
    check_second_password,
    common_passwords,
    hash_password,
    verify_password,
)

VALID = "Kx7mQp2z"  # 8 half-width characters: upper, lower and digit, and not a common password


def test_rule_codes_are_the_documented_ones_in_order():
    assert RULES == ("too_short", "too_long", "no_upper", "no_lower", "no_digit", "invalid_char",
                     "contains_student_number", "too_common")
    assert (MIN_LENGTH, MAX_LENGTH) == (8, 64)


@pytest.mark.parametrize(("password", "expected"), [
    # length
    pytest.param(VALID, [], id="exactly-8-valid"),
    pytest.param(VALID[:7], ["too_short"], id="7-too-short"),
    pytest.param((VALID * 8)[:64], [], id="exactly-64-valid"),
    pytest.param((VALID * 9)[:65], ["too_long"], id="65-too-long"),
    pytest.param("", ["too_short", "no_upper", "no_lower", "no_digit"], id="empty"),
    # the three character classes
    pytest.param("kx7mqp2z", ["no_upper"], id="no-upper"),
    pytest.param("KX7MQP2Z", ["no_lower"], id="no-lower"),
    pytest.param("KxymQpaz", ["no_digit"], id="no-digit"),
    pytest.param("kxymqpaz", ["no_upper", "no_digit"], id="lower-only"),
    pytest.param("73948261", ["no_upper", "no_lower"], id="digits-only"),
    # only half-width A-Z, a-z, 0-9
    pytest.param("Kx7m Qp2z", ["invalid_char"], id="inner-space"),
    pytest.param(" Kx7mQp2z", ["invalid_char"], id="leading-space"),
    pytest.param("Kx7mQp2z ", ["invalid_char"], id="trailing-space"),
    pytest.param("Kx7mQp2z\n", ["invalid_char"], id="trailing-newline"),
    pytest.param("Kx7mQp2z\t", ["invalid_char"], id="trailing-tab"),
    pytest.param("Kx7m\u3000Qp2z", ["invalid_char"], id="ideographic-space"),
    pytest.param("Kx7m-Qp2z", ["invalid_char"], id="hyphen"),
    pytest.param("Kx7m_Qp2z", ["invalid_char"], id="underscore"),
    pytest.param("Kx7m!Qp2z", ["invalid_char"], id="exclamation"),
    pytest.param("Kx7m@Qp2z#", ["invalid_char"], id="symbols"),
    pytest.param("Kx7mQp2zé", ["invalid_char"], id="accented-latin"),
    # full-width letters and digits are invalid and do not count as upper, lower or digit
    pytest.param("ＡＢＣ１２３ab", ["no_upper", "no_digit", "invalid_char"], id="full-width-upper-digits"),
    pytest.param("ＡＢＣ１２３ａ", ["too_short", "no_upper", "no_lower", "no_digit", "invalid_char"],
                 id="all-full-width-short"),
    pytest.param("ＡＢＣ１２３ａｂｃ", ["no_upper", "no_lower", "no_digit", "invalid_char"], id="all-full-width"),
    pytest.param("Kx７mQpaz", ["no_digit", "invalid_char"], id="full-width-digit-only-digit"),
    pytest.param("ｋx7mqp2z", ["no_upper", "invalid_char"], id="full-width-lower"),
    # Japanese and emoji
    pytest.param("Kx7mQp2zあ", ["invalid_char"], id="hiragana"),
    pytest.param("パスワードKx7m", ["invalid_char"], id="katakana"),
    pytest.param("産業医科Kx7mQp2z", ["invalid_char"], id="kanji"),
    pytest.param("Kx7mQp2z😀", ["invalid_char"], id="emoji"),
    pytest.param("Kx7m😀", ["too_short", "invalid_char"], id="emoji-short"),
    # common passwords, case-insensitively
    pytest.param("Password1", ["too_common"], id="Password1"),
    pytest.param("PASSWORD1", ["no_lower", "too_common"], id="PASSWORD1"),
    pytest.param("pAsSwOrD1", ["too_common"], id="pAsSwOrD1"),
    pytest.param("password", ["no_upper", "no_digit", "too_common"], id="password"),
    pytest.param("Qwerty123", ["too_common"], id="Qwerty123"),
    pytest.param("Passw0rd", ["too_common"], id="Passw0rd"),
    # several at once, in RULES order
    pytest.param("a b", ["too_short", "no_upper", "no_digit", "invalid_char"], id="several"),
    pytest.param("あ" * 65, ["too_long", "no_upper", "no_lower", "no_digit", "invalid_char"], id="long-japanese"),
])
def test_check_second_password(password, expected):
    assert check_second_password(password) == expected


@pytest.mark.parametrize(("password", "student_number", "expected"), [
    pytest.param("Xy24M1001z", "24M1001", ["contains_student_number"], id="embedded"),
    pytest.param("Xy24m1001z", "24M1001", ["contains_student_number"], id="embedded-lower-case"),
    pytest.param("XY24M1001Z", "24m1001", ["no_lower", "contains_student_number"], id="number-given-lower"),
    pytest.param("24m1001Ab", "24M1001", ["contains_student_number"], id="at-start"),
    pytest.param("Ab24m1001", " 24M1001 ", ["contains_student_number"], id="number-with-spaces"),
    pytest.param("Xy24M100z", "24M1001", [], id="partial-number-is-fine"),
    pytest.param(VALID, "24M1001", [], id="unrelated"),
    pytest.param("Xy24M1001z", None, [], id="no-number-given"),
    pytest.param("Xy24M1001z", "", [], id="empty-number"),
    pytest.param("Xy24M1001z", "   ", [], id="blank-number"),
    # every rule at once except too_long, in order
    pytest.param("24m 1001", "24M1001", ["no_upper", "invalid_char"], id="spaced-number-not-contiguous"),
    pytest.param("password", "password", ["no_upper", "no_digit", "contains_student_number", "too_common"],
                 id="number-and-common"),
])
def test_contains_student_number(password, student_number, expected):
    assert check_second_password(password, student_number) == expected


@pytest.mark.parametrize("password", [
    "", "a", "Ａ", " ", "abc", "ABCDEFGHIJ", "ab cd!", "パスワード", "x" * 70, "PASSWORD1", "24M1001x", "😀" * 9,
])
def test_violations_are_always_in_rules_order_without_duplicates(password):
    violations = check_second_password(password, "24M1001")
    assert violations == sorted(violations, key=RULES.index)
    assert len(violations) == len(set(violations))
    assert set(violations) <= set(RULES)


def test_common_password_list_is_bundled_large_and_lower_case():
    common = common_passwords()
    assert len(common) >= 1000
    assert {"password", "password1", "qwerty123", "123456"} <= common
    assert all(entry == entry.lower() and entry == entry.strip() and entry for entry in common)
    assert not any(entry.startswith("#") for entry in common)


@pytest.mark.parametrize("common", ["letmein1", "welcome1", "iloveyou1", "abc12345"])
def test_bundled_common_passwords_with_capital_are_rejected(common):
    capitalised = common[0].upper() + common[1:]
    assert "too_common" in check_second_password(capitalised)
    assert "too_common" in check_second_password(common.upper())


@pytest.mark.parametrize("code", RULES)
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_every_rule_has_a_message_in_both_languages(code, lang):
    text = t(f"passwords.rules.{code}", lang)
    assert text.strip()
    assert text != f"passwords.rules.{code}"


@pytest.mark.parametrize("code", RULES)
def test_rule_messages_are_actually_translated(code):
    ja, en = t(f"passwords.rules.{code}", "ja"), t(f"passwords.rules.{code}", "en")
    assert ja != en
    assert any("\u3040" <= ch <= "\u9fff" for ch in ja)  # Japanese script in the Japanese text
    assert en.isascii()


def test_hash_is_argon2id_and_verifies():
    hashed = hash_password(VALID)
    assert hashed.startswith("$argon2id$")
    assert hashed != VALID and VALID not in hashed
    assert verify_password(hashed, VALID) is True
    assert verify_password(hashed, "Kx7mQp2Z") is False  # one letter's case differs
    assert verify_password(hashed, VALID + " ") is False
    assert verify_password(hashed, "") is False


def test_same_password_hashes_differently_each_time():
    first, second = hash_password(VALID), hash_password(VALID)
    assert first != second  # a random salt
    assert verify_password(second, VALID)


@pytest.mark.parametrize("stored", [
    None,
    "",
    "garbage",
    "$argon2id$garbage",
    "$argon2id$v=19$m=65536,t=3,p=4$$",
    "$2b$12$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz012",  # a bcrypt hash
    VALID,  # a password stored in clear is not a hash
])
def test_verify_returns_false_for_no_or_broken_hash(stored):
    assert verify_password(stored, VALID) is False
