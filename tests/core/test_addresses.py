"""Mailing addresses: postal codes typed as students type them, looked up in Japan Post's data offline, and each
typed part checked with a reason in both languages."""

import threading

import pytest

from core import addresses
from core.addresses import AddressProblem, Locality, MailingAddress
from core.enums import Language


@pytest.mark.parametrize("typed", ["807-8555", "8078555", "〒807-8555", "８０７－８５５５", "８０７８５５５",
                                   " 807 8555 ", "807ー8555", "〒 ８０７−８５５５"])
def test_a_postal_code_is_read_half_or_full_width_with_or_without_the_hyphen(typed):
    assert addresses.postal_code(typed) == "8078555"


@pytest.mark.parametrize(("typed", "reason"), [
    ("807-855", "postal_code_format"), ("12345678", "postal_code_format"), ("abc", "postal_code_format"),
    ("", "postal_code_format"), ("I live overseas", "abroad"), ("海外に送りたいです", "abroad"),
    ("90210-1234", "abroad"), ("K1A 0B1", "abroad"), ("send it to Vietnam", "abroad"),
])
def test_what_is_not_a_japanese_postal_code_is_refused_with_its_reason(typed, reason):
    with pytest.raises(AddressProblem) as refused:
        addresses.postal_code(typed)
    assert refused.value.reason == reason


def test_a_postal_code_gives_prefecture_city_and_town_from_japan_posts_data():
    university = addresses.look_up("8078555")
    assert (university.prefecture, university.city, university.town) == ("福岡県", "北九州市八幡西区", "医生ケ丘")
    assert str(university) == "〒807-8555 福岡県北九州市八幡西区医生ケ丘"
    assert addresses.look_up("1000001") == Locality("1000001", "東京都", "千代田区", "千代田")


def test_an_unknown_postal_code_is_named_in_the_refusal():
    with pytest.raises(AddressProblem) as refused:
        addresses.look_up("0000000")
    assert refused.value.reason == "postal_code_unknown"
    assert "000-0000" in refused.value.explain(Language.JA) and "000-0000" in refused.value.explain(Language.EN)


def test_the_street_is_the_rest_of_the_address_and_needs_a_number():
    locality = addresses.look_up("8078555")
    assert addresses.street(" 1-1  医大ハイツ 203 ", locality) == "1-1 医大ハイツ 203"
    assert addresses.street("福岡県北九州市八幡西区医生ケ丘1-1", locality) == "1-1"  # what the code gave, typed again
    assert addresses.street("医生ケ丘一丁目", locality) == "医生ケ丘一丁目"
    for typed, reason in (("", "street_empty"), ("医大ハイツ", "street_no_number"), ("x" * 81 + "1", "street_too_long"),
                          ("https://example.com/1", "street_not_address")):
        with pytest.raises(AddressProblem) as refused:
            addresses.street(typed, locality)
        assert refused.value.reason == reason


def test_the_recipient_is_a_name():
    assert addresses.recipient(" 山田　太郎 ") == "山田 太郎"
    assert addresses.recipient("Emily Tanaka") == "Emily Tanaka"
    for typed, reason in (("", "recipient_empty"), ("09012345678", "recipient_not_name"),
                          ("あ" * 41, "recipient_too_long")):
        with pytest.raises(AddressProblem) as refused:
            addresses.recipient(typed)
        assert refused.value.reason == reason


@pytest.mark.parametrize(("typed", "digits"), [
    ("090-1234-5678", "09012345678"), ("０９０ー１２３４ー５６７８", "09012345678"), ("(093) 691-7211", "0936917211"),
    ("+81 90 1234 5678", "09012345678"), ("+81-(0)93-691-7211", "0936917211"),
])
def test_a_phone_number_is_read_as_digits(typed, digits):
    assert addresses.phone(typed) == digits


@pytest.mark.parametrize("typed", ["1234", "090-1234-567", "12012345678", "電話はありません", ""])
def test_what_is_not_a_japanese_phone_number_is_refused(typed):
    with pytest.raises(AddressProblem) as refused:
        addresses.phone(typed)
    assert refused.value.reason == "phone_format"


def test_every_problem_is_explained_in_both_languages():
    for reason in ("postal_code_format", "postal_code_unknown", "abroad", "street_empty", "street_too_long",
                   "street_no_number", "street_not_address", "recipient_empty", "recipient_too_long",
                   "recipient_not_name", "phone_format"):
        problem = AddressProblem(reason, code="000-0000", max=80)
        japanese, english = problem.explain(Language.JA), problem.explain(Language.EN)
        assert japanese and english and japanese != english
    assert "学生支援課" in AddressProblem("abroad").explain(Language.JA)


def test_an_address_reads_as_on_an_envelope_and_is_masked_for_logs():
    address = MailingAddress(addresses.look_up("8078555"), "1-1", "山田 太郎", "09012345678")
    assert address.lines() == ("〒807-8555 福岡県北九州市八幡西区医生ケ丘 1-1", "山田 太郎", "09012345678")
    masked = address.masked()
    assert masked == "〒807-**** 福岡県北九州市八幡西区 ***"
    assert "山田" not in masked and "1-1" not in masked and "0901" not in masked


def test_a_postal_code_is_looked_up_from_any_thread():
    # The web app and the Rasa action server answer in worker threads; Japan Post's data must read in each.
    found: list[object] = []
    workers = [threading.Thread(target=lambda code=code: found.append(addresses.look_up.__wrapped__(code)))
               for code in ("1000001", "8078555", "0600000")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert sorted(locality.prefecture for locality in found) == ["北海道", "東京都", "福岡県"]
