"""Masking: emails, student numbers and one-time link tokens never reach a log line in clear."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.masking import (
    PASSWORD_MASK,
    _cards_and_tokens_masked,
    _replaced,
    find_password_candidates,
    mask_email,
    mask_secrets,
    mask_student_number,
    mask_text,
    mask_token,
)
from core.profile import load_profile

PATTERN = load_profile().student_number_pattern


@pytest.mark.parametrize(("email", "expected"), [
    ("taro.yamada@example.ac.jp", "t***@example.ac.jp"),
    ("gakusei@mbox.pub.uoeh-u.ac.jp", "g***@mbox.pub.uoeh-u.ac.jp"),
    ("a@example.jp", "a***@example.jp"),
    ("no-at-sign", "***"),
    ("", "-"),
    (None, "-"),
])
def test_mask_email(email, expected):
    assert mask_email(email) == expected
    if email:
        assert email not in mask_email(email)


@pytest.mark.parametrize("email", ["taro.yamada@example.ac.jp", "x1@y.jp", "24m1001@students.example.ac.jp"])
def test_mask_email_hides_the_local_part(email):
    local = email.partition("@")[0]
    masked = mask_email(email)
    assert local[1:] not in masked
    assert masked.endswith("@" + email.partition("@")[2])


@pytest.mark.parametrize(("number", "expected"), [
    ("24M1001", "24***01"),
    ("2024M10011", "20******11"),
    ("24M1", "****"),
    ("24M", "***"),
    ("", "-"),
    (None, "-"),
])
def test_mask_student_number(number, expected):
    assert mask_student_number(number) == expected
    if number:
        assert number not in mask_student_number(number)


@pytest.mark.parametrize("token", [
    "Xq3vT9aLmN0pR7sK2wY5zB8cD1eF4gH6",
    "abcdefgh",
    "abcde",
    "abcd",   # a short token must not be shown whole
    "abc",
])
def test_mask_token_never_shows_the_whole_token(token):
    masked = mask_token(token)
    assert token not in masked
    assert masked != "-"


def test_mask_token_shows_only_a_prefix():
    assert mask_token("Xq3vT9aLmN0pR7sK2wY5zB8cD1eF4gH6") == "Xq3v…"
    assert mask_token(None) == mask_token("") == "-"


def test_mask_text_masks_emails_links_and_numbers():
    token = "Xq3vT9aLmN0pR7sK2wY5zB8cD1eF4gH6-_"
    text = (f"学籍番号 24M1001 の山田です。taro.yamada@example.ac.jp に届いた "
            f"https://madoguchi.example.ac.jp/links/{token} が開けません。"
            "cc: Misaki.Takahashi+cert@students.example.ac.jp")
    masked = mask_text(text, PATTERN)
    for secret in ("24M1001", "taro.yamada", "taro.yamada@example.ac.jp", token, token[:8],
                   "Misaki.Takahashi", "Misaki.Takahashi+cert@students.example.ac.jp"):
        assert secret not in masked, secret
    assert "24***01" in masked
    assert "t***@example.ac.jp" in masked
    assert "/links/[token]" in masked
    assert "M***@students.example.ac.jp" in masked
    assert masked.startswith("学籍番号 ") and "の山田です。" in masked and masked.endswith("students.example.ac.jp")


def test_mask_text_leaves_other_text_alone():
    text = "在学証明書を2通、郵送でお願いします。TEL 093-691-7211"
    assert mask_text(text, PATTERN) == text
    assert mask_text("") == ""


def test_mask_text_masks_numbers_only_when_given_the_pattern():
    assert mask_text("24M1001") == "24M1001"
    assert mask_text("24M1001", PATTERN) == "24***01"


def test_mask_text_masks_several_numbers_and_lower_case():
    masked = mask_text("24m1001 と 23N2001 と 22n2002", PATTERN)
    for number in ("24m1001", "23N2001", "22n2002"):
        assert number not in masked
    assert masked == "24***01 と 23***01 と 22***02"


def test_mask_text_email_whose_local_part_is_a_student_number():
    masked = mask_text("24m1001@students.example.ac.jp", PATTERN)
    assert "24m1001" not in masked.lower()


def test_mask_text_short_link_paths_are_not_tokens():
    assert mask_text("/links/abc") == "/links/abc"
    assert mask_text("/links/abcdefgh?x=1") == "/links/[token]?x=1"


@pytest.mark.parametrize("typed", [
    "２４Ｍ１００１",   # full-width, as a Japanese IME types it
    "２４ｍ１００１",
    "24M-1001",
    "２４Ｍ－１００１",
])
def test_mask_text_masks_student_numbers_as_students_type_them(typed):
    """The bot accepts these forms as a student number (normalize_student_number), so masking must too."""
    masked = mask_text(f"学籍番号は{typed}です", PATTERN)
    assert typed not in masked
    assert "1001" not in masked and "１００１" not in masked


def _masked_the_long_way(text: str) -> str:
    """mask_secrets without its shortcut for text with no digit and no link: every candidate looked for."""
    return _cards_and_tokens_masked(_replaced(text, set(find_password_candidates(text)), PASSWORD_MASK))


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80))
def test_the_shortcut_for_text_without_digits_masks_what_the_long_way_masks(text):
    assert mask_secrets(text) == _masked_the_long_way(text)


@pytest.mark.parametrize("text", [
    "パスワードは abc123xyz です", "card 4242 4242 4242 4242", "https://example.ac.jp/links/AbCdEfGhIjKl?lang=ja",
    "受け取り方", "intent:window_pickup_howto", "my password is hunter22", "password: correcthorse",
])
def test_text_with_or_without_digits_is_masked_as_the_long_way_masks_it(text):
    assert mask_secrets(text) == _masked_the_long_way(text)
    assert ("[password]" in mask_secrets(text)) == ("abc123xyz" in text or "hunter22" in text)
