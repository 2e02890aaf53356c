"""The university profile: one YAML file per university, validated at start-up."""

import re
from datetime import date, time
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.catalog import ASSUMPTION, Catalog, LocalizedText, Source
from core.enums import PaymentMethod, Service

SHIPPED_PROFILE = Path(__file__).parent / "profiles" / "uoeh.yaml"


class ProfileError(Exception):
    """A profile file is missing or invalid; the message names the file and the bad key."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _wall_clock(value: object) -> object:
    """Accept only quoted "HH:MM": YAML reads an unquoted 9:00 as the number 540, and an offset would
    make the time aware, which cannot be compared with Tokyo wall-clock times."""
    if isinstance(value, time):
        return value
    if not isinstance(value, str) or not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", value):
        raise ValueError(f'{value!r} is not a time like "09:00" (quote it in YAML)')
    return time.fromisoformat(value)


WallClock = Annotated[time, BeforeValidator(_wall_clock)]


class OpeningHours(_Model):
    """When an office answers: on business days only or every day, between two times (Asia/Tokyo)."""

    days: Literal["business_days", "every_day"]
    open: WallClock
    close: WallClock

    @model_validator(mode="after")
    def _opens_before_closing(self) -> "OpeningHours":
        if self.open >= self.close and not (self.open == self.close == time(0)):
            raise ValueError("open must be before close (use 00:00-00:00 for 24 hours)")
        return self

    @property
    def always(self) -> bool:
        """True for a 24-hour, every-day service."""
        return self.days == "every_day" and self.open == self.close == time(0)


class Contact(_Model):
    """An office students can reach, what to ask it, and when it answers."""

    name: LocalizedText
    handles: LocalizedText
    hours: OpeningHours
    phone: str | None = None
    email: str | None = None
    url: str | None = None


class Department(_Model):
    """A department, its length of study and where its students find their login ID and password."""

    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: LocalizedText
    years: int = Field(ge=1, le=10)
    credentials_location: LocalizedText


class PaymentOption(_Model):
    """A payment method as the guide lists it, with its brands."""

    method: PaymentMethod
    name: LocalizedText
    brands: LocalizedText | None = None
    cash_only: bool = False


class Browsers(_Model):
    """Browsers the service was checked with."""

    pc: tuple[str, ...]
    smartphone: tuple[str, ...]


class PickupRules(_Model):
    """The guide's window-pickup rule: ready from `ready_at` on the next business day; later after `cutoff`."""

    ready_at: WallClock = time(13, 0)
    cutoff: WallClock = time(15, 0)


# A date (YYYY-MM-DD) or a yearly day (MM-DD), or a range of two of the same form.
_CLOSURE = re.compile(r"^(\d{4}-\d{2}-\d{2}(\.\.\d{4}-\d{2}-\d{2})?|\d{2}-\d{2}(\.\.\d{2}-\d{2})?)$")


# The profile's own rules that can name their source (see core.catalog.Source).
PROFILE_RULES = ("pickup", "konbini_payment_days", "closure_days", "one_time_link_minutes", "new_students_from",
                 "print_number_days", "print_stores")


def _closure_day(text: str) -> date:
    # A yearly day is checked in a leap year so that 02-29 is allowed.
    return date.fromisoformat(text if len(text) == 10 else f"2000-{text}")


class UniversityProfile(_Model):
    """Everything madoguchi knows about one university and its certificate service."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    name: LocalizedText
    service_name: LocalizedText
    service_operator: LocalizedText
    contacts: dict[Service, Contact]
    departments: tuple[Department, ...] = Field(min_length=1)
    new_students_from: LocalizedText
    closure_days: tuple[str, ...] = ("12-29..01-03",)
    pickup: PickupRules = PickupRules()
    one_time_link_minutes: int = Field(30, ge=5, le=24 * 60)
    konbini_payment_days: int = Field(3, ge=1, le=30)
    # A paid print order's number (convenience-store multi-copy machine, campus printer) is valid this many days.
    print_number_days: int = Field(7, ge=1, le=60)
    # The convenience-store chains whose multi-copy machines print with that number; None: not named.
    print_stores: LocalizedText | None = None
    student_number_pattern: str = r"[0-9]{2}[A-Z][0-9]{4}"
    # Days chat transcripts and other chat-derived personal data are kept before the daily purge deletes them.
    retention_days: int = 180
    payment_methods: tuple[PaymentOption, ...] = Field(min_length=1)
    browsers: Browsers
    catalog: Catalog
    sources: dict[str, Source] = Field(default_factory=dict)

    @field_validator("closure_days")
    @classmethod
    def _closure_format(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            if not _CLOSURE.match(entry):
                raise ValueError(f"{entry!r} is not MM-DD, YYYY-MM-DD or a range FROM..TO of one of those forms")
            start, _, end = entry.partition("..")
            try:
                first, last = _closure_day(start), _closure_day(end or start)
            except ValueError as exc:
                raise ValueError(f"{entry!r} is not a real date: {exc}") from exc
            if len(start) == 10 and last < first:
                raise ValueError(f"{entry!r} ends before it starts")
        return value

    @field_validator("retention_days")
    @classmethod
    def _positive_days(cls, value: int) -> int:
        if value <= 0:
            raise ValueError(f"must be a number of days greater than 0 (got {value}); the default is 180")
        return value

    @field_validator("student_number_pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from exc
        return value

    @field_validator("sources")
    @classmethod
    def _known_rules(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(PROFILE_RULES))
        if unknown:
            raise ValueError(f"names no rule of the profile: {', '.join(unknown)} (rules: {', '.join(PROFILE_RULES)})")
        return value

    def to_confirm(self) -> list[str]:
        """What an operator should confirm with the university before going live: every rule marked as an
        assumption and every example price, as `where: what` lines."""
        lines = [f"{rule}: {_shown(getattr(self, rule))} is an assumption" for rule, source in self.sources.items()
                 if source == ASSUMPTION]
        for item in self.catalog.items:
            if item.price_is_example:
                lines.append(f"catalog {item.code}: price_yen {item.price_yen} is an example")
            lines += [f"catalog {item.code}: {rule} {_shown(getattr(item, rule))} is an assumption"
                      for rule in item.assumptions()]
        return lines

    @model_validator(mode="after")
    def _complete(self) -> "UniversityProfile":
        missing = [s.value for s in Service if s not in self.contacts]
        if missing:
            raise ValueError(f"contacts lacks: {', '.join(missing)}")
        return self

    def contact(self, service: Service) -> Contact:
        """The contact entry of a service."""
        return self.contacts[service]

    def department(self, code: str) -> Department:
        """The department with `code`.

        Raises:
            KeyError: if the profile has no such department.
        """
        for department in self.departments:
            if department.code == code:
                return department
        raise KeyError(code)

    def payment_option(self, method: PaymentMethod) -> PaymentOption | None:
        """The profile's entry for a payment method, or None if the university does not accept it."""
        return next((option for option in self.payment_methods if option.method is method), None)

    @cached_property
    def student_number_regex(self) -> re.Pattern[str]:
        """The compiled student-number pattern, matched against a whole, upper-cased number."""
        return re.compile(rf"^(?:{self.student_number_pattern})$")

    def is_closure_day(self, day: date) -> bool:
        """True if the profile closes the university on `day` (e.g. the year-end holidays)."""
        return any(_in_closure(entry, day) for entry in self.closure_days)


def _shown(value: object) -> str:
    """A profile value as an operator wrote it in the YAML."""
    if isinstance(value, BaseModel):
        return ", ".join(f"{key}: {item}" for key, item in value.model_dump(mode="json").items())
    if isinstance(value, tuple):
        return ", ".join(_shown(item) for item in value)
    return str(getattr(value, "value", value))


def _in_closure(entry: str, day: date) -> bool:
    start, _, end = entry.partition("..")
    end = end or start
    if len(start) == 10:  # YYYY-MM-DD dates are compared as dates
        return date.fromisoformat(start) <= day <= date.fromisoformat(end)
    md = day.strftime("%m-%d")
    if start <= end:
        return start <= md <= end
    return md >= start or md <= end  # wraps the new year, like 12-29..01-03


def load_profile(path: Path | None = None) -> UniversityProfile:
    """Read and validate a profile YAML (default: the shipped one).

    Raises:
        ProfileError: naming the file and each bad key, when the file is missing or invalid.
    """
    path = Path(path) if path else SHIPPED_PROFILE
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read the university profile: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ProfileError(f"{path}: the university profile must be a mapping of keys")
    try:
        return UniversityProfile.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(top level)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise ProfileError(f"{path}: invalid university profile: {problems}") from exc
