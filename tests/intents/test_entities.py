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
    # Short forms, hiragana and romaji (three spellings of 証明書), as students type them.
    ("在証ほしい", [(ItemCode.ENROLLMENT_CERTIFICATE, "在証")]),
    ("ざいがくしょうめいしょください", [(ItemCode.ENROLLMENT_CERTIFICATE, "ざいがくしょうめいしょ")]),
    ("Zaigaku Shoumeisho 2 tsu", [(ItemCode.ENROLLMENT_CERTIFICATE, "Zaigaku Shoumeisho")]),
    ("zaigaku shomeisho", [(ItemCode.ENROLLMENT_CERTIFICATE, "zaigaku shomeisho")]),
    ("zaigaku syoumeisyo", [(ItemCode.ENROLLMENT_CERTIFICATE, "zaigaku syoumeisyo")]),
    ("せいせきしょうめいしょ", [(ItemCode.TRANSCRIPT, "せいせきしょうめいしょ")]),
    ("seiseki shomeisho onegai", [(ItemCode.TRANSCRIPT, "seiseki shomeisho")]),
    ("grades cert please", [(ItemCode.TRANSCRIPT, "grades cert")]),
    ("そつぎょうみこみしょうめいしょ", [(ItemCode.EXPECTED_GRADUATION_CERTIFICATE, "そつぎょうみこみしょうめいしょ")]),
    ("sotsugyo mikomi", [(ItemCode.EXPECTED_GRADUATION_CERTIFICATE, "sotsugyo mikomi")]),
    ("見込み証明書", [(ItemCode.EXPECTED_GRADUATION_CERTIFICATE, "見込み証明書")]),
    ("がくせいしょうなくした", [(ItemCode.STUDENT_ID_REISSUE, "がくせいしょう")]),
    ("gakuseisho no saihakko", [(ItemCode.STUDENT_ID_REISSUE, "gakuseisho")]),
    ("lost my gakusei shou", [(ItemCode.STUDENT_ID_REISSUE, "gakusei shou")]),
    ("IDカードをなくした", [(ItemCode.STUDENT_ID_REISSUE, "IDカード")]),
    ("傷害保険の継続", [(ItemCode.INSURANCE_RENEWAL, "傷害保険の継続")]),
    # Words that look like an item but are something else.
    ("受け取りは明日の見込みです", []),  # 見込み alone is "expected", not the certificate
    ("存在証明", []),
    ("学生証明書がほしい", []),  # the student ID or a certificate of enrollment? not guessed
    ("国民健康保険", []),
    ("保険証で本人確認できる？", []),
    ("my health insurance card", []),
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
    ("ローソンで現金払い", [(PaymentMethod.CONVENIENCE_STORE, "ローソン"), (PaymentMethod.CONVENIENCE_STORE, "現金")]),
    ("pay cash at lawson", [(PaymentMethod.CONVENIENCE_STORE, "cash"), (PaymentMethod.CONVENIENCE_STORE, "lawson")]),
    # A choice set aside is no choice.
    ("PayPayやめてクレカで", [(PaymentMethod.CREDIT_CARD, "クレカ")]),
    ("credit card instead of paypay", [(PaymentMethod.CREDIT_CARD, "credit card")]),
    # Cash is paid only at a convenience store.
    ("げんきんで はらいます", [(PaymentMethod.CONVENIENCE_STORE, "げんきん")]),
    # The store already talked of, named by a plain word.
    ("can I use my card at the store?", [(PaymentMethod.CREDIT_CARD, "card"),
                                         (PaymentMethod.CONVENIENCE_STORE, "at the store")]),
    ("お店でPayPay使える？", [(PaymentMethod.CONVENIENCE_STORE, "お店"), (PaymentMethod.PAYPAY, "PayPay")]),
    # Brands and slang in katakana, hiragana, romaji and English.
    ("くれかでいい？", [(PaymentMethod.CREDIT_CARD, "くれか")]),
    ("kureka ok?", [(PaymentMethod.CREDIT_CARD, "kureka")]),
    ("AMEXとダイナース", [(PaymentMethod.CREDIT_CARD, "AMEX"), (PaymentMethod.CREDIT_CARD, "ダイナース")]),
    ("d払いできる？", [(PaymentMethod.CARRIER, "d払い")]),
    ("ケータイ払い", [(PaymentMethod.CARRIER, "ケータイ払い")]),
    ("auかんたん決済で", [(PaymentMethod.CARRIER, "auかんたん決済")]),
    ("ソフトバンクまとめて支払い", [(PaymentMethod.CARRIER, "ソフトバンクまとめて支払い")]),
    ("add it to my phone bill", [(PaymentMethod.CARRIER, "phone bill")]),
    ("carrier billing", [(PaymentMethod.CARRIER, "carrier billing")]),
    ("ぺいじー", [(PaymentMethod.PAY_EASY, "ぺいじー")]),
    ("payeasy", [(PaymentMethod.PAY_EASY, "payeasy")]),
    ("ぺいぺいで", [(PaymentMethod.PAYPAY, "ぺいぺい")]),
    ("らいんぺい", [(PaymentMethod.LINE_PAY, "らいんぺい")]),
    ("LinePay", [(PaymentMethod.LINE_PAY, "LinePay")]),
    ("あっぷるぺい", [(PaymentMethod.APPLE_PAY, "あっぷるぺい")]),
    ("ApplePay", [(PaymentMethod.APPLE_PAY, "ApplePay")]),
    ("めるぺい", [(PaymentMethod.MERPAY, "めるぺい")]),
    ("コンビニ決済", [(PaymentMethod.CONVENIENCE_STORE, "コンビニ決済")]),
    ("コンビニ現金払いにする", [(PaymentMethod.CONVENIENCE_STORE, "コンビニ現金払い")]),
    # Words that name a card only near a word of paying, a payment method or a store.
    ("VISA/Master/JCB", [(PaymentMethod.CREDIT_CARD, form) for form in ("VISA", "Master", "JCB")]),
    ("VISA、Master、JCB", [(PaymentMethod.CREDIT_CARD, form) for form in ("VISA", "Master", "JCB")]),
    ("can I pay with my visa?", [(PaymentMethod.CREDIT_CARD, "visa")]),
    ("is visa accepted", [(PaymentMethod.CREDIT_CARD, "visa")]),
    ("マスターで払える？", [(PaymentMethod.CREDIT_CARD, "マスター")]),
    ("can I pay by cc?", [(PaymentMethod.CREDIT_CARD, "cc")]),
    ("カードで払える？", [(PaymentMethod.CREDIT_CARD, "カード")]),
    ("カード使える？", [(PaymentMethod.CREDIT_CARD, "カード")]),
    ("do you accept cards?", [(PaymentMethod.CREDIT_CARD, "cards")]),
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
    ("ゆうそうで", [(DeliveryMethod.MAIL, "ゆうそう")]),
    ("yusou de onegai", [(DeliveryMethod.MAIL, "yusou")]),
    ("by post please", [(DeliveryMethod.MAIL, "by post")]),
    ("郵便番号は？", []),
    ("学内のプリンターで", [(DeliveryMethod.CAMPUS_PRINTER, "学内のプリンター")]),
    ("the campus printer", [(DeliveryMethod.CAMPUS_PRINTER, "campus printer")]),
    ("まるちこぴーき", [(DeliveryMethod.CONVENIENCE_STORE, "まるちこぴーき")]),
    ("窓口で受け取りたい", [(DeliveryMethod.WINDOW_PICKUP, "窓口で受け取")]),
    ("window pick-up", [(DeliveryMethod.WINDOW_PICKUP, "window pick-up")]),
]


@pytest.mark.parametrize(("text", "expected"), DELIVERIES)
def test_delivery_methods(extractor: EntityExtractor, text: str, expected: list) -> None:
    assert found(extractor, text, EntityType.DELIVERY_METHOD) == expected


def methods(extractor: EntityExtractor, text: str) -> list[tuple[EntityType, object, str]]:
    return [
        (entity_type, value, form)
        for entity_type in (EntityType.PAYMENT_METHOD, EntityType.DELIVERY_METHOD)
        for value, form in found(extractor, text, entity_type)
    ]


PAY, DELIVER = EntityType.PAYMENT_METHOD, EntityType.DELIVERY_METHOD
STORES = [
    # A store with a payment method named is paying there: the bot must answer "cash only", not "yes, card".
    (
        "セブンでクレカ使える?",
        [(PAY, PaymentMethod.CONVENIENCE_STORE, "セブン"), (PAY, PaymentMethod.CREDIT_CARD, "クレカ")],
    ),
    (
        "credit card at 7-eleven",
        [(PAY, PaymentMethod.CREDIT_CARD, "credit card"), (PAY, PaymentMethod.CONVENIENCE_STORE, "7-eleven")],
    ),
    (
        "Can I pay by Credit Card at 7-Eleven?",
        [(PAY, PaymentMethod.CREDIT_CARD, "Credit Card"), (PAY, PaymentMethod.CONVENIENCE_STORE, "7-Eleven")],
    ),
    (
        "ファミマでPayPay使えます？",
        [(PAY, PaymentMethod.CONVENIENCE_STORE, "ファミマ"), (PAY, PaymentMethod.PAYPAY, "PayPay")],
    ),
    (
        "ローソンでカードいける？",
        [(PAY, PaymentMethod.CONVENIENCE_STORE, "ローソン"), (PAY, PaymentMethod.CREDIT_CARD, "カード")],
    ),
    ("visa at lawson?", [(PAY, PaymentMethod.CREDIT_CARD, "visa"), (PAY, PaymentMethod.CONVENIENCE_STORE, "lawson")]),
    ("こんびにで払いたい", [(PAY, PaymentMethod.CONVENIENCE_STORE, "こんびに")]),
    ("ｾﾌﾞﾝで払える？", [(PAY, PaymentMethod.CONVENIENCE_STORE, "ｾﾌﾞﾝ")]),
    ("7/11で払える？", [(PAY, PaymentMethod.CONVENIENCE_STORE, "7/11")]),
    ("konbini de harau", [(PAY, PaymentMethod.CONVENIENCE_STORE, "konbini")]),
    # Printing there.
    ("セブイレで出せる？", [(DELIVER, DeliveryMethod.CONVENIENCE_STORE, "セブイレ")]),
    ("ふぁみまで印刷", [(DELIVER, DeliveryMethod.CONVENIENCE_STORE, "ふぁみま")]),
    ("seven eleven print", [(DELIVER, DeliveryMethod.CONVENIENCE_STORE, "seven eleven")]),
    ("can I print at family mart", [(DELIVER, DeliveryMethod.CONVENIENCE_STORE, "family mart")]),
    (
        "ろーそんのマルチコピー機",
        [
            (DELIVER, DeliveryMethod.CONVENIENCE_STORE, "ろーそん"),
            (DELIVER, DeliveryMethod.CONVENIENCE_STORE, "マルチコピー機"),
        ],
    ),
    ("CVS print ok?", [(DELIVER, DeliveryMethod.CONVENIENCE_STORE, "CVS")]),
    ("セブン-イレブンで取れる？", [(DELIVER, DeliveryMethod.CONVENIENCE_STORE, "セブン-イレブン")]),
    # Printing there and paying by card: the nearer cue decides the store.
    (
        "セブンで印刷してクレカで払う",
        [(PAY, PaymentMethod.CREDIT_CARD, "クレカ"), (DELIVER, DeliveryMethod.CONVENIENCE_STORE, "セブン")],
    ),
    # Nothing says which.
    ("famima", []),
    ("セブン", []),
    ("セブンティーン", []),
    ("seven copies", []),
    ("セブン銀行で払える？", []),
]


@pytest.mark.parametrize(("text", "expected"), STORES)
def test_store_names_mean_paying_or_printing_there(extractor: EntityExtractor, text: str, expected: list) -> None:
    assert methods(extractor, text) == expected


NOT_PAYMENTS = [
    "my student visa needs an enrollment certificate",
    "I need a transcript for my visa, can I get it today?",
    "visa renewal fee",
    "visa",
    "I'm a master student",
    "master's degree",
    "マスター課程の学生です",
    "cc: my advisor",
    "cc'd my professor",
    "100cc",
    "lost my card",
    "学生証のカードをなくした",
    "学生証のカードで払える？",
    "パスカードを再発行したい",
    "駐車場のカード",
    "ICカードで払える？",
    "マイナンバーカード",
    "student ID card",
    "debit card payment",
    "in august",
    "au pay",
    "au revoir",
]


@pytest.mark.parametrize("text", NOT_PAYMENTS)
def test_words_that_only_look_like_a_payment_method(extractor: EntityExtractor, text: str) -> None:
    assert found(extractor, text, EntityType.PAYMENT_METHOD) == []


def test_a_card_word_with_a_paying_word_elsewhere_in_the_message(extractor: EntityExtractor) -> None:
    text = "I need a transcript for my visa, can I pay by card?"
    assert found(extractor, text, EntityType.PAYMENT_METHOD) == [(PaymentMethod.CREDIT_CARD, "pay by card")]
    assert found(extractor, text, EntityType.ITEM) == [(ItemCode.TRANSCRIPT, "transcript")]


def test_the_student_id_card_stays_an_item(extractor: EntityExtractor) -> None:
    for text in ("lost my student ID card", "学生証のカードで払える？"):
        assert [entity.type for entity in extractor.extract(text, now=NOW)] == [EntityType.ITEM]


def test_seven_eleven_written_as_a_date_is_still_a_date_without_a_store_cue(extractor: EntityExtractor) -> None:
    assert found(extractor, "7/11に受け取りたい", EntityType.DATETIME) == [("2025-07-11", "7/11")]
    assert found(extractor, "can I pick it up on 7/11?", EntityType.DATETIME) == [("2025-07-11", "7/11")]
    assert found(extractor, "at 7/11 can I pay with paypay", EntityType.DATETIME) == []
    assert found(extractor, "at 7/11 can I pay with paypay", EntityType.PAYMENT_METHOD) == [
        (PaymentMethod.CONVENIENCE_STORE, "7/11"),
        (PaymentMethod.PAYPAY, "paypay"),
    ]


def test_spans_index_the_original_text_through_width_and_case(extractor: EntityExtractor) -> None:
    text = "ＶＩＳＡかＪＣＢで、セブン－イレブンで使える？"
    entities = extractor.extract(text, now=NOW)
    assert [(entity.value, text[entity.start : entity.end]) for entity in entities] == [
        (PaymentMethod.CREDIT_CARD, "ＶＩＳＡ"),
        (PaymentMethod.CREDIT_CARD, "ＪＣＢ"),
        (PaymentMethod.CONVENIENCE_STORE, "セブン－イレブン"),
    ]


def test_a_long_list_of_card_words_and_store_names_is_resolved(extractor: EntityExtractor) -> None:
    # The context of each card word and store name is looked at once, not once per other name.
    entities = extractor.extract("visa " * 1000 + "jcb セブン" * 1000, now=NOW)
    assert len(entities) == 3000


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
