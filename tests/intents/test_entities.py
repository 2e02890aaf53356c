"""Entity tables: items, copies, payment and delivery methods, student numbers, emails, dates and times."""

import pytest

from core.enums import DeliveryMethod, PaymentMethod
from intents.entities import EntityExtractor
from intents.types import Entity, EntityType, ItemCode
from tests.intents.conftest import NOW


@pytest.fixture(scope="module")
def extractor() -> EntityExtractor:
    return EntityExtractor()


def found(extractor: EntityExtractor, text: str, entity_type: EntityType) -> list[tuple[object, str]]:
    entities = extractor.extract(text, now=NOW)
    for entity in entities:
        assert text[entity.start : entity.end] == entity.text
    return [(entity.value, entity.text) for entity in entities if entity.type is entity_type]


ITEMS = [
    ("在学証明書を2通ください", [(ItemCode.ENROLLMENT_CERTIFICATE, "在学証明書")]),
    ("在籍証明がほしい", [(ItemCode.ENROLLMENT_CERTIFICATE, "在籍証明")]),
    ("I need a certificate of enrollment", [(ItemCode.ENROLLMENT_CERTIFICATE, "certificate of enrollment")]),
    ("enrollment cert pls", [(ItemCode.ENROLLMENT_CERTIFICATE, "enrollment cert")]),
    ("成績証明書と成績表", [(ItemCode.TRANSCRIPT, "成績証明書"), (ItemCode.TRANSCRIPT, "成績表")]),
    ("two Transcripts please", [(ItemCode.TRANSCRIPT, "Transcripts")]),
    ("grade certificate", [(ItemCode.TRANSCRIPT, "grade certificate")]),
    ("卒業見込み証明書", [(ItemCode.EXPECTED_GRADUATION_CERTIFICATE, "卒業見込み証明書")]),
    ("卒業見込証明書を1部", [(ItemCode.EXPECTED_GRADUATION_CERTIFICATE, "卒業見込証明書")]),
    ("卒見ほしい", [(ItemCode.EXPECTED_GRADUATION_CERTIFICATE, "卒見")]),
    (
        "expected graduation certificate",
        [(ItemCode.EXPECTED_GRADUATION_CERTIFICATE, "expected graduation certificate")],
    ),
    ("学生証をなくした", [(ItemCode.STUDENT_ID_REISSUE, "学生証")]),
    ("学生証再発行の申請", [(ItemCode.STUDENT_ID_REISSUE, "学生証再発行")]),
    ("lost my Student ID card", [(ItemCode.STUDENT_ID_REISSUE, "Student ID card")]),
    ("駐車場カードが壊れた", [(ItemCode.PARKING_CARD_REISSUE, "駐車場カード")]),
    ("学生駐車場パスカード再発行", [(ItemCode.PARKING_CARD_REISSUE, "学生駐車場パスカード再発行")]),
    ("パスカードをなくした", [(ItemCode.PARKING_CARD_REISSUE, "パスカード")]),
    ("my parking card broke", [(ItemCode.PARKING_CARD_REISSUE, "parking card")]),
    ("駐車場代を払う", [(ItemCode.PARKING_FEE, "駐車場代")]),
    ("駐車料金はいくら", [(ItemCode.PARKING_FEE, "駐車料金")]),
    ("学生駐車場使用料", [(ItemCode.PARKING_FEE, "学生駐車場使用料")]),
    ("the parking fee", [(ItemCode.PARKING_FEE, "parking fee")]),
    ("傷害・賠償責任保険の継続手続き", [(ItemCode.INSURANCE_RENEWAL, "傷害・賠償責任保険の継続手続き")]),
    ("保険の更新", [(ItemCode.INSURANCE_RENEWAL, "保険の更新")]),
    ("学研災の継続", [(ItemCode.INSURANCE_RENEWAL, "学研災")]),
    ("insurance renewal", [(ItemCode.INSURANCE_RENEWAL, "insurance renewal")]),
    ("ｻﾞｲｶﾞｸ", []),
    ("成績はいつ出る", []),
]


@pytest.mark.parametrize(("text", "expected"), ITEMS)
def test_items(extractor: EntityExtractor, text: str, expected: list) -> None:
    assert found(extractor, text, EntityType.ITEM) == expected


COPIES = [
    ("在学証明書を2通", [(2, "2通")]),
    ("成績証明書２部", [(2, "２部")]),
    ("三通ください", [(3, "三通")]),
    ("十通", [(10, "十通")]),
    ("十二通", [(12, "十二通")]),
    ("一通り説明して", []),
    ("一通だけ", [(1, "一通")]),
    ("5枚ほしい", [(5, "5枚")]),
    ("two copies please", [(2, "two copies")]),
    ("3 copies", [(3, "3 copies")]),
    ("a single copy", [(1, "a single copy")]),
    ("transcript x2", [(2, "x2")]),
    ("在学証明書×3", [(3, "×3")]),
    ("証明書の一部が読めない", []),
    ("医学部の学生です", []),
    ("max2 is a name", []),
    ("0通", []),
]


@pytest.mark.parametrize(("text", "expected"), COPIES)
def test_copies(extractor: EntityExtractor, text: str, expected: list) -> None:
    assert found(extractor, text, EntityType.COPIES) == expected


PAYMENTS = [
    ("クレカ使える？", [(PaymentMethod.CREDIT_CARD, "クレカ")]),
    ("VISAかJCBで", [(PaymentMethod.CREDIT_CARD, "VISA"), (PaymentMethod.CREDIT_CARD, "JCB")]),
    ("credit card ok?", [(PaymentMethod.CREDIT_CARD, "credit card")]),
    ("ドコモ払いできる", [(PaymentMethod.CARRIER, "ドコモ払い")]),
    ("auで払いたい", [(PaymentMethod.CARRIER, "au")]),
    ("in august", []),
    ("ペイジーって何", [(PaymentMethod.PAY_EASY, "ペイジー")]),
    ("Pay-easy", [(PaymentMethod.PAY_EASY, "Pay-easy")]),
    ("ＰａｙＰａｙで", [(PaymentMethod.PAYPAY, "ＰａｙＰａｙ")]),
    ("LINE Payは？", [(PaymentMethod.LINE_PAY, "LINE Pay")]),
    ("apple payで", [(PaymentMethod.APPLE_PAY, "apple pay")]),
    ("メルペイ", [(PaymentMethod.MERPAY, "メルペイ")]),
    ("コンビニ払いで", [(PaymentMethod.CONVENIENCE_STORE, "コンビニ払い")]),
    ("コンビニで支払える？", [(PaymentMethod.CONVENIENCE_STORE, "コンビニで支払")]),
    ("ローソンで現金払い", [(PaymentMethod.CONVENIENCE_STORE, "ローソン")]),
    ("pay cash at lawson", [(PaymentMethod.CONVENIENCE_STORE, "lawson")]),
]


@pytest.mark.parametrize(("text", "expected"), PAYMENTS)
def test_payment_methods(extractor: EntityExtractor, text: str, expected: list) -> None:
    assert found(extractor, text, EntityType.PAYMENT_METHOD) == expected


DELIVERIES = [
    ("学内印刷機で出したい", [(DeliveryMethod.CAMPUS_PRINTER, "学内印刷機")]),
    ("学内プリンタ", [(DeliveryMethod.CAMPUS_PRINTER, "学内プリンタ")]),
    ("print on campus", [(DeliveryMethod.CAMPUS_PRINTER, "print on campus")]),
    ("コンビニのマルチコピー機", [(DeliveryMethod.CONVENIENCE_STORE, "コンビニのマルチコピー機")]),
    ("コンビニで印刷したい", [(DeliveryMethod.CONVENIENCE_STORE, "コンビニで印刷")]),
    ("セブンで印刷できる？", [(DeliveryMethod.CONVENIENCE_STORE, "セブン")]),
    ("multi-copy machine", [(DeliveryMethod.CONVENIENCE_STORE, "multi-copy machine")]),
    ("郵送でお願いします", [(DeliveryMethod.MAIL, "郵送")]),
    ("send it by mail", [(DeliveryMethod.MAIL, "send it by mail")]),
    ("窓口受取りにしたい", [(DeliveryMethod.WINDOW_PICKUP, "窓口受取り")]),
    ("窓口で受け取りたい", [(DeliveryMethod.WINDOW_PICKUP, "窓口で受け取")]),
    ("pick up at the window", [(DeliveryMethod.WINDOW_PICKUP, "pick up at the window")]),
    ("コンビニ", []),
]


@pytest.mark.parametrize(("text", "expected"), DELIVERIES)
def test_delivery_methods(extractor: EntityExtractor, text: str, expected: list) -> None:
    assert found(extractor, text, EntityType.DELIVERY_METHOD) == expected


STUDENT_NUMBERS = [
    ("学籍番号は24M1001です", [("24M1001", "24M1001")]),
    ("２４ｍ１００１", [("24M1001", "２４ｍ１００１")]),
    ("my id: 23n0042", [("23N0042", "23n0042")]),
    ("124M10010", []),
    ("24M100", []),
]


@pytest.mark.parametrize(("text", "expected"), STUDENT_NUMBERS)
def test_student_numbers(extractor: EntityExtractor, text: str, expected: list) -> None:
    assert found(extractor, text, EntityType.STUDENT_NUMBER) == expected


def test_student_number_pattern_is_a_parameter() -> None:
    extractor = EntityExtractor(student_number_pattern=r"[A-Z][0-9]{7}")
    assert found(extractor, "番号はb1234567です、24M1001ではない", EntityType.STUDENT_NUMBER) == [
        ("B1234567", "b1234567")
    ]


EMAILS = [
    ("Taro.Yamada@Example.ac.jp に変えたい", [("taro.yamada@example.ac.jp", "Taro.Yamada@Example.ac.jp")]),
    ("ｔａｒｏ＠ｅｘａｍｐｌｅ．ｃｏｍ", [("taro@example.com", "ｔａｒｏ＠ｅｘａｍｐｌｅ．ｃｏｍ")]),
    ("mail me at a+b@mail.example.com.", [("a+b@mail.example.com", "a+b@mail.example.com")]),
    ("not an @ address", []),
]


@pytest.mark.parametrize(("text", "expected"), EMAILS)
def test_emails(extractor: EntityExtractor, text: str, expected: list) -> None:
    assert found(extractor, text, EntityType.EMAIL) == expected


def test_a_student_number_inside_an_email_is_the_email(extractor: EntityExtractor) -> None:
    entities = extractor.extract("24M1001@st.example.ac.jp", now=NOW)
    assert [entity.type for entity in entities] == [EntityType.EMAIL]


# NOW is Monday 2025-11-24 10:00 in Tokyo.
DATETIMES = [
    ("今日行けますか", [("2025-11-24", "今日")]),
    ("明日", [("2025-11-25", "明日")]),
    ("明後日の受け取り", [("2025-11-26", "明後日")]),
    ("金曜に行く", [("2025-11-28", "金曜")]),
    ("金曜日", [("2025-11-28", "金曜日")]),
    ("金曜の16時", [("2025-11-28T16:00:00+09:00", "金曜の16時")]),
    ("来週月曜", [("2025-12-01", "来週月曜")]),
    ("来週の月曜日に", [("2025-12-01", "来週の月曜日")]),
    ("月曜", [("2025-11-24", "月曜")]),
    ("11/25", [("2025-11-25", "11/25")]),
    ("１１／２５（火）", [("2025-11-25", "１１／２５（火）")]),
    ("11月25日", [("2025-11-25", "11月25日")]),
    ("1/5に行きたい", [("2026-01-05", "1/5")]),
    ("2026年1月5日", [("2026-01-05", "2026年1月5日")]),
    ("16時", [("2025-11-24T16:00:00+09:00", "16時")]),
    ("16時半", [("2025-11-24T16:30:00+09:00", "16時半")]),
    ("16:10", [("2025-11-24T16:10:00+09:00", "16:10")]),
    ("１６：１０", [("2025-11-24T16:10:00+09:00", "１６：１０")]),
    ("午後3時", [("2025-11-24T15:00:00+09:00", "午後3時")]),
    ("午後三時", [("2025-11-24T15:00:00+09:00", "午後三時")]),
    ("明日の午前10時半", [("2025-11-25T10:30:00+09:00", "明日の午前10時半")]),
    ("3日後", [("2025-11-27", "3日後")]),
    ("today", [("2025-11-24", "today")]),
    ("tomorrow", [("2025-11-25", "tomorrow")]),
    ("next Monday", [("2025-12-01", "next Monday")]),
    ("Friday 4pm", [("2025-11-28T16:00:00+09:00", "Friday 4pm")]),
    ("at 16:10", [("2025-11-24T16:10:00+09:00", "16:10")]),
    ("Nov 25", [("2025-11-25", "Nov 25")]),
    ("25th of November", [("2025-11-25", "25th of November")]),
    ("tomorrow at 3pm", [("2025-11-25T15:00:00+09:00", "tomorrow at 3pm")]),
    ("4:30 pm tomorrow", [("2025-11-25T16:30:00+09:00", "4:30 pm tomorrow")]),
    ("2025-12-24", [("2025-12-24", "2025-12-24")]),
    ("in 3 days", [("2025-11-27", "in 3 days")]),
    ("noon", [("2025-11-24T12:00:00+09:00", "noon")]),
    ("9:00〜17:00", [("2025-11-24T09:00:00+09:00", "9:00"), ("2025-11-24T17:00:00+09:00", "17:00")]),
    ("一時的にログインできない", []),
    ("1時間かかる", []),
    ("25時", []),
    ("13/45", []),
    ("i sat down", []),
]


@pytest.mark.parametrize(("text", "expected"), DATETIMES)
def test_datetimes(extractor: EntityExtractor, text: str, expected: list) -> None:
    assert found(extractor, text, EntityType.DATETIME) == expected


def test_several_types_in_one_message(extractor: EntityExtractor) -> None:
    text = "24M1001です。金曜の16時に成績証明書を２通、窓口で受け取りたい"
    entities = extractor.extract(text, now=NOW)
    assert [(entity.type, entity.value) for entity in entities] == [
        (EntityType.STUDENT_NUMBER, "24M1001"),
        (EntityType.DATETIME, "2025-11-28T16:00:00+09:00"),
        (EntityType.ITEM, ItemCode.TRANSCRIPT),
        (EntityType.COPIES, 2),
        (EntityType.DELIVERY_METHOD, DeliveryMethod.WINDOW_PICKUP),
    ]
    assert all(isinstance(entity, Entity) for entity in entities)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "🙏" * 50,
        "a" * 10_000,
        "在学証明書" * 2_000,
        "<script>alert(1)</script>",
        "'; DROP TABLE students; --",
        "\x00\ufffd\u200d\ufe0f",
        "ｶﾞ゛゜\u3099",
        "99/99 99:99 99時99分",
        "@@@.@@ x99 ×0",
    ],
)
def test_extraction_never_raises(extractor: EntityExtractor, text: str) -> None:
    for entity in extractor.extract(text, now=NOW):
        assert text[entity.start : entity.end] == entity.text


def test_a_failing_finder_costs_only_its_own_entities(
    extractor: EntityExtractor, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object) -> list:
        raise RuntimeError("boom")

    monkeypatch.setattr("intents.entities.find_datetimes", broken)
    entities = extractor.extract("明日、在学証明書を2通", now=NOW)
    assert [entity.type for entity in entities] == [EntityType.ITEM, EntityType.COPIES]
