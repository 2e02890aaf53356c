"""The staff pages: sign-in and sign-out, sessions with their roles and CSRF token, the pages' bilingual chrome,
and the administrators' dashboard of what students ask and what the bot missed, with its CSV export. Charts are
inline SVG drawn on the server (the CSP allows no inline scripts or styles)."""

import csv
import io
import logging
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bot.page_language import choose_language
from core import analytics, staff
from core.analytics import FALLBACK_INTENT, OTHER, RELAYED, Dashboard, DayRate, Period
from core.clock import TOKYO
from core.enums import Language
from core.i18n import core_messages, t
from core.services import Core

log = logging.getLogger(__name__)

SESSION_COOKIE = "madoguchi_staff"
LOGIN_CSRF_COOKIE = "madoguchi_staff_login"
LANG_COOKIE = "madoguchi_staff_lang"
LANG_COOKIE_SECONDS = 365 * 24 * 3600
COOKIE_PATH = "/admin"
INBOX = "/admin/inbox"
# Texts desk.js shows by itself, as templates with their {placeholders} (the rest is in the HTML).
SCRIPT_KEYS = ("staff.waiting_badge", "inbox.new_ticket", "inbox.new_message")
DEFAULT_DAYS = 30
PAGE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}
MAX_FIELD = 512  # longer form values are cut before use
RETRY_AFTER = str(int(staff.FAILURE_WINDOW.total_seconds()))

# Okabe–Ito colours, told apart by most colour-blind readers; "not understood" always in vermilion.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#882255", "#44AA99", "#332288")
FIXED_COLOURS = {FALLBACK_INTENT: "#D55E00", OTHER: "#999999", RELAYED: "#555555"}
SERIES_LABELS = {FALLBACK_INTENT: "not understood", OTHER: "other topics", RELAYED: "relayed to a person"}


def routes() -> list[BaseRoute]:
    """The staff pages under /admin."""
    return [
        Route("/admin", dashboard_page, methods=["GET"], name="admin_dashboard"),
        Route("/admin/login", login_page, methods=["GET", "POST"], name="admin_login"),
        Route("/admin/logout", logout, methods=["POST"], name="admin_logout"),
        Route("/admin/unrecognized.csv", unrecognized_csv, methods=["GET"], name="admin_unrecognized_csv"),
    ]


# --- sessions and forms -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedIn:
    """The staff member behind a request: their account, role and display name, and the CSRF token of their
    forms."""

    email: str
    token: str
    account_id: int
    role: str
    name: str  # what students and other agents see: the display name, never the email

    @property
    def csrf(self) -> str:
        """The token the session's forms carry."""
        return staff.csrf_token(self.token)

    @property
    def is_admin(self) -> bool:
        """Whether the dashboard is theirs too (agents see only the inbox)."""
        return self.role == staff.Role.ADMIN.value


async def signed_in(request: Request) -> SignedIn | None:
    """The staff member whose live session cookie came with the request, or None."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    core: Core = request.app.state.core

    def look_up() -> SignedIn | None:
        with core.transaction() as session:
            account = staff.session_account(session, token, core.now())
            if account is None:
                return None
            return SignedIn(email=account.email, token=token, account_id=account.id, role=account.role,
                            name=staff.shown_name(account))

    return await run_in_threadpool(look_up)


def _secure(request: Request) -> bool:
    # Our public URL decides, never the request: behind a TLS-terminating proxy the request itself is http.
    return request.app.state.core.base_url.startswith("https://")


def _set_cookie(response: Response, request: Request, name: str, value: str, path: str = COOKIE_PATH) -> None:
    response.set_cookie(name, value, path=path, httponly=True, samesite="strict", secure=_secure(request))


def to_login() -> Response:
    """Where a request without a live staff session goes."""
    return RedirectResponse("/admin/login", status_code=303, headers=PAGE_HEADERS)


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {name: str(value)[:MAX_FIELD] for name, value in form.items() if isinstance(value, str)}


def staff_language(request: Request) -> Language:
    """`?lang=ja|en` (the pages' switch), else the language chosen before (a cookie), else Japanese when the
    browser prefers it over English, else English."""
    return choose_language(request, cookie=LANG_COOKIE, default=Language.EN)


def render(request: Request, template: str, *, status_code: int = 200, headers: dict[str, str] | None = None,
           **context: object) -> Response:
    """A staff page in the staff member's language, with the shared chrome's texts; a `?lang=` choice is
    remembered in a cookie on /admin."""
    return _render_page(request, template, context, status_code=status_code, headers=headers)


def _render_page(request: Request, template: str, context: Mapping[str, object], *, status_code: int,
                 headers: dict[str, str] | None = None) -> Response:
    """`render`, with the page's own values in one mapping."""
    lang = staff_language(request)
    other = Language.EN if lang is Language.JA else Language.JA
    # A page answering a form (a refused sign-in, a 400) switches on a page that may be fetched again.
    shown = request.url if request.method == "GET" else URL(INBOX if context.get("who") else "/admin/login")
    switch = shown.include_query_params(lang=other.value)
    chrome = {"lang": lang.value, "other_lang": other.value, "t": partial(t, lang=lang),
              "lang_switch_url": f"{switch.path}?{switch.query}",
              "desk_strings": {key: core_messages().text(f"desk.{key}", lang) for key in SCRIPT_KEYS}}
    response = request.app.state.templates.TemplateResponse(
        request, template, {**chrome, **context}, status_code=status_code,
        headers={**PAGE_HEADERS, "Vary": "Accept-Language, Cookie", **(headers or {})})
    if request.query_params.get("lang") == lang.value and request.cookies.get(LANG_COOKIE) != lang.value:
        response.set_cookie(LANG_COOKIE, lang.value, max_age=LANG_COOKIE_SECONDS, path=COOKIE_PATH, httponly=True,
                            samesite="strict", secure=_secure(request))
    return response


def error_page(request: Request, status_code: int, title_key: str, message: str, back: str,
               **context: object) -> Response:
    """The staff error page: a title from the catalog, a message, and the way back."""
    lang = staff_language(request)
    # The page's context as a dict: a caller's keyword can never land on render's own parameters.
    return _render_page(request, "admin_error.html", {
        "title": t(f"desk.{title_key}", lang), "message": message, "back": back, **context}, status_code=status_code)


def forbidden(request: Request) -> Response:
    """The answer to a form without the session's CSRF token."""
    return error_page(request, 403, "staff.form_expired_title",
                      t("desk.staff.form_expired", staff_language(request)), "/admin/login")


def admins_only(request: Request, who: SignedIn) -> Response:
    """The answer to an agent asking for an administrator's page."""
    return error_page(request, 403, "staff.admins_only_title", t("desk.staff.admins_only", staff_language(request)),
                      INBOX, who=who)


# --- sign-in and sign-out ---------------------------------------------------------------------------------


async def login_page(request: Request) -> Response:
    """GET shows the sign-in form; POST checks it (CSRF: a double-submitted cookie) and starts a session."""
    if request.method == "GET" and await signed_in(request) is not None:
        return RedirectResponse("/admin", status_code=303, headers=PAGE_HEADERS)
    csrf = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    if request.method == "GET":
        return _login_form(request, csrf or secrets.token_urlsafe(32))
    form = await _form(request)
    if not staff.same_secret(csrf, form.get("csrf")):
        log.warning("staff sign-in refused: CSRF token missing or wrong")
        return forbidden(request)
    core: Core = request.app.state.core
    address = request.client.host if request.client else None
    email, password = form.get("email", ""), form.get("password", "")

    def attempt() -> staff.LoginResult:
        with core.transaction() as session:
            return staff.login(session, email, password, address, core.now())

    result = await run_in_threadpool(attempt)
    lang = staff_language(request)
    if result.outcome is staff.LoginOutcome.THROTTLED:
        return _login_form(request, csrf, status_code=429, headers={"Retry-After": RETRY_AFTER},
                           error=t("desk.staff.throttled", lang))
    if result.outcome is not staff.LoginOutcome.OK or result.token is None:
        # One answer for an unknown email, a disabled account and a wrong password.
        return _login_form(request, csrf, status_code=401, error=t("desk.staff.wrong", lang))
    await _end_previous_session(request)
    response = RedirectResponse("/admin", status_code=303, headers=PAGE_HEADERS)
    _set_cookie(response, request, SESSION_COOKIE, result.token)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/admin/login")
    return response


def _login_form(request: Request, csrf: str, *, status_code: int = 200, headers: dict[str, str] | None = None,
                error: str | None = None) -> Response:
    # The form is always rendered empty: neither the email nor the password typed is echoed back.
    response = render(request, "admin_login.html", status_code=status_code, headers=headers,
                      title=t("desk.staff.sign_in_title", staff_language(request)), csrf=csrf, error=error)
    if request.cookies.get(LOGIN_CSRF_COOKIE) != csrf:
        _set_cookie(response, request, LOGIN_CSRF_COOKIE, csrf, path="/admin/login")
    return response


async def _end_previous_session(request: Request, leaving: int | None = None) -> None:
    """End the session of the request's cookie; `leaving` is the account that also leaves the desk."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        core: Core = request.app.state.core

        def end() -> None:
            with core.transaction() as session:
                staff.end_session(session, token)
                if leaving is not None:  # a handoff must no longer promise a person on their account
                    staff.leave_desk(session, leaving)

        await run_in_threadpool(end)


async def logout(request: Request) -> Response:
    """End the session (its CSRF token required), leave the desk, and forget the cookie."""
    who = await signed_in(request)
    if who is None:
        return to_login()
    form = await _form(request)
    if not staff.same_secret(who.csrf, form.get("csrf")):
        log.warning("staff sign-out refused: CSRF token missing or wrong")
        return forbidden(request)
    await _end_previous_session(request, leaving=who.account_id)
    response = to_login()
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict", secure=_secure(request))
    return response


# --- the dashboard ----------------------------------------------------------------------------------------


def _days(request: Request) -> int | None:
    raw = request.query_params.get("days", str(DEFAULT_DAYS))
    return int(raw) if raw.isdigit() and int(raw) in analytics.PERIODS else None


def _bad_period(request: Request) -> Response:
    periods = ", ".join(map(str, analytics.PERIODS))
    return error_page(request, 400, "staff.unknown_period_title",
                      t("desk.staff.unknown_period", staff_language(request), periods=periods), "/admin")


async def _staff_period(request: Request) -> tuple[SignedIn, int] | Response:
    """The signed-in administrator and the asked period, or the response that refuses the request (an agent
    asking for the dashboard is sent to the inbox; for the export, refused)."""
    who = await signed_in(request)
    if who is None:
        return to_login()
    if not who.is_admin:
        if request.url.path == "/admin":
            return RedirectResponse(INBOX, status_code=303, headers=PAGE_HEADERS)
        return admins_only(request, who)
    days = _days(request)
    if days is None:
        return _bad_period(request)
    return who, days


async def dashboard_page(request: Request) -> Response:
    """The dashboard for ?days=7|30|90 (default 30); administrators only (agents go to the inbox)."""
    asked = await _staff_period(request)
    if isinstance(asked, Response):
        return asked
    who, days = asked
    core: Core = request.app.state.core

    def figures() -> Dashboard:
        with core.transaction() as session:
            return analytics.dashboard(session, core.now(), days)

    board = await run_in_threadpool(figures)
    colours = _colours(board)
    # The dashboard's own texts are English only (its <main> says so); the chrome around it is bilingual, with
    # the inbox's live count of waiting tickets.
    return render(request, "admin_dashboard.html", title="Bot dashboard", who=who, days=days, content_lang="en",
                  section="dashboard", periods=analytics.PERIODS, board=board, colours=colours,
                  label=series_label, messages_chart=messages_chart(board, colours), fallback_chart=rate_chart(
                      "fallback", "Share of messages not understood per day", board.period, board.fallback,
                      FIXED_COLOURS[FALLBACK_INTENT], "not understood"),
                  handoff_chart=rate_chart("handoff", "Handoffs per active conversation per day", board.period,
                                           board.handoff, PALETTE[0], "handed to a person"),
                  day=_day_label, when=_when, percent=percent)


async def unrecognized_csv(request: Request) -> Response:
    """The not-understood messages of ?days=7|30|90 as CSV (UTF-8 with a BOM, which Excel needs for Japanese);
    administrators only."""
    asked = await _staff_period(request)
    if isinstance(asked, Response):
        return asked
    _, days = asked
    core: Core = request.app.state.core

    def rows() -> tuple[Period, list[analytics.Unrecognized]]:
        with core.transaction() as session:
            span = analytics.period(core.now(), days)
            return span, analytics.unrecognized(session, span)

    span, questions = await run_in_threadpool(rows)
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(["asked_at_jst", "channel", "language", "best_guess", "confidence", "text"])
    for question in questions:
        confidence = f"{question.confidence:.2f}" if question.confidence is not None else ""
        writer.writerow([_when(question.at), question.channel, question.lang or "", question.guess or "", confidence,
                         _csv_safe(question.text)])
    log.info("staff export of %d not-understood messages (%d days)", len(questions), days)
    name = f"unrecognized-{span.last.isoformat()}-{days}d.csv"
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={**PAGE_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'})


def _csv_safe(text: str) -> str:
    # A cell starting with = + - @ is a formula to a spreadsheet: what a student typed must stay text.
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# --- formatting -------------------------------------------------------------------------------------------


def series_label(name: str) -> str:
    """An intent name (or OTHER / RELAYED) in plain words."""
    return SERIES_LABELS.get(name, name.replace("_", " "))


def percent(rate: float | None) -> str:
    """0.1234 → '12.3%'; None → '–'."""
    return "–" if rate is None else f"{rate * 100:.1f}%"


def _day_label(day: object) -> str:
    return f"{day:%m/%d}"


def _when(at: datetime) -> str:
    return f"{at.astimezone(TOKYO):%Y-%m-%d %H:%M}"


def _colours(board: Dashboard) -> dict[str, str]:
    colours, free = {}, iter(PALETTE)
    for series in board.series:
        colours[series.name] = FIXED_COLOURS.get(series.name) or next(free, "#777777")
    return colours


# --- charts -----------------------------------------------------------------------------------------------

WIDTH, HEIGHT = 760, 280
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 36


@dataclass(frozen=True)
class Bar:
    """One rectangle of a bar chart, with what it stands for."""

    x: float
    y: float
    width: float
    height: float
    fill: str
    day: str
    series: str
    value: str
    title: str


@dataclass(frozen=True)
class Tick:
    """A labelled position on an axis."""

    at: float
    label: str


@dataclass(frozen=True)
class Chart:
    """A bar chart laid out for the SVG template."""

    id: str
    title: str
    description: str
    bars: tuple[Bar, ...]
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    top: int = TOP
    bottom: float = HEIGHT - BOTTOM
    right: int = WIDTH - RIGHT


def nice_scale(peak: float, *, integer: bool) -> tuple[float, list[float]]:
    """An axis top at or above `peak` and its ticks, in steps of 1, 2 or 5 times a power of ten (about four)."""
    if peak <= 0:
        return 1.0, [0.0, 1.0]
    raw = peak / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    if integer:
        step = max(1.0, float(math.ceil(step)))
    top = step * math.ceil(peak / step - 1e-9)
    return top, [step * i for i in range(round(top / step) + 1)]


def _frame(days: int) -> tuple[float, float, float]:
    """The width of one day's slot, of its bar, and the plot's height."""
    slot = (WIDTH - LEFT - RIGHT) / days
    return slot, max(1.0, slot * 0.72), HEIGHT - TOP - BOTTOM


def _x_ticks(period: Period, slot: float) -> tuple[Tick, ...]:
    every = max(1, math.ceil(len(period.days) / 10))  # about ten labels whatever the period
    last = len(period.days) - 1
    return tuple(Tick(LEFT + slot * (i + 0.5), _day_label(day)) for i, day in enumerate(period.days)
                 if (last - i) % every == 0)  # counted back from today, so today is always labelled


def messages_chart(board: Dashboard, colours: dict[str, str]) -> Chart:
    """Student messages per day, stacked by intent (biggest series at the bottom)."""
    slot, bar_width, plot_height = _frame(len(board.period.days))
    top, ticks = nice_scale(max(board.day_totals, default=0), integer=True)
    bars = []
    for i, day in enumerate(board.period.days):
        base = 0
        for series in board.series:
            count = series.counts[i]
            if not count:
                continue
            y_low, y_high = _y(base, top, plot_height), _y(base + count, top, plot_height)
            label = series_label(series.name)
            bars.append(Bar(x=round(LEFT + slot * i + (slot - bar_width) / 2, 2), y=y_high, width=round(bar_width, 2),
                            height=round(y_low - y_high, 2), fill=colours[series.name], day=day.isoformat(),
                            series=series.name, value=str(count), title=f"{day.isoformat()}: {label} {count}"))
            base += count
    description = (f"{board.messages} student messages from {board.period.first} to {board.period.last}, "
                   f"stacked by topic; busiest day {max(board.day_totals, default=0)} messages.")
    return Chart(id="messages", title="Student messages per day, by topic", description=description,
                 bars=tuple(bars), y_ticks=tuple(Tick(_y(t, top, plot_height), f"{t:g}") for t in ticks),
                 x_ticks=_x_ticks(board.period, slot))


def rate_chart(chart_id: str, title: str, period: Period, rates: tuple[DayRate, ...], fill: str,
               what: str) -> Chart:
    """One bar per day for a share in percent; a day with nothing to share has no bar."""
    slot, bar_width, plot_height = _frame(len(period.days))
    shown = [rate.rate * 100 for rate in rates if rate.rate is not None]
    top, ticks = nice_scale(max([*shown, 10.0]), integer=False)
    bars = []
    for i, rate in enumerate(rates):
        if rate.rate is None:
            continue
        y_high, y_low = _y(min(rate.rate * 100, top), top, plot_height), _y(0, top, plot_height)
        text = percent(rate.rate)
        bars.append(Bar(x=round(LEFT + slot * i + (slot - bar_width) / 2, 2), y=y_high, width=round(bar_width, 2),
                        height=round(y_low - y_high, 2), fill=fill, day=rate.day.isoformat(), series=chart_id,
                        value=text, title=f"{rate.day.isoformat()}: {text} {what} ({rate.part} of {rate.whole})"))
    part, whole = sum(r.part for r in rates), sum(r.whole for r in rates)
    description = (f"{title} from {period.first} to {period.last}: {part} of {whole} "
                   f"({percent(part / whole if whole else None)}) over the period; days without data have no bar.")
    return Chart(id=chart_id, title=title, description=description, bars=tuple(bars),
                 y_ticks=tuple(Tick(_y(t, top, plot_height), f"{t:g}%") for t in ticks),
                 x_ticks=_x_ticks(period, slot))


def _y(value: float, top: float, plot_height: float) -> float:
    return round(TOP + plot_height * (1 - value / top), 2)
