"""Sandbox payment pages: the local stand-in for a payment provider's page, so the whole flow runs offline."""

import logging
import secrets
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from urllib.parse import urlencode

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from core import order_texts, orders, staff
from core.enums import DeliveryMethod, Language, PaymentMethod, PaymentStatus
from core.errors import InvalidTransition, PaymentExpired, PaymentNotFound
from core.formatting import format_datetime, format_yen
from core.i18n import t
from core.models import Payment
from core.sandbox_gateway import SandboxGateway
from core.services import Core

log = logging.getLogger(__name__)

# CSRF, as on the staff sign-in form (bot/web/admin.py): a token double-submitted in a cookie and in the form.
# Another site can make a browser post the form, but can neither read nor set this cookie.
CSRF_COOKIE = "madoguchi_pay_csrf"
CSRF_COOKIE_PATH = "/sandbox/pay"
MAX_FIELD = 512  # longer form values are cut before use


@dataclass(frozen=True)
class PaymentView:
    """What a sandbox page shows of one payment, as ready-made texts in one language."""

    reference: str
    state: PaymentStatus
    number: str
    lines: tuple[str, ...]
    total: str
    delivery: str
    method: str
    status: str
    prices_are_examples: bool
    konbini: bool
    cash_only: bool
    konbini_number: str | None
    deadline: str | None
    stores: str | None
    state_message: str | None
    pickup: str | None
    pickup_steps: tuple[str, ...]
    # Once paid: the print number and its expiry (a convenience store, the campus printer), or for mail that the
    # 「郵送対応完了」 mail tells when it is sent. The mailing address is not shown: this page opens by its link.
    fulfilment: tuple[str, ...] = ()


def _language(request: Request, payment: Payment) -> Language:
    """`?lang=` when it names a language, else the student's preferred language."""
    asked = request.query_params.get("lang", "")
    if asked in {lang.value for lang in Language}:
        return Language(asked)
    student = payment.order.student  # None once the student was forgotten (the order stays for accounting)
    return student.preferred_language if student else Language.JA


def _sandbox_payment(session: Session, reference: str) -> Payment | None:
    # Only payments taken by the sandbox have a page here; a real gateway's reference is not ours to show.
    try:
        payment = orders.find_payment(session, reference)
    except PaymentNotFound:
        return None
    return payment if payment.gateway == SandboxGateway.name else None


def _view(core: Core, payment: Payment, lang: Language) -> PaymentView:
    order = payment.order
    summary = order_texts.summarize(order, core.profile, core.calendar)
    state = orders.payment_state(payment, core.now())
    option = core.profile.payment_option(payment.method)
    konbini = payment.method is PaymentMethod.CONVENIENCE_STORE
    state_message = None
    if state is PaymentStatus.PAID:
        paid_at = order.paid_at or payment.paid_at
        state_message = t("payments.state.paid", lang, paid_at=format_datetime(paid_at, lang)
                          if paid_at else "-")
    elif state is PaymentStatus.EXPIRED:
        deadline = format_datetime(payment.deadline, lang) if payment.deadline else "-"
        state_message = t("payments.state.expired", lang, deadline=deadline)
    elif state is PaymentStatus.CANCELLED:
        state_message = t("payments.state.cancelled", lang)
    window_pickup = order.delivery_method is DeliveryMethod.WINDOW_PICKUP
    return PaymentView(
        reference=payment.reference, state=state, number=order.number,
        lines=tuple(t("payments.page.line", lang, item=line.name(lang), copies=line.copies,
                      subtotal=format_yen(line.subtotal_yen, lang)) for line in summary.lines),
        total=format_yen(payment.amount_yen, lang),
        delivery=order_texts.delivery_label(order.delivery_method, lang),
        method=order_texts.payment_label(payment.method, lang, core.profile),
        status=order_texts.status_label(order.status, lang),
        prices_are_examples=summary.prices_are_examples,
        konbini=konbini, cash_only=bool(option and option.cash_only), konbini_number=payment.konbini_number,
        deadline=format_datetime(payment.deadline, lang) if payment.deadline else None,
        stores=option.brands(lang) if option and option.brands else None,
        state_message=state_message,
        pickup=_pickup(core, summary.pickup_window, state, lang) if window_pickup else None,
        pickup_steps=(t("orders.window_pickup.bring_id", lang), t("orders.window_pickup.done_mail", lang))
        if window_pickup else (),
        fulfilment=tuple(order_texts.fulfilment_lines(replace(summary, mailing_address=None), lang, core.profile))
        if state is PaymentStatus.PAID else (),
    )


def _pickup(core: Core, window: tuple[datetime, datetime] | None, state: PaymentStatus, lang: Language) -> str | None:
    """When a window-pickup order can be collected: from its payment once paid; while the payment waits, what
    paying now would give (the guide counts from the payment: no date is promised before it)."""
    if state is PaymentStatus.PAID and window is not None:
        return order_texts.pickup_window_text(window, lang, core.profile)
    if state is PaymentStatus.PENDING:
        now = order_texts.pickup_window_text(core.calendar.pickup_window(core.now()), lang, core.profile)
        return t("payments.page.pickup_if_paid_now", lang, window=now)
    return None


def _render(request: Request, template: str, lang: Language, title_key: str, status_code: int = 200,
            **context: object) -> Response:
    tr = partial(t, lang=lang)
    other = Language.EN if lang is Language.JA else Language.JA
    return request.app.state.templates.TemplateResponse(
        request, template,
        {"lang": lang.value, "title": tr(title_key), "tr": tr, "other_lang": other.value, **context},
        status_code=status_code,
    )


def _not_found(request: Request) -> Response:
    # The page does not know whose payment was meant, so it answers in both languages.
    return request.app.state.templates.TemplateResponse(
        request, "pay_not_found.html",
        {"lang": Language.JA.value, "title": t("payments.not_found.title", Language.JA),
         "texts": [(lang.value, t("payments.not_found.title", lang), t("payments.not_found.body", lang))
                   for lang in Language]},
        status_code=404,
    )


def _load_view(request: Request) -> tuple[Language, PaymentView] | None:
    """The page language and view of the sandbox payment named in the path, or None if there is none."""
    core: Core = request.app.state.core
    with core.transaction() as session:
        payment = _sandbox_payment(session, request.path_params["reference"])
        if payment is None:
            return None
        lang = _language(request, payment)
        return lang, _view(core, payment, lang)


def pay_page(request: Request) -> Response:
    """GET /sandbox/pay/{reference}: the order summary and a button to pay (or the payment's state)."""
    loaded = _load_view(request)
    if loaded is None:
        return _not_found(request)
    lang, view = loaded
    csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = _render(request, "pay_page.html", lang, "payments.page.title", view=view, csrf=csrf,
                       action=f"{request.url.path}?{urlencode({'lang': lang.value})}")
    if request.cookies.get(CSRF_COOKIE) != csrf:
        core: Core = request.app.state.core
        response.set_cookie(CSRF_COOKIE, csrf, path=CSRF_COOKIE_PATH, httponly=True, samesite="strict",
                            secure=core.base_url.startswith("https://"))
    return response


async def pay(request: Request) -> Response:
    """POST /sandbox/pay/{reference}: mark the order paid (the form's CSRF token required), then redirect to the
    result page."""
    core: Core = request.app.state.core
    reference = request.path_params["reference"]

    def language() -> Language | None:
        with core.transaction() as session:
            payment = _sandbox_payment(session, reference)
            return _language(request, payment) if payment is not None else None

    lang = await run_in_threadpool(language)
    if lang is None:
        return _not_found(request)
    if not staff.same_secret(request.cookies.get(CSRF_COOKIE), await _csrf_field(request)):
        log.warning("sandbox payment refused: CSRF token missing or wrong")
        return _forbidden(request, lang)
    await run_in_threadpool(_record_payment, core, reference)
    return RedirectResponse(f"{request.url.path}/result?{urlencode({'lang': lang.value})}", status_code=303)


async def _csrf_field(request: Request) -> str | None:
    form = await request.form()
    value = form.get("csrf")
    return value[:MAX_FIELD] if isinstance(value, str) else None


def _record_payment(core: Core, reference: str) -> None:
    try:
        with core.transaction() as session:
            result = core.record_payment(session, reference)
            log.info("sandbox payment for order %s: %s", result.order.number,
                     "paid" if result.newly_paid else "already paid")
    except (PaymentExpired, InvalidTransition) as refusal:
        # The result page explains the refusal from the payment's state; nothing was written.
        log.info("sandbox payment refused: %s", refusal.code)


def _forbidden(request: Request, lang: Language) -> Response:
    """The answer to a payment form without its CSRF token: nothing paid, in both languages (the page's language
    first), each with the way back to the payment page, whose form carries the token again."""
    texts = [(each.value, t("edges.payment_form_expired.title", each), t("edges.payment_form_expired.body", each),
              t("edges.payment_form_expired.back", each), f"{request.url.path}?{urlencode({'lang': each.value})}")
             for each in (lang, *(other for other in Language if other is not lang))]
    return request.app.state.templates.TemplateResponse(
        request, "pay_forbidden.html",
        {"lang": lang.value, "title": t("edges.payment_form_expired.title", lang), "texts": texts},
        status_code=403, headers={"Cache-Control": "no-store"},
    )


def result_page(request: Request) -> Response:
    """GET /sandbox/pay/{reference}/result: paid, or why the payment could not be made."""
    loaded = _load_view(request)
    if loaded is None:
        return _not_found(request)
    lang, view = loaded
    reference = request.path_params["reference"]
    if view.state is PaymentStatus.PENDING:  # nothing paid yet: back to the page with the button
        return RedirectResponse(f"/sandbox/pay/{reference}?{urlencode({'lang': lang.value})}", status_code=303)
    title = "payments.result.paid_title" if view.state is PaymentStatus.PAID else "payments.result.failed_title"
    return _render(request, "pay_result.html", lang, title, view=view)


def routes() -> list[BaseRoute]:
    """The payment pages."""
    return [
        Route("/sandbox/pay/{reference}", pay_page, methods=["GET"]),
        Route("/sandbox/pay/{reference}", pay, methods=["POST"]),
        Route("/sandbox/pay/{reference}/result", result_page, methods=["GET"]),
    ]
