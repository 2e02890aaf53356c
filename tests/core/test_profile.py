"""The university profile: the shipped one holds the guide's facts; a broken one is refused by file and key."""

import copy
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.calendar import BusinessCalendar
from core.clock import TOKYO
from core.enums import DeliveryMethod, ItemKind, PaymentMethod, Service
from core.errors import UnknownItem
from core.profile import SHIPPED_PROFILE, ProfileError, UniversityProfile, load_profile
from core.students import ImportResult, find_student, import_students_csv


@pytest.fixture(scope="module")
def profile() -> UniversityProfile:
    return load_profile()


@pytest.fixture(scope="module")
def shipped_raw() -> dict[str, Any]:
    return yaml.safe_load(SHIPPED_PROFILE.read_text(encoding="utf-8"))


def write_profile(tmp_path: Path, raw: Any, name: str = "profile.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def assert_profile_error(path: Path, *keys: str) -> str:
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    message = str(caught.value)
    assert str(path) in message
    for key in keys:
        assert key in message, f"{key!r} not in {message!r}"
    return message


# --- the shipped profile holds the guide's facts -------------------------------------------------------------

def test_default_is_the_shipped_profile(profile):
    assert load_profile(None) == profile
    assert load_profile(SHIPPED_PROFILE) == profile
    assert load_profile(str(SHIPPED_PROFILE)) == profile  # type: ignore[arg-type]
    assert profile.id == "uoeh"
    assert profile.name.ja == "産業医科大学"
    assert profile.service_name("ja") == "証明書発行サービス"
    assert profile.service_operator.ja == "NTT西日本"


def test_contacts(profile):
    support = profile.contact(Service.STUDENT_SUPPORT)
    assert support.name.ja == "学生支援課"
    assert support.phone == "093-691-7211"
    assert support.email == "gakusei@mbox.pub.uoeh-u.ac.jp"
    assert (support.hours.days, support.hours.open, support.hours.close) == ("business_days", time(8, 30),
                                                                             time(17, 0))
    assert not support.hours.always
    call = profile.contact(Service.CALL_CENTER)
    assert call.phone == "082-207-4262"
    assert call.email is None
    assert (call.hours.days, call.hours.open, call.hours.close) == ("business_days", time(9, 0), time(17, 0))
    assert "支払方法" in call.handles.ja
    chat = profile.contact(Service.CHAT_SUPPORT)
    assert chat.hours.days == "every_day" and chat.hours.always
    assert set(profile.contacts) == set(Service)
    for contact in profile.contacts.values():
        assert contact.name.ja and contact.name.en and contact.handles.ja and contact.handles.en
        assert contact.hours.open.tzinfo is None and contact.hours.close.tzinfo is None


def test_departments_and_where_their_credentials_are(profile):
    codes = [d.code for d in profile.departments]
    assert codes == ["medicine", "nursing", "occupational_health", "graduate"]
    medicine = profile.department("medicine")
    assert medicine.name.ja == "医学科" and medicine.years == 6
    assert medicine.credentials_location.ja.startswith("e-ラーニング→医学部→")
    assert "〇年次掲示板（教務関係）" in medicine.credentials_location.ja
    assert medicine.credentials_location.ja.endswith("証明書発行サービスのログイン ID・PW")
    nursing = profile.department("nursing")
    assert nursing.name.ja == "看護学科" and nursing.years == 4
    assert nursing.credentials_location.ja == "e-ラーニング→看護学科→証明書発行サービスのログイン ID・PW"
    occupational = profile.department("occupational_health")
    assert occupational.name.ja == "産業衛生科学科"
    # The guide gives the 看護学科 board for 産業衛生科学科 too; the profile repeats it faithfully.
    assert occupational.credentials_location.ja == "e-ラーニング→看護学科→証明書発行サービスのログイン ID・PW"
    graduate = profile.department("graduate")
    assert graduate.name.ja == "大学院"
    assert "学生支援課" in graduate.credentials_location.ja and "学生支援課" in graduate.credentials_location.en
    with pytest.raises(KeyError):
        profile.department("law")


def test_payment_methods(profile):
    methods = [option.method for option in profile.payment_methods]
    assert methods == list(PaymentMethod)
    assert len(methods) == 8
    store = profile.payment_option(PaymentMethod.CONVENIENCE_STORE)
    assert store is not None and store.cash_only
    assert store.brands is not None
    assert [b.strip() for b in store.brands.ja.split("/")] == ["ローソン", "ファミリーマート", "セブンイレブン"]
    assert [o.method for o in profile.payment_methods if o.cash_only] == [PaymentMethod.CONVENIENCE_STORE]
    card = profile.payment_option(PaymentMethod.CREDIT_CARD)
    assert [b.strip() for b in card.brands.en.split("/")] == ["VISA", "Master", "JCB", "Diners Club",
                                                              "American Express"]
    carrier = profile.payment_option(PaymentMethod.CARRIER)
    assert carrier.brands.ja == "ドコモ / au / ソフトバンク"
    for option in profile.payment_methods:
        assert option.name.ja and option.name.en


def test_catalog(profile):
    items = profile.catalog.items
    assert len(items) == 7
    names = {item.code: item.name for item in items}
    assert names["enrollment_certificate"].ja == "在学証明書"
    assert names["transcript"].ja == "成績証明書"
    assert names["expected_graduation_certificate"].ja == "卒業見込み証明書"
    assert names["student_id_reissue"].ja == "学生証再発行料"
    assert names["parking_card_reissue"].ja == "学生駐車場パスカード再発行料"
    assert names["parking_fee"].ja == "学生駐車場使用料"
    assert names["insurance_renewal"].ja == "傷害・賠償責任保険の継続手続き"
    for item in items:
        assert item.name.ja and item.name.en and item.name.ja != item.name.en
    for code in ("student_id_reissue", "parking_card_reissue"):
        assert profile.catalog.get(code).deliveries == (DeliveryMethod.WINDOW_PICKUP,)
    parking = profile.catalog.get("parking_fee")
    assert parking.min_year == 2
    assert parking.kind is ItemKind.FEE
    assert profile.catalog.get("expected_graduation_certificate").final_year_only
    assert {i.code for i in profile.catalog.of_kind(ItemKind.CERTIFICATE)} == {
        "enrollment_certificate", "transcript", "expected_graduation_certificate"}
    with pytest.raises(UnknownItem):
        profile.catalog.get("diploma")


def test_other_shipped_facts(profile):
    assert profile.closure_days == ("12-29..01-03",)
    assert (profile.pickup.ready_at, profile.pickup.cutoff) == (time(13), time(15))
    assert profile.one_time_link_minutes == 30
    assert profile.student_number_regex.match("24M1001")
    assert not profile.student_number_regex.match("24M10011")
    assert profile.browsers.pc == ("Chrome", "FireFox", "Safari")
    assert profile.is_closure_day(date(2026, 12, 29)) and profile.is_closure_day(date(2027, 1, 3))
    assert not profile.is_closure_day(date(2026, 12, 28)) and not profile.is_closure_day(date(2027, 1, 4))


def test_profile_is_frozen(profile):
    with pytest.raises(ValueError):
        profile.id = "other"  # type: ignore[misc]


# --- errors name the file and the key ------------------------------------------------------------------------

def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.yaml"
    assert_profile_error(path, "cannot read")


def test_invalid_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("id: uoeh\nname: [ja: 産業医科大学\n", encoding="utf-8")
    assert_profile_error(path, "YAML")


@pytest.mark.parametrize("text", ["", "- a list\n- of things\n", "just a string\n"])
def test_not_a_mapping(tmp_path, text):
    path = tmp_path / "odd.yaml"
    path.write_text(text, encoding="utf-8")
    assert_profile_error(path, "mapping")


def _set(raw: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node: Any = raw
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def _delete(raw: dict[str, Any], dotted: str) -> None:
    *parents, last = dotted.split(".")
    node: Any = raw
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    del node[last]


@pytest.mark.parametrize(("dotted", "value", "expected_key"), [
    ("contacts.call_center.hours.open", "25:00", "contacts.call_center.hours.open"),
    ("contacts.student_support.hours.days", "weekdays", "contacts.student_support.hours.days"),
    ("contacts.student_support.hours.close", "08:00", "contacts.student_support.hours"),
    ("departments.1.years", 0, "departments.1.years"),
    ("departments.0.code", "Medicine", "departments.0.code"),
    ("payment_methods.7.method", "bitcoin", "payment_methods.7.method"),
    ("catalog.items.0.price_yen", -1, "catalog.items.0.price_yen"),
    ("catalog.items.3.deliveries", ["teleport"], "catalog.items.3.deliveries.0"),
    ("closure_days", ["12/29"], "closure_days"),
    ("student_number_pattern", "[0-9", "student_number_pattern"),
    ("one_time_link_minutes", 1, "one_time_link_minutes"),
    ("pickup.cutoff", "noon", "pickup.cutoff"),
])
def test_bad_value_names_the_dotted_key(tmp_path, shipped_raw, dotted, value, expected_key):
    raw = copy.deepcopy(shipped_raw)
    _set(raw, dotted, value)
    assert_profile_error(write_profile(tmp_path, raw), expected_key)


def test_unknown_top_level_key(tmp_path, shipped_raw):
    raw = copy.deepcopy(shipped_raw) | {"colour": "red"}
    assert_profile_error(write_profile(tmp_path, raw), "colour")


def test_unknown_nested_key(tmp_path, shipped_raw):
    raw = copy.deepcopy(shipped_raw)
    raw["contacts"]["call_center"]["fax"] = "082-000-0000"
    assert_profile_error(write_profile(tmp_path, raw), "contacts.call_center.fax")


@pytest.mark.parametrize("dotted", ["name.en", "departments.2.name.en", "catalog.items.1.name.en",
                                    "contacts.chat_support.handles.en", "new_students_from.en"])
def test_missing_english_text(tmp_path, shipped_raw, dotted):
    raw = copy.deepcopy(shipped_raw)
    _delete(raw, dotted)
    assert_profile_error(write_profile(tmp_path, raw), dotted)


def test_empty_english_text(tmp_path, shipped_raw):
    raw = copy.deepcopy(shipped_raw)
    raw["service_name"]["en"] = ""
    assert_profile_error(write_profile(tmp_path, raw), "service_name.en")


def test_missing_contact(tmp_path, shipped_raw):
    raw = copy.deepcopy(shipped_raw)
    del raw["contacts"]["chat_support"]
    assert_profile_error(write_profile(tmp_path, raw), "chat_support")


def test_duplicate_item_codes(tmp_path, shipped_raw):
    raw = copy.deepcopy(shipped_raw)
    raw["catalog"]["items"].append(copy.deepcopy(raw["catalog"]["items"][0]))
    assert_profile_error(write_profile(tmp_path, raw), "catalog", "enrollment_certificate")


def test_several_bad_keys_are_all_named(tmp_path, shipped_raw):
    raw = copy.deepcopy(shipped_raw)
    raw["contacts"]["call_center"]["hours"]["open"] = "25:00"
    raw["colour"] = "red"
    assert_profile_error(write_profile(tmp_path, raw), "contacts.call_center.hours.open", "colour")


@pytest.mark.parametrize("entry", [
    "2026-02-30",              # no such date
    "13-01",                   # no 13th month
    "12-32..01-03",            # no 32nd day
    "2026-12-05..2026-12-01",  # a range that ends before it starts
])
def test_impossible_closure_days_are_refused_at_load(tmp_path, shipped_raw, entry):
    """A closure entry that can never be a real day must stop start-up, not fail (or be ignored) later."""
    raw = copy.deepcopy(shipped_raw)
    raw["closure_days"] = [entry]
    assert_profile_error(write_profile(tmp_path, raw), "closure_days")


def test_mixed_closure_range_is_refused_or_covers_the_whole_range(tmp_path, shipped_raw):
    """`2026-12-01..12-05` mixes the two forms: refuse it, or close every day from 12/01 to 12/05."""
    raw = copy.deepcopy(shipped_raw)
    raw["closure_days"] = ["2026-12-01..12-05"]
    path = write_profile(tmp_path, raw)
    try:
        loaded = load_profile(path)
    except ProfileError as error:
        assert "closure_days" in str(error)
        return
    assert all(loaded.is_closure_day(date(2026, 12, day)) for day in range(1, 6))


def test_unquoted_yaml_time_is_read_as_that_time_or_refused(tmp_path):
    """YAML 1.1 reads an unquoted 9:00 as the number 540; the profile must not turn that into 00:09."""
    text = SHIPPED_PROFILE.read_text(encoding="utf-8").replace(
        'hours: {days: business_days, open: "09:00", close: "17:00"}',
        "hours: {days: business_days, open: 9:00, close: 17:00}")
    assert "open: 9:00" in text
    path = tmp_path / "unquoted.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        loaded = load_profile(path)
    except ProfileError as error:
        assert "contacts.call_center.hours" in str(error)
        return
    hours = loaded.contact(Service.CALL_CENTER).hours
    assert (hours.open, hours.close) == (time(9, 0), time(17, 0))


def test_opening_hours_with_a_utc_offset_are_refused_or_work(tmp_path):
    """Hours are Asia/Tokyo wall-clock times; "09:00+09:00" must not make is_open compare aware and naive times."""
    text = SHIPPED_PROFILE.read_text(encoding="utf-8").replace(
        'hours: {days: business_days, open: "09:00", close: "17:00"}',
        'hours: {days: business_days, open: "09:00+09:00", close: "17:00+09:00"}')
    path = tmp_path / "offset.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        loaded = load_profile(path)
    except ProfileError as error:
        assert "contacts.call_center.hours" in str(error)
        return
    calendar = BusinessCalendar(loaded)
    assert calendar.is_open(Service.CALL_CENTER, datetime(2026, 11, 24, 9, 0, tzinfo=TOKYO))
    assert not calendar.is_open(Service.CALL_CENTER, datetime(2026, 11, 24, 8, 59, tzinfo=TOKYO))


# --- a second university, with no code change ----------------------------------------------------------------

SECOND_UNIVERSITY = """
id: example-tech
name: {ja: 例示工業大学, en: Example Institute of Technology}
service_name: {ja: 証明書オンライン申請, en: Online Certificates}
service_operator: {ja: 例示システムズ, en: Example Systems}
contacts:
  student_support:
    name: {ja: 教務課, en: Academic Affairs}
    handles: {ja: 申請の内容, en: what to apply for}
    phone: 03-0000-0000
    hours: {days: business_days, open: "10:00", close: "16:00"}
  call_center:
    name: {ja: ヘルプデスク, en: Help desk}
    handles: {ja: システムの動作, en: how the system works}
    hours: {days: every_day, open: "07:00", close: "22:00"}
  chat_support:
    name: {ja: チャット, en: Chat}
    handles: {ja: 操作方法, en: how to use it}
    hours: {days: every_day, open: "00:00", close: "00:00"}
departments:
  - code: engineering
    name: {ja: 工学部, en: Faculty of Engineering}
    years: 4
    credentials_location: {ja: 入学時の通知書, en: the letter you received on entry}
new_students_from: {ja: 4月1日から, en: from 1 April}
closure_days: ["08-10..08-16", "2026-11-25"]
pickup: {ready_at: "10:00", cutoff: "12:00"}
student_number_pattern: "[A-Z]{2}[0-9]{6}"
payment_methods:
  - method: credit_card
    name: {ja: クレジットカード, en: Credit card}
catalog:
  items:
    - code: diploma_copy
      kind: certificate
      name: {ja: 卒業証書写し, en: Copy of diploma}
      price_yen: 500
      deliveries: [mail]
      sources: {deliveries: university}
browsers: {pc: [Edge], smartphone: ["iPhone: Safari"]}
"""


def test_second_university_profile_loads_and_drives_the_core(tmp_path, core):
    path = tmp_path / "example-tech.yaml"
    path.write_text(SECOND_UNIVERSITY, encoding="utf-8")
    other = load_profile(path)
    assert other.id == "example-tech"
    assert other.name("en") == "Example Institute of Technology"
    assert [item.code for item in other.catalog.items] == ["diploma_copy"]
    assert other.payment_option(PaymentMethod.CONVENIENCE_STORE) is None
    assert other.department("engineering").years == 4

    calendar = BusinessCalendar(other)
    tuesday = datetime(2026, 11, 24, 12, 30, tzinfo=TOKYO)  # after this university's 12:00 cutoff
    assert calendar.pickup_window(tuesday) == (datetime(2026, 11, 26, 10, tzinfo=TOKYO),
                                               datetime(2026, 11, 27, 10, tzinfo=TOKYO))
    assert calendar.is_business_day(date(2026, 12, 30))  # no year-end closure here
    assert not calendar.is_business_day(date(2027, 8, 10))
    assert not calendar.is_open(Service.STUDENT_SUPPORT, datetime(2026, 11, 24, 9, 30, tzinfo=TOKYO))
    assert calendar.is_open(Service.CALL_CENTER, datetime(2026, 11, 28, 21, 0, tzinfo=TOKYO))  # Saturday
    assert calendar.next_opening(Service.CALL_CENTER, datetime(2026, 11, 28, 22, 0, tzinfo=TOKYO)) == \
        datetime(2026, 11, 29, 7, 0, tzinfo=TOKYO)

    csv_path = tmp_path / "students.csv"
    csv_path.write_text("student_number,department,year\nab123456,engineering,4\n", encoding="utf-8")
    with core.transaction() as session:
        assert import_students_csv(session, csv_path, other, core.now()) == ImportResult(created=1, updated=0)
    with core.transaction() as session:
        assert find_student(session, "AB123456").department == "engineering"


def write_text(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_rule_of_an_item_names_its_source(tmp_path):
    missing = SECOND_UNIVERSITY.replace("      sources: {deliveries: university}\n", "")
    with pytest.raises(ProfileError, match=r"catalog\.items\.0: .*sources lacks deliveries"):
        load_profile(write_text(tmp_path, missing))
    vague = SECOND_UNIVERSITY.replace("{deliveries: university}", "{deliveries: the dean said so}")
    with pytest.raises(ProfileError, match=r"sources\.deliveries"):
        load_profile(write_text(tmp_path, vague))
    unknown = SECOND_UNIVERSITY.replace("{deliveries: university}", "{deliveries: university, colour: assumption}")
    with pytest.raises(ProfileError, match="sources names no rule of an item: colour"):
        load_profile(write_text(tmp_path, unknown))


def test_the_shipped_profile_marks_what_the_guide_does_not_state():
    profile = load_profile()
    graduation = profile.catalog.get("expected_graduation_certificate")
    assert not graduation.stated("final_year_only") and graduation.stated("deliveries")
    assert graduation.sources["deliveries"].startswith("guide: ")
    assert not profile.catalog.get("parking_fee").stated("deliveries")
    assert profile.catalog.get("parking_fee").stated("min_year")  # 2年次生以上: the guide's words
    assert profile.catalog.get("student_id_reissue").stated("deliveries")
    assert profile.sources["konbini_payment_days"] == "assumption"
    confirm = profile.to_confirm()
    assert "konbini_payment_days: 3 is an assumption" in confirm
    assert "catalog insurance_renewal: deliveries window_pickup is an assumption" in confirm
