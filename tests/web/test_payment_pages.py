"""The sandbox payment pages over real HTTP: summary, paying, konbini, expiry, cancellation, 404, ja/en, and the
CSRF token its form must carry."""

import re
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from core import orders
from core.clock import TOKYO
from core.enums import DeliveryMethod, Language, OrderStatus, PaymentMethod
from core.i18n import core_messages
from core.models import Order, OrderEvent
from core.orders import OrderLine
from core.students import create_student
from tests.samples import SAMPLE_ADDRESS

TEMPLATES = Path(__file__).parents[2] / "bot" / "web" / "templates"


def add_student(core, language=Language.JA, number="24M1001"):
    with core.transaction() as session:
        return create_student(session, student_number=number, department="medicine", year=3, now=core.now(),
                              language=language)


TWO_CERTIFICATES = (OrderLine("enrollment_certificate", 2),)


def place(core, student, lines=TWO_CERTIFICATES, delivery=DeliveryMethod.CAMPUS_PRINTER,
          payment=PaymentMethod.CREDIT_CARD) -> orders.PlacedOrder:
    with core.transaction() as session:
        return orders.create_order(session, student=student, lines=list(lines), delivery=delivery, payment=payment,
                                   profile=core.profile, gateway=core.payments, now=core.now(), address=SAMPLE_ADDRESS)


def path_of(placed: orders.PlacedOrder, live_server) -> str:
    assert placed.payment_url and placed.payment_url.startswith(live_server.url)
    return placed.payment_url.removeprefix(live_server.url)


CSRF_FIELD = re.compile(r'<input type="hidden" name="csrf" value="([^"]+)">')


def form_token(live_server, path: str) -> str:
    """The CSRF token of the payment page's form, as a browser gets it (the page also sets its cookie)."""
    page = live_server.client.get(path)
    assert page.status_code == 200
    return CSRF_FIELD.search(page.text).group(1)


def pay(live_server, path: str, token: str | None = None, **options):
    """Press the page's button: POST its form with the page's CSRF token (fetched unless given)."""
    token = token or form_token(live_server, path)
    return live_server.client.post(path, data={"csrf": token}, **options)


def order_state(core, order_id) -> tuple[OrderStatus, list[str]]:
    with core.transaction() as session:
        order = session.get(Order, order_id)
        steps = session.scalars(select(OrderEvent.to_status).where(OrderEvent.order_id == order_id)
                                .order_by(OrderEvent.id))
        return order.status, [step.value for step in steps]


def test_pay_online_in_japanese(live_server):
    core = live_server.core
    placed = place(core, add_student(core))
    page = live_server.client.get(path_of(placed, live_server))
    assert page.status_code == 200
    html = page.text
    assert '<html lang="ja">' in html
    for words in [placed.order.number, "在学証明書 ×2：400円", "400円", "学内印刷機で印刷", "クレジットカード決済",
                  "お支払い待ち", "サンドボックス", "実際のお金は動きません", "理由の如何によらず返金はできません",
                  "支払う（サンドボックス）", 'method="post"', "産業医科大学</p>", "証明書発行サービス</p>"]:
        assert words in html, words

    token = CSRF_FIELD.search(html).group(1)
    paid = pay(live_server, path_of(placed, live_server), token)
    assert paid.status_code == 303
    assert paid.headers["location"] == f"{path_of(placed, live_server)}/result?lang=ja"
    result = live_server.client.get(paid.headers["location"])
    assert result.status_code == 200
    assert f"ご注文 {placed.order.number} のお支払いが完了しました。" in result.text
    assert "お支払い済み" in result.text
    assert order_state(core, placed.order.id) == (OrderStatus.PAID, ["awaiting_payment", "paid"])
    with core.transaction() as session:
        code = session.get(Order, placed.order.id).fulfilment.print_number
    expected = f"学内印刷機で、番号「{code}」を入力して印刷してください（2026年12月1日（火）23:59まで有効）。"
    assert expected in result.text

    again = live_server.client.get(path_of(placed, live_server))
    assert "このご注文は2026年11月24日（火）10:00にお支払い済みです。" in again.text
    assert 'method="post"' not in again.text
    assert pay(live_server, path_of(placed, live_server), token).status_code == 303  # paying twice is harmless
    assert order_state(core, placed.order.id) == (OrderStatus.PAID, ["awaiting_payment", "paid"])


def test_language_follows_the_student_unless_asked(live_server):
    core = live_server.core
    placed = place(core, add_student(core, Language.EN))
    english = live_server.client.get(path_of(placed, live_server))
    assert '<html lang="en">' in english.text
    for words in ["Certificate of Enrollment ×2: ¥400", "Credit card", "No real money is involved",
                  "cannot be refunded for any reason", "Pay (sandbox)", "Awaiting payment"]:
        assert words in english.text, words
    japanese = live_server.client.get(path_of(placed, live_server), params={"lang": "ja"})
    assert "在学証明書" in japanese.text and 'action="' + path_of(placed, live_server) + '?lang=ja"' in japanese.text
    unknown = live_server.client.get(path_of(placed, live_server), params={"lang": "fr"})
    assert '<html lang="en">' in unknown.text
    paid = pay(live_server, path_of(placed, live_server), params={"lang": "ja"})
    assert paid.headers["location"].endswith("/result?lang=ja")
    result = live_server.client.get(paid.headers["location"].replace("lang=ja", "lang=en"))
    assert f"The payment for order {placed.order.number} is complete." in result.text


def test_konbini_page_shows_number_deadline_and_cash_only(live_server):
    core = live_server.core
    placed = place(core, add_student(core), payment=PaymentMethod.CONVENIENCE_STORE)
    html = live_server.client.get(path_of(placed, live_server)).text
    for words in [placed.konbini_number, "2026年11月27日（金）23:59", "現金でのお支払いのみ",
                  "コンビニでのカードやPayPay等でのお支払いはできません",
                  "ローソン / ファミリーマート / セブンイレブン", "コンビニ店頭での支払いをシミュレートする",
                  "コンビニ現金払い"]:
        assert words in html, words
    english = live_server.client.get(path_of(placed, live_server), params={"lang": "en"}).text
    for words in ["cash only; cards, PayPay etc. cannot be used at the store", "Simulate paying at the store",
                  "Fri, Nov 27, 2026, 23:59 (Japan time)", placed.konbini_number]:
        assert words in english, words
    assert pay(live_server, path_of(placed, live_server)).status_code == 303
    assert order_state(core, placed.order.id)[0] is OrderStatus.PAID


def test_expired_konbini_payment_says_so_and_cannot_be_paid(live_server, clock):
    core = live_server.core
    placed = place(core, add_student(core), payment=PaymentMethod.CONVENIENCE_STORE)
    token = form_token(live_server, path_of(placed, live_server))  # the page opened before the deadline
    clock.set(datetime(2026, 11, 28, 9, 0, tzinfo=TOKYO))
    page = live_server.client.get(path_of(placed, live_server))
    assert "お支払い期限（2026年11月27日（金）23:59）を過ぎたため" in page.text
    assert 'method="post"' not in page.text
    refused = pay(live_server, path_of(placed, live_server), token)
    assert refused.status_code == 303
    result = live_server.client.get(refused.headers["location"])
    assert "お支払いできませんでした" in result.text and "を過ぎたため" in result.text
    assert order_state(core, placed.order.id) == (OrderStatus.AWAITING_PAYMENT, ["awaiting_payment"])


def test_cancelled_order_says_so_and_cannot_be_paid(live_server):
    core = live_server.core
    placed = place(core, add_student(core))
    token = form_token(live_server, path_of(placed, live_server))  # the page opened before the cancellation
    with core.transaction() as session:
        orders.cancel_order(session, session.get(Order, placed.order.id), core.now())
    page = live_server.client.get(path_of(placed, live_server), params={"lang": "en"})
    assert "This order has been cancelled, so it cannot be paid." in page.text
    assert 'method="post"' not in page.text
    assert pay(live_server, path_of(placed, live_server), token).status_code == 303
    assert order_state(core, placed.order.id)[0] is OrderStatus.CANCELLED


def test_window_pickup_page_shows_when_to_collect(live_server):
    core = live_server.core
    placed = place(core, add_student(core), [OrderLine("student_id_reissue")], DeliveryMethod.WINDOW_PICKUP,
                   PaymentMethod.PAYPAY)
    html = live_server.client.get(path_of(placed, live_server)).text
    # Not paid yet: what paying now gives, never a promise (the guide counts from the payment).
    assert "今お支払いいただいた場合の目安：学生支援課窓口で2026年11月25日（水）13:00から受取可能です。" in html
    assert "「郵送対応完了」" in html and "学生証" in html


def test_result_page_before_paying_goes_back_to_the_payment_page(live_server):
    placed = place(live_server.core, add_student(live_server.core))
    response = live_server.client.get(f"{path_of(placed, live_server)}/result")
    assert response.status_code == 303
    assert response.headers["location"] == f"{path_of(placed, live_server)}?lang=ja"


@pytest.mark.parametrize(("method", "suffix"), [("GET", ""), ("POST", ""), ("GET", "/result")])
def test_unknown_reference_is_a_404_page_in_both_languages(live_server, method, suffix):
    response = live_server.client.request(method, f"/sandbox/pay/no-such-reference{suffix}")
    assert response.status_code == 404
    assert "お支払い情報が見つかりません" in response.text and "Payment not found" in response.text


def test_input_is_escaped(live_server):
    placed = place(live_server.core, add_student(live_server.core))
    response = live_server.client.get(path_of(placed, live_server), params={"lang": '"><script>alert(1)</script>'})
    assert response.status_code == 200
    assert "<script>" not in response.text
    assert live_server.client.get("/sandbox/pay/<b>x</b>").status_code == 404


def test_every_text_the_pages_use_exists_in_both_languages():
    catalog = core_messages()
    used = set()
    for template in TEMPLATES.glob("pay_*.html"):
        used |= set(re.findall(r"""tr\(["']([a-z_.]+)["']""", template.read_text(encoding="utf-8")))
    assert "payments.page.no_refund" in used and "payments.konbini.cash_only" in used
    for key in used:
        assert key in catalog.keys(Language.JA) and key in catalog.keys(Language.EN), key


def test_a_mail_orders_result_page_explains_the_sent_mail_but_never_shows_the_address(live_server):
    core = live_server.core
    placed = place(core, add_student(core), delivery=DeliveryMethod.MAIL)
    unpaid = live_server.client.get(path_of(placed, live_server)).text
    paid = pay(live_server, path_of(placed, live_server), follow_redirects=True).text
    assert "郵送対応完了" in paid and "郵送対応完了" not in unpaid
    for personal in (SAMPLE_ADDRESS.street, SAMPLE_ADDRESS.recipient, SAMPLE_ADDRESS.phone):
        assert personal not in paid and personal not in unpaid  # the page opens by its link, to whoever has it


def test_the_form_carries_a_csrf_token_whose_cookie_only_this_site_sends(live_server):
    placed = place(live_server.core, add_student(live_server.core))
    page = live_server.client.get(path_of(placed, live_server))
    token = CSRF_FIELD.search(page.text).group(1)
    cookie = page.headers["set-cookie"]
    assert f"madoguchi_pay_csrf={token}" in cookie and len(token) >= 32
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/sandbox/pay" in cookie
    again = live_server.client.get(path_of(placed, live_server))  # the cookie sent back: the same token, no new one
    assert CSRF_FIELD.search(again.text).group(1) == token and "set-cookie" not in again.headers


@pytest.mark.parametrize("form", [{}, {"csrf": ""}, {"csrf": "wrong"}, {"other": "x"}])
def test_a_payment_without_the_pages_token_is_refused_and_pays_nothing(live_server, form):
    core = live_server.core
    placed = place(core, add_student(core, Language.EN))
    form_token(live_server, path_of(placed, live_server))  # the browser has the cookie; the form lacks its token
    refused = live_server.client.post(path_of(placed, live_server), data=form)
    assert refused.status_code == 403
    assert '<html lang="en">' in refused.text  # the student's language first, then Japanese
    assert refused.text.index("The payment was not accepted") < refused.text.index("お支払いを受け付けられませんでした")
    assert "so nothing was paid" in refused.text and "お支払いは行われていません" in refused.text
    assert f'href="{path_of(placed, live_server)}?lang=en"' in refused.text
    assert order_state(core, placed.order.id) == (OrderStatus.AWAITING_PAYMENT, ["awaiting_payment"])
    # The way back: the page again, its token, and the payment goes through.
    assert pay(live_server, path_of(placed, live_server)).status_code == 303
    assert order_state(core, placed.order.id)[0] is OrderStatus.PAID


def test_another_sites_form_cannot_pay_even_with_a_token_of_its_own(live_server):
    """A forged form posts a token its site got from our page, but the victim's browser sends its own cookie (or,
    cross-site and SameSite=strict, none): the two never match."""
    core = live_server.core
    placed = place(core, add_student(core))
    attackers_token = form_token(live_server, path_of(placed, live_server))
    live_server.client.cookies.clear()  # the victim's browser: no cookie of ours sent cross-site
    assert live_server.client.post(path_of(placed, live_server), data={"csrf": attackers_token}).status_code == 403
    live_server.client.get(path_of(placed, live_server))  # the victim opened the page: a cookie of their own
    assert live_server.client.post(path_of(placed, live_server), data={"csrf": attackers_token}).status_code == 403
    assert order_state(core, placed.order.id) == (OrderStatus.AWAITING_PAYMENT, ["awaiting_payment"])
