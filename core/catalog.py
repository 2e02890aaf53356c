"""The catalog: certificates and fee items, their prices, allowed delivery methods and eligibility."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.enums import DeliveryMethod, ItemKind, Language
from core.errors import UnknownItem


class LocalizedText(BaseModel):
    """A text in Japanese and English; both are required."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ja: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def __call__(self, lang: Language | str) -> str:
        """The text in `lang`."""
        return self.ja if Language(lang) is Language.JA else self.en


class ApplicationPeriod(BaseModel):
    """A yearly period (month-day, Asia/Tokyo) when an item is usually applied for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: str = Field(pattern=r"^\d{2}-\d{2}$", description="MM-DD")
    end: str = Field(pattern=r"^\d{2}-\d{2}$", description="MM-DD")


# Where a rule comes from: the university's guide (`guide: <the guide's section>`), a value the university set
# (`university`), or an assumption still to confirm with the university (`assumption`), which the bot never
# enforces as a refusal: it says what usually applies and asks the student to confirm with the office.
GUIDE, UNIVERSITY, ASSUMPTION = "guide", "university", "assumption"
Source = Annotated[str, Field(pattern=r"^(guide: \S.*|university|assumption)$")]
# The rules of an item that need a source when the profile sets them (its price has `price_is_example`).
ITEM_RULES = ("deliveries", "max_copies", "min_year", "final_year_only", "application_period")


def is_stated(source: str | None) -> bool:
    """True for a rule the guide or the university states; False for an assumption."""
    return source != ASSUMPTION


class CatalogItem(BaseModel):
    """One certificate or fee item the service issues, and where each of its rules comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    kind: ItemKind
    name: LocalizedText
    price_yen: int = Field(ge=0)
    price_is_example: bool = False  # the guide states no prices; shipped prices are examples
    deliveries: tuple[DeliveryMethod, ...] = Field(min_length=1)
    max_copies: int = Field(10, ge=1)
    min_year: int | None = Field(None, ge=1)
    final_year_only: bool = False
    application_period: ApplicationPeriod | None = None
    note: LocalizedText | None = None
    sources: dict[str, Source] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _no_duplicate_deliveries(self) -> "CatalogItem":
        if len(set(self.deliveries)) != len(self.deliveries):
            raise ValueError("deliveries lists a method twice")
        return self

    @model_validator(mode="after")
    def _every_rule_has_a_source(self) -> "CatalogItem":
        unknown = sorted(set(self.sources) - set(ITEM_RULES))
        if unknown:
            raise ValueError(f"sources names no rule of an item: {', '.join(unknown)} (rules: {', '.join(ITEM_RULES)})")
        missing = [rule for rule in ITEM_RULES if rule in self.model_fields_set and rule not in self.sources]
        if missing:
            raise ValueError(f"sources lacks {', '.join(missing)}: say where each rule comes from "
                             "(`guide: <section>`, `university` or `assumption`)")
        return self

    def stated(self, rule: str) -> bool:
        """True when the guide or the university states the rule (or it is a default); False for an assumption."""
        return is_stated(self.sources.get(rule))

    def assumptions(self) -> tuple[str, ...]:
        """The item's rules that are assumptions to confirm with the university."""
        return tuple(rule for rule in ITEM_RULES if not self.stated(rule))


class Catalog(BaseModel):
    """All items of a university, looked up by code."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    items: tuple[CatalogItem, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_codes(self) -> "Catalog":
        codes = [item.code for item in self.items]
        duplicates = sorted({code for code in codes if codes.count(code) > 1})
        if duplicates:
            raise ValueError(f"item codes appear twice: {', '.join(duplicates)}")
        return self

    def get(self, code: str) -> CatalogItem:
        """The item with `code`.

        Raises:
            UnknownItem: if the catalog has no such item.
        """
        for item in self.items:
            if item.code == code:
                return item
        raise UnknownItem(code)

    def of_kind(self, kind: ItemKind) -> tuple[CatalogItem, ...]:
        """Items of one kind, in catalog order."""
        return tuple(item for item in self.items if item.kind is kind)
